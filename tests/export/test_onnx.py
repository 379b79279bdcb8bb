import json
import os

import numpy as np
import onnx
import onnxruntime  # the `onnx` extra (tf2onnx, onnx, onnxruntime), installed in CI
import pytest

import keras
from keras_ptft.cli import main
from keras_ptft.export import ExportCheckFailed, Predictor, export, export_image_classifier, write_onnx

from export_helpers import MULTILINGUAL, reference, toy_sentiment


@pytest.fixture(scope="module")
def onnx_export(classifier, tmp_path_factory):
    texts, _ = toy_sentiment(24, seed=5)
    return export(classifier, tmp_path_factory.mktemp("onnx") / "sentiment", formats=["onnx"],
                  verify_data=texts + MULTILINGUAL, save_keras=False)


@pytest.mark.slow
def test_onnx_export_is_listed_verified_and_runs_in_plain_onnxruntime(onnx_export, classifier):
    manifest = json.load(open(os.path.join(onnx_export, "manifest.json")))
    entry = manifest["artifacts"]["onnx"]
    file = os.path.join(onnx_export, entry["path"])
    assert entry["path"] == "onnx/model.onnx" and entry["bytes"] == os.path.getsize(file)
    assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["label_agreement"] == 1.0
    assert entry["parity"]["examples"] == 24 + len(MULTILINGUAL)
    # onnxruntime alone, fed the Keras preprocessor's ids: the file is self-contained.
    session = onnxruntime.InferenceSession(file, providers=["CPUExecutionProvider"])
    assert [value.name for value in session.get_inputs()] == ["token_ids", "segment_ids", "padding_mask"]
    texts = ["the film was wonderful", "酒店很差", "Très bien, café!", ""]
    features = {name: np.asarray(value, np.int32) for name, value in classifier.preprocessor(texts).items()}
    probabilities, labels = session.run(["probabilities", "labels"], features)
    expected = reference(classifier, texts)
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    np.testing.assert_array_equal(labels, expected.argmax(-1))
    # tf2onnx has no Erfc rule; keras_ptft's replaces it with 1 - Erf (onnxruntime rejects Erfc).
    assert not any(node.op_type == "Erfc" for node in onnx.load(file).graph.node)


@pytest.mark.slow
def test_predictor_and_cli_predict_on_onnx(onnx_export, classifier, capsys):
    texts, _ = toy_sentiment(8, seed=9)
    texts += MULTILINGUAL
    predictor = Predictor(onnx_export)  # the only artifact, so the default
    assert predictor.format == "onnx"
    outputs = predictor.predict(texts)
    expected = reference(classifier, texts)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    assert outputs["label_names"] == [["negative", "positive"][i] for i in expected.argmax(-1)]
    with pytest.raises(ValueError, match="`texts`"):
        predictor.predict([1, 2])
    assert main(["predict", str(onnx_export), "--format", "onnx", "--text", texts[0]]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["label"] == int(expected[0].argmax())


@pytest.mark.slow
def test_truncated_onnx_file_is_reported(onnx_export, tmp_path):
    import shutil

    from keras_ptft.export import OnnxRunner

    copy = tmp_path / "copy"
    shutil.copytree(onnx_export, copy)
    file = copy / "onnx" / "model.onnx"
    file.write_bytes(file.read_bytes()[:200])
    with pytest.raises(ValueError, match="truncated"):
        Predictor(copy, format="onnx")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        OnnxRunner(file)


@pytest.mark.slow
def test_image_classifier_onnx_takes_uint8_and_fails_loudly_beyond_tolerance(tmp_path):
    from keras_ptft.export import OnnxRunner
    from keras_ptft.models import ViT
    from keras_ptft.recipes import image_classifier

    keras.utils.set_random_seed(3)
    vit = ViT(image_shape=(8, 8, 1), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    classifier = image_classifier(vit, num_classes=3, label_names=["a", "b", "c"])
    with pytest.warns(DeprecationWarning, match="export_image_classifier"):
        export_image_classifier(classifier, tmp_path / "shapes", onnx=True)
    manifest = json.load(open(tmp_path / "shapes" / "manifest.json"))
    assert manifest["artifacts"]["onnx"]["inputs"] == {"images": "uint8[batch, 8, 8, 1]"}
    assert manifest["artifacts"]["onnx"]["parity"]["max_abs_diff"] <= 1e-4
    images = np.random.default_rng(1).integers(0, 256, (6, 8, 8, 1)).astype("uint8")
    outputs = OnnxRunner(tmp_path / "shapes" / "onnx" / "model.onnx")(images=images)
    expected = classifier.predict(images, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["labels"], expected.argmax(-1))
    # The same through the one export entry point, run by Predictor.
    export(classifier, tmp_path / "unified", formats=["onnx"])
    predicted = Predictor(tmp_path / "unified", format="onnx").predict(images)
    np.testing.assert_allclose(predicted["probabilities"], expected, atol=1e-5)
    assert predicted["label_names"] == [["a", "b", "c"][i] for i in expected.argmax(-1)]
    # A negative tolerance can never be met: the check must fire and leave no folder behind.
    with pytest.raises(ExportCheckFailed, match="onnx: max"):
        export(classifier, tmp_path / "strict", formats=["saved_model", "onnx"], tolerance=-1.0)
    assert not os.path.exists(tmp_path / "strict")
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".export-")]


def test_onnx_rejects_models_it_cannot_export():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no exporter"):
        write_onnx(model, "unused.onnx")
