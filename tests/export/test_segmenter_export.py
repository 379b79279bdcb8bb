"""Image segmenters through `export()`: uint8 images in, per-pixel probabilities and label masks out."""

import json
import os

import keras
import numpy as np
import pytest

from keras_ptft.cli import main
from keras_ptft.export import ExportCheckFailed, Predictor, export
from keras_ptft.models import ViT
from keras_ptft.recipes import image_segmenter

NAMES = ["background", "red", "blue"]


def _images(count, seed):
    """16x16 images: a red or blue 8x8 square on a dark noisy ground; masks 0 / 1 / 2."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((count, 16, 16), "int32")
    for i in range(count):
        row, column = rng.integers(0, 9, 2)
        masks[i, row : row + 8, column : column + 8] = 1 + i % 2
    colours = np.array([[30, 30, 30], [220, 40, 40], [40, 40, 220]])
    return (colours[masks] + rng.integers(0, 30, (count, 16, 16, 3))).astype("uint8"), masks


@pytest.fixture(scope="module")
def segmenter():
    # Trained a few epochs so pixel classes have margins (an untrained head sits near ties, which
    # would make the quantized agreement figures meaningless).
    keras.utils.set_random_seed(0)
    vit = ViT(image_shape=(16, 16, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32)
    model = image_segmenter(vit, num_classes=3, learning_rate=1e-2)
    images, masks = _images(64, 0)
    model.fit(images, masks, batch_size=16, epochs=6, verbose=0)
    return model


@pytest.fixture(scope="module")
def exported(segmenter, tmp_path_factory):
    return export(segmenter, tmp_path_factory.mktemp("seg") / "squares", formats=["saved_model", "tflite", "onnx"],
                  verify_data=_images(16, 1)[0], label_names=NAMES)


def _keras(segmenter, images):
    return np.asarray(segmenter(images.astype("float32"), training=False))


@pytest.mark.slow
def test_every_artifact_returns_keras_pixel_probabilities_and_masks(segmenter, exported):
    import tensorflow as tf

    images = _images(8, 2)[0]
    expected = _keras(segmenter, images)
    assert expected.shape == (8, 16, 16, 3)
    for format in ("saved_model", "tflite", "onnx"):
        outputs = Predictor(exported, format=format).predict(images)
        np.testing.assert_allclose(outputs["probabilities"], expected, atol=1e-5, err_msg=format)
        np.testing.assert_array_equal(outputs["labels"], expected.argmax(-1), err_msg=format)
        assert outputs["labels"].shape == (8, 16, 16)
    # Plain TensorFlow, TF-Serving layout.
    served = tf.saved_model.load(os.path.join(exported, "1")).signatures["serving_default"]
    raw = served(images=tf.constant(images))
    np.testing.assert_array_equal(raw["labels"].numpy(), expected.argmax(-1))
    manifest = json.load(open(os.path.join(exported, "manifest.json")))
    assert manifest["kind"] == "image_segmenter" and manifest["label_names"] == NAMES
    assert manifest["raw_input"]["images"] == {"dtype": "uint8", "shape": [None, 16, 16, 3]}
    assert manifest["outputs"]["labels"] == "int64[batch, 16, 16]"
    assert manifest["artifacts"]["onnx"]["outputs"]["labels"] == "int64[batch, 16, 16]"
    for entry in manifest["artifacts"].values():
        assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["label_agreement"] == 1.0
        assert entry["parity"]["examples"] == 16


@pytest.mark.slow
def test_full_int8_keeps_pixel_labels_and_fails_loudly_past_the_threshold(segmenter, tmp_path):
    calibration = _images(64, 3)[0]
    images = _images(16, 4)[0]
    path = export(segmenter, tmp_path / "int8", formats=["tflite"], quantization="int8",
                  representative_data=calibration, verify_data=images, save_keras=False)
    outputs = Predictor(path).predict(images)
    expected = _keras(segmenter, images)
    agreement = float(np.mean(outputs["labels"] == expected.argmax(-1)))
    parity = json.load(open(os.path.join(path, "manifest.json")))["artifacts"]["tflite"]["parity"]
    assert agreement >= 0.99 and parity["label_agreement"] == pytest.approx(agreement)
    assert parity["max_abs_diff"] == pytest.approx(np.abs(outputs["probabilities"] - expected).max(), abs=1e-6)
    # Float artifacts are held to `tolerance`; nothing is left behind when the check fails.
    with pytest.raises(ExportCheckFailed, match="tflite: max"):
        export(segmenter, tmp_path / "strict", formats=["tflite"], tolerance=-1.0, save_keras=False)
    assert sorted(os.listdir(tmp_path)) == ["int8"]


@pytest.mark.slow
def test_cli_exports_from_keras_file_and_predict_writes_png_masks(segmenter, exported, tmp_path, capsys):
    import tensorflow as tf

    model_file = str(tmp_path / "seg.keras")
    segmenter.save(model_file)
    target = tmp_path / "cli"
    assert main(["export", model_file, str(target), "--formats", "tflite", "--label-names", *NAMES]) == 0
    manifest = json.load(open(target / "manifest.json"))
    assert manifest["kind"] == "image_segmenter" and manifest["label_names"] == NAMES
    images = _images(2, 5)[0]
    files = []
    for i, image in enumerate(images):
        files.append(str(tmp_path / f"in{i}.png"))
        tf.io.write_file(files[-1], tf.io.encode_png(image))
    capsys.readouterr()
    assert main(["predict", str(target), "--image", files[0], "--image", files[1],
                 "--output", str(tmp_path / "mask.png")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    expected = _keras(segmenter, images).argmax(-1)
    for i, line in enumerate(lines):
        assert line["pixel_counts"] == dict(zip(NAMES, np.bincount(expected[i].ravel(), minlength=3).tolist()))
        mask = tf.io.decode_png(tf.io.read_file(line["mask"])).numpy()[..., 0]
        np.testing.assert_array_equal(mask, expected[i])
    assert main(["predict", str(target), "--text", "a text"]) == 1
    assert "--image" in capsys.readouterr().err


def test_bad_segmenter_inputs(segmenter, exported, tmp_path, capsys):
    with pytest.raises(ValueError, match="label_names"):
        export(segmenter, tmp_path / "a", formats=["tflite"], label_names=["only", "two"])
    with pytest.raises(ValueError, match="formats"):
        export(segmenter, tmp_path / "b", formats=["tflite_text"])
    from keras_ptft.export import ImageSegmenterKind

    # What `export` raises when a quantized segmenter flips too many pixels (the check itself is
    # the classifiers', exercised above with `tolerance`).
    failure = ImageSegmenterKind(segmenter).parity_failure(
        "tflite", {"quantization": "int8"}, {"label_agreement": 0.98, "max_abs_diff": 0.5}, 1e-4, 0.99)
    assert "pixel label agreement 0.9800 < min_label_agreement=0.99" in failure and "dynamic_int8" in failure
    assert ImageSegmenterKind(segmenter).parity_failure(
        "tflite", {"quantization": "int8"}, {"label_agreement": 0.995, "max_abs_diff": 0.5}, 1e-4, 0.99) is None
    predictor = Predictor(exported, format="tflite")
    with pytest.raises(ValueError, match="uint8"):
        predictor.predict(np.zeros((1, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match="shape"):
        predictor.predict(np.zeros((1, 16, 16, 1), "uint8"))
    assert not os.listdir(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros((16, 16, 3), "uint8"))
    classifier_like = ["predict", exported, "--image", str(tmp_path / "x.npy")]
    assert main(classifier_like) == 0


def test_serve_returns_the_predictor_masks_as_lists_or_png(exported):
    import base64

    import tensorflow as tf

    from export_helpers import png_base64, post, serving

    predictor = Predictor(exported, format="tflite")
    images = _images(3, 6)[0]
    expected = predictor.predict(images)
    pngs = [png_base64(image) for image in images]
    with serving(predictor, max_wait_ms=20) as server:
        status, health = post(server, None, "/health", "GET")
        assert health["kind"] == "image_segmenter" and health["labels"] == NAMES
        assert health["image_shape"] == [16, 16, 3] and health["input"] == "images"
        status, body = post(server, {"images": [pngs[0], images[1].tolist(), pngs[2]], "return_probabilities": True})
        assert status == 200
        for row, prediction in enumerate(body["predictions"]):
            np.testing.assert_array_equal(prediction["mask"], expected["labels"][row])
            np.testing.assert_allclose(prediction["probabilities"], expected["probabilities"][row], atol=1e-6)
            assert prediction["pixel_counts"] == dict(zip(NAMES, np.bincount(expected["labels"][row].ravel(),
                                                                              minlength=3).tolist()))
        status, body = post(server, {"image": pngs[1], "mask_format": "png"})
        mask = tf.io.decode_png(base64.b64decode(body["predictions"][0]["mask"])).numpy()[..., 0]
        assert status == 200 and "probabilities" not in body["predictions"][0]
        np.testing.assert_array_equal(mask, expected["labels"][1])
        gray = png_base64(images[0][..., :1])
        for request, message in [({"images": ["not base64!"]}, "not valid base64"),
                                 ({"images": [base64.b64encode(b"GIF-ish bytes").decode()]}, "not a PNG or JPEG"),
                                 ({"images": [gray]}, "1 channel(s); the model takes 3"),
                                 ({"images": [images[0][:8].tolist()]}, "shape [8, 16, 3]"),
                                 ({"images": [[[1, 2], [3]]]}, "equal length"),
                                 ({"images": [(images[0].astype(int) + 300).tolist()]}, "0-255"),
                                 ({"texts": ["a text"]}, "images"),
                                 ({"images": [pngs[0]], "mask_format": "gif"}, "mask_format")]:
            status, body = post(server, request)
            assert status == 400 and message in body["error"], (request.keys(), body)
        assert post(server, {"image": pngs[0]})[0] == 200
