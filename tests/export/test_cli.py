import json
import os

import pytest

from keras_ptft.cli import main

from export_helpers import reference


def test_predict_prints_one_json_line_per_text(exported, classifier, capsys):
    assert main(["predict", str(exported), "--text", "the film was wonderful", "--text", "酒店很差"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    expected = reference(classifier, ["the film was wonderful", "酒店很差"])
    assert [line["label"] for line in lines] == expected.argmax(-1).tolist()
    assert lines[1]["text"] == "酒店很差"


def test_predict_on_a_broken_path_fails_cleanly(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "--text", "x"]) == 1
    assert "manifest.json" in capsys.readouterr().err


@pytest.mark.slow
def test_export_command_from_a_keras_file(exported, tmp_path, capsys):
    target = tmp_path / "cli_export"
    model_file = os.path.join(exported, "model.keras")
    assert main(["export", model_file, str(target), "--formats", "tflite"]) == 0
    assert json.load(open(target / "manifest.json"))["artifacts"]["tflite"]["parity"]["max_abs_diff"] <= 1e-4
    assert main(["export", model_file, str(target), "--formats", "tflite"]) == 1  # exists, no --overwrite
    assert "overwrite" in capsys.readouterr().err
