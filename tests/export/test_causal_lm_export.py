"""Causal LM export: the TFLite / SavedModel greedy loop equals `CausalLM.generate`."""

import json
import os

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.export import Predictor, export, verify

TEXTS = [f"the {a} {b} on the {c}" for a, b, c in
         [("cat", "sat", "mat"), ("dog", "lay", "rug"), ("bird", "stood", "branch")]] * 8
# Different lengths (1 to 6 words), so a batch decodes ragged prompts.
PROMPTS = ["the", "the dog lay on", "the bird", "a cat", "the cat sat on the mat", "dog"]
MAX_LENGTH = 14


@pytest.fixture(scope="module")
def lm():
    """A tiny GPT whose (tied) token embedding is drawn with unit variance instead of GPT's 0.02:
    its logits are spread wide, so greedy continuations differ between prompts and have no
    near-ties, as a trained model's would, without the seconds a `fit` costs."""
    keras.utils.set_random_seed(11)
    vocab, merges = kp.data.train_bpe(TEXTS, vocabulary_size=270, verbose=False)
    gpt = kp.models.GPT(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=16,
                        intermediate_dim=32, max_sequence_length=24, dropout=0.0)
    embeddings = gpt.token_embedding.embeddings
    embeddings.assign(np.random.default_rng(11).normal(0.0, 1.0, embeddings.shape).astype("float32"))
    model = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocab, merges), sequence_length=16)
    model.compile(sampler="greedy")
    return model


@pytest.fixture(scope="module")
def exported(lm, tmp_path_factory):
    return export(lm, tmp_path_factory.mktemp("clm") / "writer", max_length=MAX_LENGTH, verify_data=PROMPTS,
                  save_keras=False)


def _keras_greedy_ids(lm, prompts):
    inputs = lm.preprocessor.generate_preprocess(prompts, sequence_length=MAX_LENGTH)
    outputs = lm.generate_step(inputs, stop_token_ids=None)
    return keras.ops.convert_to_numpy(outputs["token_ids"])


@pytest.mark.slow
def test_tflite_greedy_tokens_equal_causal_lm_generate(lm, exported):
    predictor = Predictor(exported, format="tflite")
    expected = _keras_greedy_ids(lm, PROMPTS)
    np.testing.assert_array_equal(predictor.predict(PROMPTS)["token_ids"], expected)
    # Alone or in a batch, the same continuation.
    for prompt, row in zip(PROMPTS[:3], expected):
        np.testing.assert_array_equal(predictor.predict([prompt])["token_ids"][0],
                                      _keras_greedy_ids(lm, [prompt])[0])
    # The continuations are not trivial: they differ between prompts.
    assert len({tuple(row[6:]) for row in expected}) > 1
    # Text, with keras-hub's end-token rule, equals `generate` with its default stop token.
    assert predictor.predict(PROMPTS)["texts"] == lm.generate(PROMPTS, max_length=MAX_LENGTH)


@pytest.mark.slow
def test_saved_model_generate_signature_takes_and_returns_strings(lm, exported):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    loaded = tf.saved_model.load(os.path.join(exported, "1"))
    outputs = loaded.signatures["generate"](prompts=tf.constant(PROMPTS))
    texts = [text.decode() for text in outputs["texts"].numpy()]
    assert texts == lm.generate(PROMPTS, max_length=MAX_LENGTH)
    np.testing.assert_array_equal(outputs["token_ids"].numpy(), _keras_greedy_ids(lm, PROMPTS))
    served = loaded.signatures["serving_default"](prompts=tf.constant(PROMPTS[:1]))
    assert served["texts"].numpy()[0].decode() == texts[0]
    # Predictor's shorter generation on the SavedModel (detokenized in Python) equals `generate`'s.
    short = [PROMPTS[2], PROMPTS[3], PROMPTS[5]]
    assert Predictor(exported, format="saved_model").predict(short, max_length=9)["texts"] == \
        lm.generate(short, max_length=9)


@pytest.mark.slow
def test_manifest_and_verify(lm, exported):
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["kind"] == "causal_lm"
    assert manifest["generation"]["max_length"] == MAX_LENGTH
    assert sorted(manifest["artifacts"]) == ["saved_model", "tflite"]
    vocabulary = json.load(open(os.path.join(exported, manifest["vocabulary_file"]), encoding="utf-8"))
    assert vocabulary == lm.preprocessor.tokenizer.vocabulary
    for entry in manifest["artifacts"].values():
        assert entry["parity"]["token_agreement"] == 1.0 and entry["parity"]["sequence_agreement"] == 1.0
    figures = verify(exported, lm, ["the rug", "cat cat cat"], formats=["tflite"])
    assert figures["tflite"]["token_agreement"] == 1.0 and figures["tflite"]["examples"] == 2


def test_bad_causal_lm_inputs(lm, exported, tmp_path):
    with pytest.raises(ValueError, match="prompts"):
        Predictor(exported, format="tflite").predict([3, 4])
    with pytest.raises(ValueError, match="tflite_text"):
        export(lm, tmp_path / "a", formats=["tflite_text"])
    with pytest.raises(ValueError, match="representative_data"):
        export(lm, tmp_path / "b", formats=["tflite"], quantization="int8")
    with pytest.raises(ValueError, match="max_length"):
        export(lm, tmp_path / "c", max_length=100)
    with pytest.raises(ValueError, match="top_k"):
        export(lm, tmp_path / "d", top_k=3)
    with pytest.raises(ValueError, match="max_length=14"):
        Predictor(exported, format="tflite").predict(["the cat sat on the mat the dog lay on the rug"])
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_serve_generates_like_the_predictor_and_causal_lm_generate(lm, exported):
    from export_helpers import concurrently, post, serving

    predictor = Predictor(exported, format="tflite")
    SHORT = [PROMPTS[2], PROMPTS[3], PROMPTS[5]]  # 4 to 6 tokens with the start token: room to generate at 9
    with serving(predictor, max_wait_ms=50) as server:
        assert post(server, None, "/health", "GET")[1]["max_length"] == MAX_LENGTH
        # Requests with and without `max_length` arrive together; each gets its own generation.
        bodies = [{"prompts": PROMPTS[:3]}, {"prompts": SHORT, "max_length": 9}, {"prompt": PROMPTS[0]}]
        answers = concurrently(lambda body: post(server, body), bodies)
        assert [status for status, _ in answers] == [200] * 3
        texts = [[p["text"] for p in body["predictions"]] for _, body in answers]
        assert texts[0] == predictor.predict(PROMPTS[:3])["texts"] == lm.generate(PROMPTS[:3], max_length=MAX_LENGTH)
        assert texts[1] == predictor.predict(SHORT, max_length=9)["texts"]
        assert texts[1] == lm.generate(SHORT, max_length=9)  # a shorter generation: the same greedy tokens
        assert texts[2] == texts[0][:1] and answers[2][1]["predictions"][0]["prompt"] == PROMPTS[0]
        for body, message in [({"prompts": PROMPTS, "max_length": MAX_LENGTH + 1}, "max_length"),
                              ({"prompts": PROMPTS, "max_length": "8"}, "max_length"),
                              ({"texts": PROMPTS}, '{"prompts": [...]}'),
                              ({"prompts": ["the cat sat on the mat"], "max_length": 5}, "max_length=5")]:
            status, answer = post(server, body)
            assert status == 400 and message in answer["error"], (body, answer)
