"""`keras-ptft pretrain gpt`, `keras-ptft generate` and the GPT quickstart registration."""

import pytest

import keras_ptft as kp
from keras_ptft import cli
from keras_ptft.quickstart import MODELS, load


def test_gpt_quickstart_is_registered():
    module = load("gpt")
    assert MODELS["gpt"] == "keras_ptft.quickstart.gpt"
    assert module.Settings().max_documents is None  # the full corpus by default
    assert module.Settings.fast().max_documents < 1000


@pytest.mark.slow
def test_pretrain_then_generate(tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(["the cat sat on the mat", "the dog lay on the rug"] * 30), encoding="utf-8")
    output = tmp_path / "gpt"
    assert cli.main(["pretrain", "gpt", "--corpus", str(corpus), "--output-dir", str(output), "--vocabulary-size",
                     "275", "--sequence-length", "16", "--epochs", "1", "--size", "tiny",
                     "--checkpoint-dir", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "held-out perplexity after" in printed
    assert (output / "config.json").exists()
    assert (tmp_path / "run" / "bpe.json").exists() and (tmp_path / "run" / "best.keras").exists()
    assert cli.main(["generate", str(output), "--prompt", "the cat", "--prompt", "the", "--max-length", "10"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("the cat") and lines[-1].startswith("the")
    # Started again with one more epoch, the run reuses the stored BPE vocabulary and resumes.
    assert cli.main(["pretrain", "gpt", "--corpus", str(corpus), "--output-dir", str(output), "--vocabulary-size",
                     "275", "--sequence-length", "16", "--epochs", "2", "--size", "tiny",
                     "--checkpoint-dir", str(tmp_path / "run")]) == 0
    assert "reusing the byte-level BPE vocabulary" in capsys.readouterr().out
    assert kp.training.load_history(tmp_path / "run")["epoch"] == [0, 1]


def test_pretrain_rejects_a_missing_corpus(tmp_path, capsys):
    assert cli.main(["pretrain", "gpt", "--corpus", str(tmp_path / "missing.txt")]) == 2
    assert "argument --corpus: no file at" in capsys.readouterr().err
