"""`keras-ptft pretrain bert` and `keras-ptft finetune`, both with `--checkpoint-dir`."""

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


def test_finetune_rejects_a_missing_backbone_or_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="--backbone"):
        cli.main(["finetune", "--backbone", str(tmp_path / "none"), "--train", str(tmp_path / "t.tsv")])
    (tmp_path / "bert").mkdir()
    with pytest.raises(FileNotFoundError, match="t.tsv"):
        cli.main(["finetune", "--backbone", str(tmp_path / "bert"), "--train", str(tmp_path / "t.tsv")])
