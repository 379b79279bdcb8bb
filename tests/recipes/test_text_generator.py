import keras
import numpy as np
import pytest

import keras_ptft as kp

ANIMALS = {"cat": "mat", "dog": "rug", "bird": "branch"}
PROMPTS = [f"where is the {a}?" for a in ANIMALS] * 8
RESPONSES = [f" on the {p}" for p in ANIMALS.values()] * 8


@pytest.fixture(scope="module")
def bpe():
    return kp.data.train_bpe(PROMPTS + RESPONSES, vocabulary_size=285, verbose=False)


def _backbone(vocabulary_size):
    keras.utils.set_random_seed(3)
    return kp.models.GPT(vocabulary_size=vocabulary_size, num_layers=2, num_heads=2, hidden_dim=32,
                         intermediate_dim=64, max_sequence_length=24, dropout=0.0)


def test_loss_counts_response_tokens_only(bpe):
    vocab, merges = bpe
    generator = kp.recipes.text_generator(_backbone(len(vocab)), kp.data.bpe_tokenizer(vocab, merges),
                                          sequence_length=20)
    pairs = {"prompts": PROMPTS[:3], "responses": RESPONSES[:3]}
    x, y, weights = generator.tokenize(pairs)
    prompt_lengths = [len(np.asarray(generator.preprocessor.tokenizer(p))) for p in PROMPTS[:3]]
    response_lengths = [len(np.asarray(generator.preprocessor.tokenizer(r))) for r in RESPONSES[:3]]
    for row, (p, r) in enumerate(zip(prompt_lengths, response_lengths)):
        # labels y[i] = token i+1; with the start token, the first response label sits at index p.
        expected = np.zeros(20)
        expected[p : p + r + 1] = 1  # the response tokens and the end token
        np.testing.assert_array_equal(weights[row], expected)
    logits = keras.ops.convert_to_numpy(generator.backbone.token_embedding(generator.backbone(x), reverse=True))
    logits = logits - logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token_loss = -np.take_along_axis(log_probs, y[..., None], -1)[..., 0]
    expected_loss = (token_loss * weights).sum() / weights.sum()
    loss = generator.evaluate(pairs, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(loss, expected_loss, rtol=1e-5)


@pytest.mark.slow
def test_instruction_tuning_from_a_saved_backbone(bpe, tmp_path):
    vocab, merges = bpe
    tokenizer = kp.data.bpe_tokenizer(vocab, merges)
    pretrain = kp.tasks.CausalLM(_backbone(len(vocab)), tokenizer, sequence_length=20)
    pretrain.save_to_preset(str(tmp_path / "gpt"))
    generator = kp.recipes.text_generator(str(tmp_path / "gpt"), sequence_length=20, learning_rate=1e-2)
    generator.fit({"prompts": PROMPTS, "responses": RESPONSES}, batch_size=8, epochs=30, verbose=0)
    answer = generator.generate("where is the dog?", max_length=20, strip_prompt=True)
    assert answer == " on the rug", answer


def test_bad_arguments(bpe, tmp_path):
    vocab, merges = bpe
    with pytest.raises(FileNotFoundError, match="backbone_or_path"):
        kp.recipes.text_generator(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="tokenizer"):
        kp.recipes.text_generator(_backbone(len(vocab)))
