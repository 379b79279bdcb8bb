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
    with pytest.raises(ValueError, match=r"labels \['neu'\] not among `label_names`"):
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
