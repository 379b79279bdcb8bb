"""GPT-2 folders → keras_ptft GPT + CausalLM + byte-level BPE, against transformers itself.

The tiny random GPT-2 folders are written by transformers (`GPT2LMHeadModel.save_pretrained`) in
the test; the tokenizer files come from a BPE vocabulary learned here. The reference for logits
and token ids is transformers, so these tests run where it is installed.
"""

import json
import os

import numpy as np
import pytest

import keras_ptft as kp

TEXTS = [
    "The quick brown fox jumps over the lazy dog. It's 2024, isn't it?",
    "Café crème, naïve façade, résumé — São Paulo and Zürich.",
    "深度学习模型在中文文本上也能工作。",
    "Emoji 🙂👍🏽 and a family 👨‍👩‍👧 with   three spaces\tand a tab\nnew line.",
    "  leading spaces, trailing spaces   ",
    "Numbers 12345 and 3.14159; symbols #@$%^&*()!",
]


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def bpe_files(tmp_path_factory):
    """vocab.json + merges.txt learned on TEXTS (a real byte-level BPE, GPT-2's file formats)."""
    vocabulary, merges = kp.data.train_bpe(TEXTS * 4, vocabulary_size=400, verbose=False)
    path = tmp_path_factory.mktemp("bpe")
    with open(path / "vocab.json", "w", encoding="utf-8") as f:
        json.dump(vocabulary, f, ensure_ascii=False)
    with open(path / "merges.txt", "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return path, vocabulary


def write_gpt2_folder(transformers, path, vocabulary_size, tokenizer_from=None, **overrides):
    import torch

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=vocabulary_size, n_positions=32, n_embd=16, n_layer=2, n_head=2,
        **{"n_inner": 24, "layer_norm_epsilon": 1e-4, **overrides},
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # GPT-2's init (std 0.02, LayerNorms 1/0) gives near-zero logits; widen it
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.randn_like(parameter) * 0.2 + (1.0 if "ln_" in name and name.endswith("weight") else 0.0))
    model.save_pretrained(path)
    if tokenizer_from is not None:
        for name in ("vocab.json", "merges.txt"):
            (path / name).write_bytes((tokenizer_from / name).read_bytes())
    return model


def hf_logits(model, token_ids, padding_mask):
    import torch

    with torch.no_grad():
        return model(input_ids=torch.tensor(token_ids, dtype=torch.long),
                     attention_mask=torch.tensor(padding_mask, dtype=torch.long)).logits.numpy()


@pytest.mark.slow
@pytest.mark.parametrize("tie", [True, False])
def test_gpt2_logits_match_transformers(transformers, bpe_files, tmp_path, tie):
    vocab_dir, vocabulary = bpe_files
    model = write_gpt2_folder(transformers, tmp_path, len(vocabulary), vocab_dir, tie_word_embeddings=tie)
    converted = kp.convert.from_huggingface(tmp_path, sequence_length=16)

    assert converted.backbone.intermediate_dim == 24  # n_inner, which keras-hub ignores
    assert converted.backbone.layer_norm_epsilon == 1e-4
    assert converted.backbone.tie_embeddings is tie
    assert converted.unused_weights == []
    rng = np.random.default_rng(0)
    token_ids = rng.integers(0, len(vocabulary), size=(2, 12)).astype("int32")
    padding_mask = np.ones_like(token_ids)
    padding_mask[1, 9:] = 0  # right padding: real tokens keep their positions
    got = converted.task({"token_ids": token_ids, "padding_mask": padding_mask}, training=False)
    want = hf_logits(model, token_ids, padding_mask)
    real = padding_mask.astype(bool)
    np.testing.assert_allclose(np.asarray(got)[real], want[real], atol=1e-4)
    assert np.abs(want).max() > 1.0  # the comparison is not between near-zero logits


