import gzip
import os

import numpy as np
import pytest

import keras_ptft as kp

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                           "..", "shared", "data")


def test_tsv_gz_with_integer_labels(tmp_path):
    path = tmp_path / "train.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as file:
        file.write('sentence\tlabel\nit \'s a "charming" film \t1\ndull , dull \t0\n\n')
    texts, labels, names = kp.data.read_labeled_texts(path)
    assert texts == ['it \'s a "charming" film', "dull , dull"]
    assert labels.tolist() == [1, 0] and labels.dtype == np.int64
    assert names is None


def test_csv_with_named_labels_and_quoted_commas(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,class\n1,"good, really good",pos\n2,bad,neg\n3,fine,pos\n', encoding="utf-8")
    texts, labels, names = kp.data.read_labeled_texts(path)
    assert texts == ["good, really good", "bad", "fine"]
    assert names == ["neg", "pos"] and labels.tolist() == [1, 0, 1]
    dev = tmp_path / "dev.csv"
    dev.write_text("id,review,class\n4,meh,neu\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: label 'neu' is not among `label_names`"):
        kp.data.read_labeled_texts(dev, label_names=names)


def test_bad_tables_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        kp.data.read_labeled_texts(tmp_path / "missing.tsv")
    (tmp_path / "a.txt").write_text("text\tlabel\nx\t1\n")
    with pytest.raises(ValueError, match=r"\.tsv, \.csv"):
        kp.data.read_labeled_texts(tmp_path / "a.txt")
    (tmp_path / "b.tsv").write_text("words\tlabel\nx\t1\n")
    with pytest.raises(ValueError, match="no column named sentence"):
        kp.data.read_labeled_texts(tmp_path / "b.tsv")
    with pytest.raises(ValueError, match="`label_column`='y' is not a column"):
        kp.data.read_labeled_texts(tmp_path / "b.tsv", text_column="words", label_column="y")
    (tmp_path / "c.tsv").write_text("text\tlabel\nx\t1\textra\n")
    with pytest.raises(ValueError, match="line 2 has 3 fields"):
        kp.data.read_labeled_texts(tmp_path / "c.tsv")


def test_reads_sst2_dev_with_its_published_label_counts():
    path = os.path.join(SHARED_DATA, "sst2", "dev.tsv.gz")
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("the shared data folder is absent")
    texts, labels, names = kp.data.read_labeled_texts(path)
    # Counts from the data set's README (GLUE SST-2 dev): 872 rows, 428 negative, 444 positive.
    assert len(texts) == 872 and np.bincount(labels).tolist() == [428, 444] and names is None
    assert texts[0] == "it 's a charming and often affecting journey ."


def test_seeded_sample_is_reproducible_and_keeps_text_label_pairs(tmp_path):
    path = tmp_path / "train.tsv"
    rows = [(f"text number {i}", i % 3) for i in range(20)]
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")
    sample, sample_labels, _ = kp.data.read_labeled_texts(path, max_rows=5, seed=3)
    order = np.random.default_rng(3).permutation(20)[:5]
    assert sample == [rows[i][0] for i in order] and sample_labels.tolist() == [rows[i][1] for i in order]
    first, first_labels, _ = kp.data.read_labeled_texts(path, max_rows=4)
    assert first == [text for text, _ in rows[:4]] and first_labels.tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="max_rows"):
        kp.data.read_labeled_texts(path, max_rows=0)


def _table(path, labels):
    path.write_text("sentence\tlabel\n" + "".join(f"text {i}\t{label}\n" for i, label in enumerate(labels)),
                    encoding="utf-8")
    return path


def test_one_stray_label_in_an_integer_file_is_refused_with_its_line(tmp_path):
    # Before: the file silently became 5 named classes sorted as strings ("10" before "2").
    path = _table(tmp_path / "train.tsv", ["0", "1", "2", "10", "7x", "1"])
    with pytest.raises(ValueError, match=r"line 6: label '7x' is not a class id") as error:
        kp.data.read_labeled_texts(path)
    assert "train.tsv" in str(error.value) and "labels='names'" in str(error.value)
    texts, labels, names = kp.data.read_labeled_texts(_table(tmp_path / "ok.tsv", ["0", "1", "2", "10"]))
    assert labels.tolist() == [0, 1, 2, 10] and names is None


def test_an_empty_label_cell_is_refused_with_its_line(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\na\t1\nb\t\nc\t0\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3: the label cell \('label'\) is empty"):
        kp.data.read_labeled_texts(path)


def test_named_labels_only_when_the_file_or_an_argument_says_so(tmp_path):
    names_file = _table(tmp_path / "names.tsv", ["pos", "neg", "pos"])
    assert kp.data.read_labeled_texts(names_file)[2] == ["neg", "pos"]  # every label a name
    with pytest.raises(ValueError, match="line 2: label 'pos' is not a class id"):
        kp.data.read_labeled_texts(names_file, labels="ids")
    digits = _table(tmp_path / "digits.tsv", ["1", "0", "1"])
    _, labels, names = kp.data.read_labeled_texts(digits, labels="names")
    assert names == ["0", "1"] and labels.tolist() == [1, 0, 1]
    _, labels, names = kp.data.read_labeled_texts(digits, label_names=["1", "0"])
    assert names == ["1", "0"] and labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="`labels` must be one of"):
        kp.data.read_labeled_texts(digits, labels="strings")
    with pytest.raises(ValueError, match="line 3: label 'neg' is not among `label_names`"):
        kp.data.read_labeled_texts(names_file, label_names=["pos"])


def test_a_corrupt_gzip_table_names_the_file(tmp_path):
    good = tmp_path / "good.tsv.gz"
    with gzip.open(good, "wt", encoding="utf-8") as file:
        file.write("sentence\tlabel\n" + "a fine film\t1\n" * 2000)
    data = good.read_bytes()
    truncated = tmp_path / "cut.tsv.gz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.tsv\.gz' is a truncated gzip file"):
        kp.data.read_labeled_texts(truncated)
    plain = tmp_path / "plain.tsv.gz"
    plain.write_text("sentence\tlabel\nx\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"plain\.tsv\.gz' is not a gzip file"):
        kp.data.read_labeled_texts(plain)
    crc = bytearray(data)
    crc[-8] ^= 0xFF  # the CRC-32 stored in the trailer
    (tmp_path / "crc.tsv.gz").write_bytes(bytes(crc))
    with pytest.raises(ValueError, match=r"crc\.tsv\.gz' is a corrupt gzip file .*CRC"):
        kp.data.read_labeled_texts(tmp_path / "crc.tsv.gz")
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF  # inside the deflate stream
    (tmp_path / "bits.tsv.gz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match=r"bits\.tsv\.gz' is a corrupt gzip file"):
        kp.data.read_labeled_texts(tmp_path / "bits.tsv.gz")
