"""The kind registry: a new kind of model plugs into export, verify, Predictor and serve by one
`register_kind` call, and the deprecated entry points are thin wrappers over `export()`."""

import json
import os

import numpy as np
import pytest

import keras
from keras_ptft.export import ExportKind, KindRunner, Predictor, export, export_text_classifier, register_kind, verify
from keras_ptft.export.base import KINDS, kind_named, probability_parity


class VectorRunner(KindRunner):
    input_fields = ("vectors", "vector")

    def __init__(self, path, manifest, format, artifact):
        import tensorflow as tf

        super().__init__(path, manifest, format, artifact)
        signature = tf.saved_model.load(artifact).signatures["serving_default"]
        self._run = lambda x: {k: v.numpy() for k, v in signature(vectors=tf.constant(x, tf.float32)).items()}

    def predict(self, vectors):
        return self._run(np.asarray(vectors, np.float32))

    @classmethod
    def parse_items(cls, items, field, manifest):
        return np.asarray(items, np.float32)

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names):
        return [{"probabilities": row.tolist()} for row in outputs["probabilities"]]


class VectorClassifierKind(ExportKind):
    """A plain Keras softmax model on 3-vectors: nothing in base/, formats/ or Predictor knows it."""

    name = "vector_classifier"
    formats = default_formats = ("saved_model",)
    runner = VectorRunner

    @classmethod
    def matches(cls, model):
        return isinstance(model, keras.Sequential) and model.input_shape == (None, 3)

    def check_data(self, data, argument):
        return np.asarray(data, np.float32)

    def probe_data(self):
        return np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)

    def write_artifact(self, name, target, quantization, representative_data):
        import tensorflow as tf

        archive = keras.export.ExportArchive()
        archive.track(self.model)
        archive.add_endpoint("serving_default", lambda x: {"probabilities": self.model(x, training=False)},
                             input_signature=[tf.TensorSpec([None, 3], tf.float32, name="vectors")])
        archive.write_out(target, verbose=False)
        return {"signature": "serving_default"}

    def parity(self, predict, data, batch_size):
        reference = lambda x: {"probabilities": np.asarray(self.model(x, training=False))}  # noqa: E731
        return probability_parity(predict, reference, data, batch_size)


@pytest.fixture
def registered():
    register_kind(VectorClassifierKind)
    yield
    del KINDS["vector_classifier"]


def test_a_registered_kind_exports_verifies_predicts_and_serves(registered, tmp_path):
    from export_helpers import post, serving

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="softmax")])
    path = export(model, tmp_path / "vectors", save_keras=False)
    manifest = json.load(open(os.path.join(path, "manifest.json")))
    assert manifest["kind"] == "vector_classifier" and manifest["artifacts"]["saved_model"]["parity"]["max_abs_diff"] < 1e-6
    vectors = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(Predictor(path).predict(vectors)["probabilities"], model(vectors), atol=1e-6)
    assert verify(path, model, vectors)["saved_model"]["examples"] == 5
    with serving(Predictor(path)) as server:
        status, answer = post(server, None, path="/health", method="GET")
        assert status == 200 and answer["kind"] == "vector_classifier" and answer["input"] == "vectors"
        status, answer = post(server, {"vectors": vectors[:2].tolist()})
        assert status == 200
        np.testing.assert_allclose([p["probabilities"] for p in answer["predictions"]], model(vectors[:2]), atol=1e-6)


def test_an_unknown_kind_is_named():
    with pytest.raises(ValueError, match="'speech'"):
        kind_named("speech")


def test_export_text_classifier_is_a_deprecated_wrapper(classifier, tmp_path):
    with pytest.warns(DeprecationWarning, match="export_text_classifier"):
        saved_model = export_text_classifier(classifier, tmp_path / "old")
    assert saved_model == os.path.join(str(tmp_path / "old"), "1")  # the return value did not change
    manifest = json.load(open(tmp_path / "old" / "manifest.json"))
    assert sorted(manifest["artifacts"]) == ["saved_model"]  # export()'s folder: verified, with digests
    assert manifest["artifacts"]["saved_model"]["parity"]["max_abs_diff"] <= 1e-4
    texts = ["the film was wonderful", "very dull"]
    np.testing.assert_allclose(Predictor(tmp_path / "old").predict(texts)["probabilities"],
                               classifier(classifier.preprocessor(texts), training=False), atol=1e-5)
