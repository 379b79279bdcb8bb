"""`keras-ptft pretrain bert` and `keras-ptft finetune`, both with `--checkpoint-dir`."""

import json

import pytest

import keras_ptft as kp
from keras_ptft import cli

PAIRS = [("cat", "sat", "mat", 1), ("dog", "lay", "rug", 0), ("bird", "stood", "branch", 1), ("fish", "swam", "pond", 0)]


def _write_table(path, rows):
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")


@pytest.mark.slow
def test_pretrain_bert_then_finetune_both_resumable(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the {a} {v} on the {p}" for a, v, p, _ in PAIRS * 8), encoding="utf-8")
    backbone, pretrain_run = tmp_path / "bert", tmp_path / "pretrain_run"
    assert cli.main(["pretrain", "bert", "--corpus", str(corpus), "--output-dir", str(backbone), "--size", "tiny",
                     "--vocabulary-size", "60", "--sequence-length", "12", "--epochs", "1", "--batch-size", "8",
                     "--checkpoint-dir", str(pretrain_run)]) == 0
    assert "held-out masked-token accuracy" in capsys.readouterr().out
    assert (backbone / "config.json").exists() and (pretrain_run / "vocabulary.txt").exists()
    assert kp.training.load_history(pretrain_run)["epoch"] == [0]

    rows = [(f"the {a} {v} on the {p}", label) for a, v, p, label in PAIRS] * 4
    _write_table(tmp_path / "train.tsv", rows)
    _write_table(tmp_path / "dev.tsv", rows[:4])
    command = ["finetune", "--backbone", str(backbone), "--train", str(tmp_path / "train.tsv"),
               "--validation", str(tmp_path / "dev.tsv"), "--output-dir", str(tmp_path / "clf"), "--epochs", "1",
               "--batch-size", "8", "--learning-rate", "1e-3", "--checkpoint-dir", str(tmp_path / "finetune_run")]
    assert cli.main(command) == 0
    printed = capsys.readouterr().out
    assert "16 training examples, 2 classes, 4 validation examples" in printed and "validation: " in printed
    assert (tmp_path / "clf" / "model.keras").exists() and (tmp_path / "finetune_run" / "best.keras").exists()
    assert kp.training.load_history(tmp_path / "finetune_run")["epoch"] == [0]


def test_finetune_rejects_a_missing_backbone_or_table(tmp_path, capsys):
    assert cli.main(["finetune", "--backbone", str(tmp_path / "none"), "--train", str(tmp_path / "t.tsv")]) == 2
    assert "argument --backbone: " in capsys.readouterr().err
    (tmp_path / "bert").mkdir()
    assert cli.main(["finetune", "--backbone", str(tmp_path / "bert"), "--train", str(tmp_path / "t.tsv")]) == 2
    err = capsys.readouterr().err
    assert "argument --train: no file at" in err and "t.tsv" in err


def test_finetune_refuses_a_stray_label_before_training(tmp_path, capsys):
    (tmp_path / "bert").mkdir()  # never loaded: the table is refused first
    _write_table(tmp_path / "train.tsv", [("a", 0), ("b", 1), ("c", 2), ("d", 10), ("e", "7x")])
    assert cli.main(["finetune", "--backbone", str(tmp_path / "bert"), "--train", str(tmp_path / "train.tsv"),
                     "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "line 6: label '7x' is not a class id" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_finetune_prints_and_saves_the_class_names(tmp_path, capsys, monkeypatch):
    # The mapping is written before the backbone is loaded: a missing backbone ends the run after.
    (tmp_path / "bert").mkdir()
    _write_table(tmp_path / "train.tsv", [("a", "pos"), ("b", "neg"), ("c", "neutral")])
    assert cli.main(["finetune", "--backbone", str(tmp_path / "bert"), "--train", str(tmp_path / "train.tsv"),
                     "--output-dir", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "class ids: 0=neg, 1=neutral, 2=pos" in captured.out
    assert json.loads((tmp_path / "out" / "label_names.json").read_text()) == ["neg", "neutral", "pos"]
    assert "is not a checkpoint folder this toolkit can load" in captured.err
