import keras
import numpy as np
import pytest

import keras_ptft as kp

TEXTS = [f"the {a} {b} on the {c}" for a, b, c in
         [("cat", "sat", "mat"), ("dog", "lay", "rug"), ("bird", "stood", "branch")]] * 8


@pytest.fixture(scope="module")
def bpe():
    return kp.data.train_bpe(TEXTS, vocabulary_size=290, verbose=False)


def _lm(bpe, sequence_length=16, packing=True, **overrides):
    keras.utils.set_random_seed(7)
    vocab, merges = bpe
    config = dict(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  max_sequence_length=24, dropout=0.0)
    backbone = kp.models.GPT(**{**config, **overrides})
    lm = kp.tasks.CausalLM(backbone, kp.data.bpe_tokenizer(vocab, merges), sequence_length=sequence_length,
                           packing=packing)
    lm.compile()
    return lm


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _uncached_greedy(lm, token_ids, start, end):
    """Greedy decoding by re-running the whole model on the whole prefix at every step."""
    token_ids = np.array(token_ids)
    for position in range(start, end):
        hidden = lm.backbone({"token_ids": token_ids, "padding_mask": np.ones_like(token_ids)})
        logits = keras.ops.convert_to_numpy(lm.backbone.token_embedding(hidden, reverse=True))
        token_ids[:, position] = logits[:, position - 1].argmax(-1)
    return token_ids


def test_cached_greedy_equals_uncached_greedy(bpe):
    lm = _lm(bpe)
    inputs = lm.preprocessor.generate_preprocess(["the cat"], sequence_length=14)
    prompt_length = int(np.sum(keras.ops.convert_to_numpy(inputs["padding_mask"])))
    cached = lm.make_generate_function()(inputs, stop_token_ids=None)
    cached = keras.ops.convert_to_numpy(cached["token_ids"])
    uncached = _uncached_greedy(lm, keras.ops.convert_to_numpy(inputs["token_ids"]), prompt_length, 14)
    np.testing.assert_array_equal(cached, uncached)


def test_prompt_alone_equals_prompt_in_a_ragged_batch(bpe):
    lm = _lm(bpe)
    prompts = ["the", "the dog lay on", "the bird"]
    batch = lm.generate(prompts, max_length=14, stop_token_ids=None, strip_prompt=True)
    alone = [lm.generate(prompt, max_length=14, stop_token_ids=None, strip_prompt=True) for prompt in prompts]
    assert batch == alone
    assert all(continuation for continuation in batch)


def test_perplexity_is_exp_of_mean_token_loss(bpe):
    lm = _lm(bpe)
    texts = ["the cat", "the dog lay on the rug and the bird stood"]  # different lengths: padding
    x, y, weights = lm.preprocessor(texts)
    logits = keras.ops.convert_to_numpy(lm.backbone.token_embedding(lm.backbone(x), reverse=True))
    y, weights = keras.ops.convert_to_numpy(y), keras.ops.convert_to_numpy(weights).astype("float64")
    token_loss = -np.take_along_axis(_log_softmax(logits.astype("float64")), y[..., None], -1)[..., 0]
    mean_loss = (token_loss * weights).sum() / weights.sum()
    results = lm.evaluate(texts, batch_size=2, verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], mean_loss, rtol=1e-5)
    np.testing.assert_allclose(results["perplexity"], np.exp(mean_loss), rtol=1e-5)
    np.testing.assert_allclose(lm.perplexity(texts), np.exp(mean_loss), rtol=1e-5)