@pytest.mark.slow
def test_gpt2_tokenizer_ids_match_transformers(transformers, bpe_files):
    vocab_dir, _ = bpe_files
    reference = transformers.GPT2Tokenizer(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"))
    ours = kp.convert.gpt2.gpt2_tokenizer(str(vocab_dir))
    # Runs of two spaces before a word are where keras-hub's own GPT2Tokenizer differs.
    unseen = ["Über-naïve 東京 🎉🎉 fox's", "they'll've  done it", "a  b", "x \t y  'quoted'  ",
              "end<|endoftext|>start", "\u00a0non-breaking\u3000space"]
    texts = TEXTS + unseen
    got = _rows(ours(texts))  # one batched call: eager BPE merging is slow string by string
    for text, ids in zip(texts, got):
        assert ids == reference.encode(text), text
    assert list(ours.detokenize(got)) == texts


@pytest.mark.slow
def test_gpt2_from_tokenizer_json(transformers, bpe_files, tmp_path):
    vocab_dir, _ = bpe_files
    fast = transformers.GPT2TokenizerFast(str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt"))
    fast.save_pretrained(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        if (tmp_path / name).exists():
            os.remove(tmp_path / name)
    assert (tmp_path / "tokenizer.json").exists()
    ours = kp.convert.gpt2.gpt2_tokenizer(str(tmp_path))
    for text, ids in zip(TEXTS, _rows(ours(TEXTS))):
        assert ids == fast.encode(text), text


@pytest.mark.slow
def test_converted_causal_lm_generates(transformers, bpe_files, tmp_path):
    vocab_dir, vocabulary = bpe_files
    model = write_gpt2_folder(transformers, tmp_path, len(vocabulary), vocab_dir)
    lm = kp.convert.from_huggingface(tmp_path, sequence_length=16).task
    prompt = "The quick"
    # Greedy continuation, token by token, with transformers as the reference.
    ids = [vocabulary["<|endoftext|>"]] + transformers.GPT2Tokenizer(
        str(vocab_dir / "vocab.json"), str(vocab_dir / "merges.txt")).encode(prompt)
    start = len(ids)
    for _ in range(4):
        logits = hf_logits(model, [ids], [[1] * len(ids)])
        ids.append(int(logits[0, -1].argmax()))
    lm.compile(sampler="greedy")
    got = lm.generate(prompt, max_length=start + 4, stop_token_ids=None, strip_prompt=True)
    inverse = {i: t for t, i in vocabulary.items()}
    want = lm.preprocessor.tokenizer.detokenize(ids[start:])
    assert got == want, ([inverse[i] for i in ids[start:]], got)


def _rows(ids) -> list[list[int]]:
    return [[int(i) for i in row] for row in ids]


def _config(**overrides) -> dict:
    config = {"model_type": "gpt2", "vocab_size": 10, "n_embd": 8, "n_layer": 1, "n_head": 2,
              "n_positions": 8, "activation_function": "gelu_new"}
    config.update(overrides)
    return config


@pytest.mark.parametrize("field, value", [("activation_function", "relu"), ("scale_attn_weights", False),
                                          ("scale_attn_by_inverse_layer_idx", True),
                                          ("add_cross_attention", True)])
def test_unsupported_gpt2_config_value_is_named(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        kp.convert.gpt2.backbone_config(_config(**{field: value}))


def test_n_inner_defaults_to_four_times_hidden():
    assert kp.convert.gpt2.backbone_config(_config(n_inner=None))["intermediate_dim"] == 32
    assert kp.convert.gpt2.backbone_config(_config(n_inner=20))["intermediate_dim"] == 20


def test_gpt2_weight_with_unexpected_shape_is_named(tmp_path):
    from safetensors.numpy import save_file

    config = _config()
    (tmp_path / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(0)
    weights = {"wte.weight": rng.normal(size=(10, 8)), "wpe.weight": rng.normal(size=(7, 8))}  # 7 != 8
    save_file({k: v.astype("float32") for k, v in weights.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="'wpe.weight'.*shape \\(7, 8\\)"):
        kp.convert.from_huggingface(tmp_path)


def test_gpt2_tokenizer_that_does_not_match_vocab_size(bpe_files):
    vocab_dir, vocabulary = bpe_files
    with pytest.raises(ValueError, match=f"{len(vocabulary)} tokens but config.json has vocab_size=7"):
        kp.convert.gpt2.gpt2_tokenizer(str(vocab_dir), vocabulary_size=7)
