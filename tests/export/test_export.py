import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras
from keras_ptft.export import ExportCheckFailed, Predictor, export, verify

from export_helpers import MULTILINGUAL, reference, toy_sentiment


def test_export_writes_a_complete_verified_folder(exported, classifier):
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["kind"] == "text_classifier"
    assert manifest["label_names"] == ["negative", "positive"]
    assert manifest["preprocessing"]["sequence_length"] == 16
    vocabulary = open(os.path.join(exported, manifest["vocabulary_file"]), encoding="utf-8").read().splitlines()
    assert vocabulary == classifier.preprocessor.vocabulary
    assert os.path.isfile(os.path.join(exported, "1", "saved_model.pb"))  # TF Serving layout NAME/1/
    assert sorted(manifest["artifacts"]) == ["saved_model", "tflite", "tflite_text"]
    for name, entry in manifest["artifacts"].items():
        on_disk = os.path.join(exported, entry["path"])
        size = os.path.getsize(on_disk) if os.path.isfile(on_disk) else sum(
            os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(on_disk) for f in files)
        assert entry["bytes"] == size
        assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["label_agreement"] == 1.0
    assert not [f for f in os.listdir(os.path.dirname(exported)) if f.startswith(".export-")]


def test_every_artifact_predicts_like_the_keras_model(exported, classifier):
    texts, _ = toy_sentiment(16, seed=3)
    texts += MULTILINGUAL
    expected = reference(classifier, texts)
    for format in ["saved_model", "tflite", "tflite_text"]:
        outputs = Predictor(exported, format=format).predict(texts)
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, err_msg=format)
        np.testing.assert_array_equal(outputs["labels"], expected.argmax(-1))
        assert outputs["label_names"] == [["negative", "positive"][i] for i in expected.argmax(-1)]


@pytest.mark.slow
def test_saved_model_runs_without_keras_ptft_or_keras_hub(exported, classifier):
    script = (
        "import sys, json; sys.modules['keras_ptft'] = None; sys.modules['keras_hub'] = None\n"
        "import tensorflow as tf, tensorflow_text\n"
        f"model = tf.saved_model.load({os.path.join(exported, '1')!r})\n"
        "out = model.signatures['serving_default'](texts=tf.constant(json.loads(sys.argv[1])))\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if k != 'label_names'}))\n"
    )
    texts = ["the film was wonderful", "这部电影很差", "Très bien, café!"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, json.dumps(texts)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(outputs["probabilities"], reference(classifier, texts), atol=1e-5)


@pytest.mark.slow
def test_quantized_tflite_exports(classifier, tmp_path):
    texts, _ = toy_sentiment(64, seed=5)
    fp16 = export(classifier, tmp_path / "fp16", formats=["tflite"], quantization="float16", verify_data=texts,
                  save_keras=False)
    int8 = export(classifier, tmp_path / "int8", formats=["tflite"], quantization="int8",
                  representative_data=texts, save_keras=False)
    expected = reference(classifier, texts)
    for path, format, tolerance in [(fp16, "tflite", 1e-2), (int8, "tflite", 0.1)]:
        manifest = json.load(open(os.path.join(path, "manifest.json")))
        entry = manifest["artifacts"][format]
        assert entry["parity"]["label_agreement"] >= 0.99 and entry["quantization"] in ("float16", "int8")
        outputs = Predictor(path, format=format).predict(texts)
        # Quantized: close to the float model, and the figure in the manifest is the real one.
        difference = np.abs(outputs["probabilities"] - expected).max()
        assert difference < tolerance
        assert entry["parity"]["max_abs_diff"] == pytest.approx(difference, rel=1e-3, abs=1e-7)


@pytest.mark.parametrize("quantization", [None, "dynamic_int8"])
def test_parity_failure_is_loud_and_writes_nothing(classifier, tmp_path, monkeypatch, quantization):
    """The decision logic on figures `verify` reports (verify itself is tested on real artifacts)."""
    import keras_ptft.export.formats.tflite as tflite
    export_module = sys.modules["keras_ptft.export.export"]  # the package exports a function of that name

    monkeypatch.setattr(tflite, "token_model", lambda *args: b"not converted: verify is faked")
    figures = {"max_abs_diff": 2e-4, "label_agreement": 0.98, "examples": 100}
    monkeypatch.setattr(export_module, "verify", lambda *args, **kwargs: {"tflite": figures})
    with pytest.raises(ExportCheckFailed, match="tolerance" if quantization is None else "label agreement"):
        export(classifier, tmp_path / "out", formats=["tflite"], quantization=quantization, save_keras=False)
    assert os.listdir(tmp_path) == []
    # The same figures pass under looser thresholds, and land in the manifest.
    path = export(classifier, tmp_path / "out", formats=["tflite"], quantization=quantization, save_keras=False,
                  tolerance=1e-3, min_label_agreement=0.95)
    assert json.load(open(os.path.join(path, "manifest.json")))["artifacts"]["tflite"]["parity"] == figures


def test_interrupted_export_leaves_nothing_that_looks_complete(classifier, tmp_path, monkeypatch):
    from keras_ptft.export.kinds import text_classifier

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(text_classifier, "text_model", killed)
    with pytest.raises(KeyboardInterrupt):  # killed after the vocabulary file was written
        export(classifier, tmp_path / "out", formats=["tflite_text"])
    assert os.listdir(tmp_path) == []


def test_verify_reports_parity_and_catches_a_different_model(exported, classifier):
    texts, _ = toy_sentiment(16, seed=9)
    figures = verify(exported, classifier, texts, formats=["tflite"])
    assert figures["tflite"]["max_abs_diff"] <= 1e-5 and figures["tflite"]["examples"] == 16
    from keras_ptft.models import Bert
    from keras_ptft.recipes import TextClassifier

    backbone = Bert(vocabulary_size=classifier.backbone.vocabulary_size, num_layers=1, num_heads=2, hidden_dim=16,
                    intermediate_dim=32, max_sequence_length=16)
    other = TextClassifier(backbone, 2, preprocessor=classifier.preprocessor)  # same shape, other weights
    other.output_dense.kernel.assign(classifier.output_dense.kernel * 3.0)
    figures = verify(exported, other, texts, formats=["tflite"])
    assert figures["tflite"]["max_abs_diff"] > 1e-3


def test_bad_arguments_get_clear_errors(classifier, exported, tmp_path):
    with pytest.raises(ValueError, match="`formats`"):
        export(classifier, tmp_path / "a", formats=["tflite", "coreml"])
    with pytest.raises(ValueError, match="`quantization`"):
        export(classifier, tmp_path / "a", quantization="int4")
    with pytest.raises(ValueError, match="representative_data"):
        export(classifier, tmp_path / "a", formats=["tflite"], quantization="int8")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(classifier, exported, formats=["tflite"])
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="built"):
        export(unbuilt, tmp_path / "a")
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no exporter"):
        export(other, tmp_path / "a")
    with pytest.raises(ValueError, match="int8"):
        export(classifier, tmp_path / "a", formats=["tflite_text"], quantization="int8", representative_data=["x"])
    assert not os.path.exists(tmp_path / "a")
