"""Image classifiers through `export()`: SavedModel and TFLite (float, float16, int8), uint8 in."""

import json
import os

import keras
import numpy as np
import pytest

from keras_ptft.cli import main
from keras_ptft.export import Predictor, export
from keras_ptft.models import ViT
from keras_ptft.recipes import image_classifier


def _images(count, seed):
    """Bright-left vs bright-right 8x8 images: a task a tiny ViT learns in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    images = rng.integers(0, 60, (count, 8, 8, 1))
    for image, label in zip(images, labels):
        image[:, 4 * label : 4 * label + 4] += 180
    return images.astype("uint8"), labels.astype("int32")


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(5)
    vit = ViT(image_shape=(8, 8, 1), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    model = image_classifier(vit, num_classes=2, label_names=["left", "right"], learning_rate=1e-2)
    images, labels = _images(128, 0)
    # 10 epochs: with the head at Keras' Glorot scale this width-8 ViT is still near 50/50 after 3
    # (margin 0.005, which int8 rounding flips), and confident (margin >= 0.8) after 10.
    model.fit(images, labels, batch_size=32, epochs=10, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    return export(classifier, tmp_path_factory.mktemp("images") / "lr", verify_data=_images(32, 1)[0])


def _keras(classifier, images):
    return np.asarray(classifier(images.astype("float32"), training=False))


@pytest.mark.slow
def test_float_artifacts_take_uint8_and_match_keras(classifier, exported, capsys):
    images = _images(16, 2)[0]
    expected = _keras(classifier, images)
    for format in ("saved_model", "tflite"):
        outputs = Predictor(exported, format=format).predict(images)
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, err_msg=format)
        assert outputs["label_names"] == [["left", "right"][i] for i in expected.argmax(-1)]
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["kind"] == "image_classifier"
    assert manifest["raw_input"]["images"] == {"dtype": "uint8", "shape": [None, 8, 8, 1]}
    assert all(entry["parity"]["max_abs_diff"] <= 1e-4 for entry in manifest["artifacts"].values())
    # The CLI's --image path runs the TFLite artifact too.
    np.save(os.path.join(exported, "..", "one.npy"), images[0])
    assert main(["predict", exported, "--format", "tflite", "--image", os.path.join(exported, "..", "one.npy")]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["label"] == int(expected[0].argmax())


@pytest.mark.slow
def test_quantized_tflite_agrees_on_labels(classifier, tmp_path):
    calibration, _ = _images(64, 3)
    images, _ = _images(64, 4)
    expected = _keras(classifier, images)
    for quantization in ("float16", "int8"):
        path = export(classifier, tmp_path / quantization, formats=["tflite"], quantization=quantization,
                      representative_data=calibration, verify_data=images, save_keras=False)
        entry = json.load(open(os.path.join(path, "manifest.json")))["artifacts"]["tflite"]
        outputs = Predictor(path, format="tflite").predict(images)
        agreement = np.mean(outputs["labels"] == expected.argmax(-1))
        assert agreement >= 0.99 and entry["parity"]["label_agreement"] == pytest.approx(agreement)
        # int8 rounds the activations of this width-8 ViT: labels agree (above), probabilities
        # within 0.2 (0.16 measured on the least confident image; float16 within 1e-2).
        assert np.abs(outputs["probabilities"] - expected).max() < (1e-2 if quantization == "float16" else 0.2)


def test_bad_image_inputs(classifier, exported, tmp_path):
    predictor = Predictor(exported, format="tflite")
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((1, 9, 8, 1), "uint8"))
    with pytest.raises(ValueError, match="representative_data"):
        export(classifier, tmp_path / "a", formats=["tflite"], quantization="int8")
    with pytest.raises(ValueError, match="uint8"):
        export(classifier, tmp_path / "b", formats=["tflite"], verify_data=["a text"])
    assert not os.listdir(tmp_path)


@pytest.mark.slow
def test_cli_exports_the_kind_found_in_a_keras_file(exported, tmp_path, capsys):
    model_file = os.path.join(exported, "model.keras")
    assert main(["export", model_file, str(tmp_path / "cli"), "--formats", "tflite"]) == 0
    manifest = json.load(open(tmp_path / "cli" / "manifest.json"))
    assert manifest["kind"] == "image_classifier" and manifest["artifacts"]["tflite"]["parity"]["max_abs_diff"] <= 1e-4
    assert main(["export", model_file, str(tmp_path / "other"), "--max-length", "8"]) == 1
    assert "max_length" in capsys.readouterr().err


def test_serve_takes_base64_png_or_nested_lists_like_the_predictor(exported):
    from export_helpers import concurrently, png_base64, post, serving

    predictor = Predictor(exported, format="tflite")
    images = _images(4, 7)[0]
    expected = predictor.predict(images)
    pngs = [png_base64(image) for image in images]
    with serving(predictor, max_wait_ms=50) as server:
        assert post(server, None, "/health", "GET")[1]["image_shape"] == [8, 8, 1]
        # One-channel images may come as [height][width] lists; PNGs with a data-URL prefix.
        bodies = [{"image": "data:image/png;base64," + pngs[0]}, {"images": [images[1][..., 0].tolist()]},
                  {"images": [images[2].tolist(), pngs[3]]}]
        answers = concurrently(lambda body: post(server, body), bodies)
        predictions = [p for status, body in answers for p in body["predictions"]]
        assert [status for status, _ in answers] == [200] * 3
        assert [p["label"] for p in predictions] == expected["labels"].tolist()
        assert [p["label_name"] for p in predictions] == expected["label_names"]
        np.testing.assert_allclose([p["probabilities"] for p in predictions], expected["probabilities"], atol=1e-6)
        rgb = png_base64(np.repeat(images[0], 3, -1))
        for body, message in [({"images": [rgb]}, "3 channel(s); the model takes 1"),
                              ({"images": ["%%%"]}, "not valid base64"),
                              ({"images": [1.5]}, "base64 PNG/JPEG string or nested lists"),
                              ({"texts": ["a text"]}, '{"images": [...]}'),
                              ({"images": [pngs[0]], "max_length": 3}, "not fields of a image_classifier")]:
            status, answer = post(server, body)
            assert status == 400 and message in answer["error"], (body, answer)
