import collections

import numpy as np
import pytest

from keras_ptft.data import EmbeddedTask, load_embedded_classification, load_embedded_corpus
from keras_ptft.data import corpus as corpus_module


def test_corpus_is_the_same_for_a_seed_and_shuffled_by_another():
    first = load_embedded_corpus(seed=0)
    assert load_embedded_corpus(seed=0) == first
    other = load_embedded_corpus(seed=1)
    assert other != first
    assert sorted(other) == sorted(first)  # same documents, another order


def test_corpus_documents_are_distinct_paragraph_sized_strings():
    documents = load_embedded_corpus()
    assert len(documents) >= 3000  # the quickstart asks for up to 3000
    assert len(set(documents)) == len(documents)
    lengths = [len(document.split()) for document in documents]
    assert min(lengths) >= corpus_module.MIN_DOCUMENT_WORDS
    assert max(lengths) <= corpus_module.MAX_DOCUMENT_WORDS
    # Whitespace is collapsed: no newlines, no double spaces, no padding.
    assert all(d == " ".join(d.split()) for d in documents)


def test_max_documents_keeps_the_first_documents_of_the_shuffle():
    assert load_embedded_corpus(max_documents=50, seed=3) == load_embedded_corpus(seed=3)[:50]
    with pytest.raises(ValueError, match="max_documents"):
        load_embedded_corpus(max_documents=0)


def test_corpus_leaves_out_the_task_texts_unless_asked():
    task = load_embedded_classification()
    texts = task.train_texts + task.test_texts
    default = " | ".join(load_embedded_corpus())
    assert sum(text in default for text in texts) == 0
    everything = " | ".join(load_embedded_corpus(include_task_modules=True))
    assert sum(text in everything for text in texts) > len(texts) // 4


def test_docstrings_edited_at_run_time_by_other_packages_are_ignored():
    def function():
        """What the author wrote."""

    assert corpus_module._own_doc(function) == "What the author wrote."
    function.__doc__ = "What another package wrote over it."  # as Keras does to Mapping.get
    assert corpus_module._own_doc(function) == "What the author wrote."


def test_task_is_deterministic_balanced_and_split_without_overlap():
    task = load_embedded_classification(seed=0)
    assert isinstance(task, EmbeddedTask)
    assert task.label_names == ("text", "files", "network", "numbers")
    assert task.train_labels.dtype == np.int32 and task.test_labels.dtype == np.int32
    assert len(task.train_texts) == len(task.train_labels)
    assert len(task.test_texts) == len(task.test_labels)
    train_counts = collections.Counter(task.train_labels.tolist())
    test_counts = collections.Counter(task.test_labels.tolist())
    assert sorted(train_counts) == sorted(test_counts) == [0, 1, 2, 3]
    assert len(set(train_counts.values())) == 1 and len(set(test_counts.values())) == 1
    assert min(train_counts.values()) >= 200
    assert test_counts[0] == pytest.approx(0.2 * (train_counts[0] + test_counts[0]), abs=1)
    assert not set(task.train_texts) & set(task.test_texts)
    assert len(set(task.train_texts)) == len(task.train_texts)
    assert all(text.strip() for text in task.train_texts + task.test_texts)

    again = load_embedded_classification(seed=0)
    assert again.train_texts == task.train_texts
    np.testing.assert_array_equal(again.train_labels, task.train_labels)
    assert load_embedded_classification(seed=1).test_texts != task.test_texts


def test_task_test_fraction_is_checked():
    task = load_embedded_classification(test_fraction=0.5)
    assert len(task.train_texts) == pytest.approx(len(task.test_texts), abs=4)
    with pytest.raises(ValueError, match="test_fraction"):
        load_embedded_classification(test_fraction=1.0)
