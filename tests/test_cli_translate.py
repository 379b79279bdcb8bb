"""`keras-ptft pretrain seq2seq`, `keras-ptft finetune translator` and `keras-ptft translate`."""

import gzip

import keras
import numpy as np
import pytest

from keras_ptft import cli

LEXICON = {"red": "红", "blue": "蓝", "cat": "猫", "dog": "狗", "sun": "太阳", "moon": "月亮"}


def _pairs(count, seed):
    rng = np.random.default_rng(seed)
    sources = [" ".join(rng.choice(list(LEXICON), rng.integers(1, 4))) for _ in range(count)]
    return sources, ["".join(LEXICON[w] for w in s.split()) + "。" for s in sources]


def _table(path, sources, targets):
    rows = "".join(f"{s}\t{t}\tCC-BY\n" for s, t in zip(sources, targets))
    data = ("english\tchinese\tattribution\n" + rows).encode("utf-8")
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return str(path)


@pytest.mark.slow
def test_pretrain_finetune_and_translate(tmp_path, capsys):
    sources, targets = _pairs(128, seed=0)
    train = _table(tmp_path / "pairs.tsv.gz", sources, targets)
    dev = _table(tmp_path / "dev.tsv", *_pairs(8, seed=1))
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(sources + targets), encoding="utf-8")
    small = ["--sequence-length", "12", "--batch-size", "16"]
    assert cli.main(["pretrain", "seq2seq", "--corpus", str(corpus), "--output-dir", str(tmp_path / "s2s"),
                     "--size", "tiny", "--vocabulary-size", "320", "--epochs", "1", *small]) == 0
    printed = capsys.readouterr().out
    assert "held-out denoising loss after" in printed and (tmp_path / "s2s" / "config.json").exists()
    # Fine-tuned from the pretrained folder (its tokenizer comes along) ...
    assert cli.main(["finetune", "translator", "--train", train, "--validation", dev, "--backbone",
                     str(tmp_path / "s2s"), "--output-dir", str(tmp_path / "en_zh"), "--epochs", "1", *small]) == 0
    printed = capsys.readouterr().out
    assert "128 training pairs, 8 validation pairs" in printed and "BLEU" in printed
    # ... and from scratch, with the columns named.
    assert cli.main(["finetune", "translator", "--train", train, "--source-column", "english", "--target-column",
                     "chinese", "--output-dir", str(tmp_path / "scratch"), "--size", "tiny", "--vocabulary-size",
                     "320", "--epochs", "1", *small]) == 0
    assert "from scratch" in capsys.readouterr().out

    model = keras.saving.load_model(tmp_path / "en_zh" / "model.keras")
    assert cli.main(["translate", str(tmp_path / "en_zh"), "--text", "red cat", "--text", "sun"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == model.translate(["red cat", "sun"])
    assert "translated 2/2" in captured.err
    lines = tmp_path / "sources.txt"
    lines.write_text("red cat\n\nsun moon\n", encoding="utf-8")
    assert cli.main(["translate", str(tmp_path / "en_zh"), "--input", str(lines), "--num-beams", "2"]) == 0
    captured = capsys.readouterr()
    # Exactly one line per input line; the empty one stays empty.
    assert captured.out.split("\n") == [*model.translate(["red cat"], num_beams=2), "",
                                        *model.translate(["sun moon"], num_beams=2), ""]
    assert "1 empty line(s)" in captured.err
