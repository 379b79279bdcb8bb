"""Masked LM export: SavedModel fill-mask from raw strings, TFLite logits, both equal to Keras."""

import json
import os

import keras
import numpy as np
import pytest

from keras_ptft.export import Predictor, export
from keras_ptft.models import Bert
from keras_ptft.tasks import MaskedLM

# One and two masks; English, accented and Chinese; the mask at the start, middle and end.
TEXTS = [
    "the film was [MASK]",
    "[MASK] café crème",
    "这部电影[MASK]好看",
    "the [MASK] was [MASK]",
    "Über [MASK] Straße",
]


@pytest.fixture(scope="module")
def mlm(vocabulary):
    keras.utils.set_random_seed(3)
    bert = Bert(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=16, dropout=0.0)
    return MaskedLM(bert, vocabulary=vocabulary, sequence_length=16)


@pytest.fixture(scope="module")
def exported(mlm, tmp_path_factory):
    return export(mlm, tmp_path_factory.mktemp("mlm") / "fill", top_k=4, verify_data=TEXTS, save_keras=False)


def _keras_top_k(mlm, texts, k=4):
    """`MaskedLM.fill_mask`, the reference: (tokens, probabilities) per text per mask."""
    return mlm.fill_mask(texts, top_k=k)


@pytest.mark.slow
def test_every_artifact_fills_masks_like_keras(mlm, exported):
    expected = _keras_top_k(mlm, TEXTS)
    for format in ("saved_model", "tflite"):
        outputs = Predictor(exported, format=format).predict(TEXTS)
        assert outputs["mask_count"].tolist() == [1, 1, 1, 2, 1]
        for row, per_mask in enumerate(expected):
            for slot, pairs in enumerate(per_mask):
                assert list(outputs["tokens"][row, slot]) == [token for token, _ in pairs], format
                np.testing.assert_allclose(outputs["probabilities"][row, slot], [p for _, p in pairs], atol=1e-5)


@pytest.mark.slow
def test_tflite_logits_match_keras_and_manifest(mlm, exported, vocabulary):
    outputs = Predictor(exported, format="tflite").predict(TEXTS)
    # Independent reference: the Keras model's log-probabilities from MaskedLM's own encoding.
    encoded = [mlm._encode_with_masks(text, "texts") for text in TEXTS]
    log_probs = mlm._masked_log_probs([ids for ids, _ in encoded], [pos for _, pos in encoded])
    for row, expected in enumerate(log_probs):
        logits = outputs["logits"][row, : len(expected)]
        ours = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        np.testing.assert_allclose(ours, expected, atol=1e-4)
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["kind"] == "masked_lm" and manifest["top_k"] == 4
    assert open(os.path.join(exported, "vocabulary.txt"), encoding="utf-8").read().splitlines() == vocabulary
    for name, entry in manifest["artifacts"].items():
        assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["top1_agreement"] == 1.0, name
    assert manifest["artifacts"]["tflite"]["parity"]["max_abs_logit_diff"] <= 1e-4


def test_bad_masked_lm_inputs(mlm, exported, tmp_path):
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        Predictor(exported, format="tflite").predict(["no mask here"])
    with pytest.raises(ValueError, match=r"\[MASK\]"):
        export(mlm, tmp_path / "a", verify_data=["no mask here"])
    with pytest.raises(ValueError, match="top_k"):
        export(mlm, tmp_path / "b", top_k=0)
    with pytest.raises(ValueError, match="tflite_text"):
        export(mlm, tmp_path / "c", formats=["tflite_text"])
    with pytest.raises(ValueError, match="sequence_length=16"):
        Predictor(exported, format="tflite").predict([" ".join(["word"] * 20) + " [MASK]"])
    assert not os.listdir(tmp_path)


def test_serve_fills_masks_like_the_predictor(exported):
    from export_helpers import concurrently, post, serving

    predictor = Predictor(exported, format="tflite")
    expected = predictor.predict(TEXTS)
    with serving(predictor, max_wait_ms=50) as server:
        # Requests with one and two masks batched together come back as if run alone.
        answers = concurrently(lambda i: post(server, {"text": TEXTS[i]}), list(range(len(TEXTS))))
        assert [status for status, _ in answers] == [200] * len(TEXTS)
        for row, (_, body) in enumerate(answers):
            masks = body["predictions"][0]["masks"]
            assert len(masks) == expected["mask_count"][row]
            for slot, candidates in enumerate(masks):
                assert [c["token"] for c in candidates] == list(expected["tokens"][row, slot])
                np.testing.assert_allclose([c["probability"] for c in candidates],
                                           expected["probabilities"][row, slot], atol=1e-6)
        status, body = post(server, {"texts": ["no mask here", TEXTS[0]]})
        assert status == 400 and "[MASK]" in body["error"] and "texts" in body["error"]
        status, body = post(server, {"prompts": [TEXTS[0]]})
        assert status == 400 and '{"texts": [...]}' in body["error"]
        # Too long for the export: the model rejects it, the request gets a 400, the server lives on.
        status, body = post(server, {"texts": ["the film was " * 20 + "[MASK]"]})
        assert status == 400 and "longer" in body["error"]
        assert post(server, {"texts": TEXTS[:1]})[0] == 200
