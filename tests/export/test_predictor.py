import shutil

import numpy as np
import pytest

from keras_ptft.export import Predictor


@pytest.fixture
def copy(exported, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def test_missing_or_corrupted_manifest(copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a folder"):
        Predictor(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        Predictor(tmp_path / "empty")
    (copy / "manifest.json").write_text('{"kind": "text_classifier", "artif')
    with pytest.raises(ValueError, match="corrupted"):
        Predictor(copy)


def test_truncated_tflite_is_reported(copy):
    path = copy / "tflite" / "model_text.tflite"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        Predictor(copy, format="tflite_text")


def test_corrupted_saved_model_weights_are_reported(copy):
    path = copy / "1" / "variables" / "variables.data-00000-of-00001"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        Predictor(copy, format="saved_model")


def test_a_truncated_file_without_manifest_check_still_fails_clearly(copy):
    from keras_ptft.export.formats.tflite import TFLiteRunner

    path = copy / "tflite" / "model.tflite"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable TFLite model"):
        TFLiteRunner(path)


def test_wrong_input_types_and_formats(exported):
    predictor = Predictor(exported, format="tflite")
    # One rule for texts everywhere (keras_ptft.validation.check_texts): a non-list is a TypeError,
    # a list holding a non-string a ValueError, each naming `texts`.
    for bad, error in [(3, TypeError), (["ok", 4], ValueError), ({"text": "a"}, TypeError), (None, TypeError)]:
        with pytest.raises(error, match="`texts`"):
            predictor.predict(bad)
    with pytest.raises(ValueError, match="`format`"):
        Predictor(exported, format="onnx")
    single = predictor.predict("the film was wonderful")
    assert single["probabilities"].shape == (1, 2)
    np.testing.assert_allclose(single["probabilities"].sum(-1), 1.0, atol=1e-5)
    assert predictor.predict([])["probabilities"].shape == (0, 2)
