"""`keras-ptft compress DIR`: the table of teacher, distilled, pruned and int8 rows."""

import re
import warnings

import keras

import keras_ptft as kp
from keras_ptft import cli

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "film", "very", "a"]
ROWS = [("a good film", 1), ("a bad film", 0), ("very good", 1), ("very bad", 0)] * 4


def test_compress_prints_one_row_per_model(tmp_path, capsys):
    keras.utils.set_random_seed(0)
    bert = kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
                          max_sequence_length=8, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = kp.recipes.text_classifier(bert, 2, vocabulary=VOCAB, sequence_length=8, verbose=False)
    (tmp_path / "clf").mkdir()
    teacher.save(tmp_path / "clf" / "model.keras")
    table = tmp_path / "train.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in ROWS), encoding="utf-8")
    assert cli.main(["compress", str(tmp_path / "clf"), "--train", str(table), "--eval", str(table), "--no-litert",
                     "--latency-samples", "2", "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (teacher|distilled \(1 blocks\)|pruned heads \(40%\)|"
                                                       r"int8 \(Keras\)) \| ([0-9.]+) \|", out, re.M)}
    assert len(rows) == 4, out
    params = {m.group(1): int(m.group(2).replace(",", "")) for m in
              re.finditer(r"^\| ([^|]+?) \| [0-9.]+ \| [0-9.]+ \| ([0-9,]+) \|", out, re.M)}
    assert params["distilled (1 blocks)"] < params["teacher"] and params["pruned heads (40%)"] < params["teacher"]
    assert "agreement with the original on the probe texts" in out  # prune_heads' verification is printed


def test_compress_refuses_a_folder_without_a_model(tmp_path, capsys):
    table = tmp_path / "t.tsv"
    table.write_text("sentence\tlabel\na\t0\n", encoding="utf-8")
    assert cli.main(["compress", str(tmp_path), "--train", str(table), "--eval", str(table)]) == 1
    assert "holding model.keras" in capsys.readouterr().err