def test_padding_does_not_count_in_the_loss(bpe):
    lm = _lm(bpe)
    short = ["the cat"]
    alone = lm.evaluate(short, verbose=0, return_dict=True)["loss"]
    lm.preprocessor.sequence_length = 24  # more padding, same real tokens
    padded = lm.evaluate(short, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(alone, padded, rtol=1e-5)


def test_samplers_degenerate_to_greedy(bpe):
    lm = _lm(bpe)
    prompts = ["the cat", "the"]
    greedy = lm.generate(prompts, max_length=12, sampler="greedy", stop_token_ids=None)
    assert lm.generate(prompts, max_length=12, sampler="top_k", k=1, stop_token_ids=None) == greedy
    assert lm.generate(prompts, max_length=12, sampler="top_p", p=1e-6, stop_token_ids=None) == greedy
    assert lm.generate(prompts, max_length=12, sampler="random", temperature=1e-4, seed=0,
                       stop_token_ids=None) == greedy
    beam = lm.generate(prompts, max_length=12, sampler="beam", num_beams=2, stop_token_ids=None)
    assert len(beam) == 2 and all(b.startswith(p) for b, p in zip(beam, prompts))


def test_stop_tokens_end_generation(bpe):
    lm = _lm(bpe)
    full = lm.generate("the cat", max_length=14, stop_token_ids=None, strip_prompt=True)
    tokenizer = lm.preprocessor.tokenizer
    first_id = int(np.asarray(tokenizer(full)).reshape(-1)[0])
    stopped = lm.generate("the cat", max_length=14, stop_token_ids=[tokenizer.id_to_token(first_id)],
                          strip_prompt=True)
    # Generation stops right after the stop token, which is kept in the output.
    assert len(stopped) < len(full)
    assert stopped == tokenizer.detokenize([first_id])


@pytest.mark.slow
def test_fit_lowers_perplexity_and_learns_the_corpus(bpe):
    # One row per line: the step budget (25 epochs of batch 8) was set for it; packing (fewer,
    # fuller rows) is tested in test_packing_fit.py.
    lm = _lm(bpe, packing=False)
    lm.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = lm.perplexity(TEXTS)
    lm.fit(TEXTS, batch_size=8, epochs=25, verbose=0)
    after = lm.perplexity(TEXTS)
    assert after < 0.2 * before, (before, after)
    assert lm.generate("the dog", max_length=12, sampler="greedy").startswith("the dog lay on the rug")


def test_serialization_round_trip(bpe, tmp_path):
    lm = _lm(bpe)
    # Tokenizer assets travel with keras-hub presets (not with a bare .keras file).
    lm.save_to_preset(str(tmp_path / "lm"))
    restored = kp.tasks.CausalLM(kp.models.load_backbone(str(tmp_path / "lm")),
                                 kp.models.load_tokenizer(str(tmp_path / "lm")), sequence_length=16)
    assert isinstance(restored.preprocessor.tokenizer, kp.data.BPETokenizer)
    restored.compile(sampler="greedy")
    prompts = ["the cat", "the"]
    assert restored.generate(prompts, max_length=10, stop_token_ids=None) == lm.generate(
        prompts, max_length=10, stop_token_ids=None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(inputs=[]), "`inputs` must hold at least one text"),
        (dict(inputs=["the dog lay on the rug"], max_length=4), "larger than the longest prompt"),
        (dict(inputs=["the"], max_length=99), "max_sequence_length"),
        (dict(inputs=["the"], sampler="nucleus"), "sampler"),
        (dict(inputs=["the"], sampler="top_p", p=1.5), "top_p"),
        (dict(inputs=["the"], sampler="top_p", p=0.0), "top_p"),
        (dict(inputs=["the"], sampler="top_k", k=0), "top_k"),
        (dict(inputs=["the"], sampler="greedy", k=3), "options"),
        (dict(inputs=["the"], stop_token_ids=["<never>"]), "vocabulary"),
    ],
)
def test_bad_generate_arguments_are_rejected(bpe, kwargs, message):
    lm = _lm(bpe)
    with pytest.raises(ValueError, match=message):
        lm.generate(**{"max_length": 10, **kwargs})


def test_tokenizer_vocabulary_must_match_the_backbone(bpe):
    vocab, merges = bpe
    backbone = kp.models.GPT(vocabulary_size=len(vocab) + 1, num_layers=1, num_heads=2, hidden_dim=8,
                             intermediate_dim=16, max_sequence_length=16)
    with pytest.raises(ValueError, match="vocabulary_size"):
        kp.tasks.CausalLM(backbone, kp.data.bpe_tokenizer(vocab, merges), sequence_length=8)
