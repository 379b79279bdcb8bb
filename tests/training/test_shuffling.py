import numpy as np
import pytest

from keras_ptft.training.shuffling import shuffle_in_memory_inputs, shuffled_batches


def epoch_of(dataset):
    return [tuple(np.asarray(part).tolist() for part in batch) for batch in dataset.as_numpy_iterator()]


def flat_labels(dataset):
    return [label for _, labels in dataset.as_numpy_iterator() for label in labels.tolist()]


def test_batches_hold_every_example_once_and_reshuffle_each_epoch():
    texts = [f"text {i}" for i in range(40)]
    labels = list(range(40))
    dataset = shuffled_batches(texts, labels, batch_size=8, seed=0)
    first, second = flat_labels(dataset), flat_labels(dataset)
    assert sorted(first) == labels and sorted(second) == labels
    assert first != labels and first != second
    # Texts stay paired with their labels.
    for batch_texts, batch_labels in dataset.as_numpy_iterator():
        assert [t.decode() for t in batch_texts] == [f"text {i}" for i in batch_labels]
    # Seeded: the same seed gives the same order.
    assert flat_labels(shuffled_batches(texts, labels, batch_size=8, seed=0)) == first


def test_class_sorted_labels_are_mixed_in_every_batch():
    # The failure this exists for: keras-hub feeds in-memory examples in their given order.
    labels = [0] * 64 + [1] * 64
    dataset = shuffled_batches([str(i) for i in range(128)], labels, batch_size=32, seed=1)
    assert all(0 < np.mean(batch_labels) < 1 for _, batch_labels in dataset.as_numpy_iterator())


def test_text_pairs_and_sample_weights():
    first, second = [f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]
    dataset = shuffled_batches((first, second), np.arange(10), np.arange(10) / 10, batch_size=4, seed=0)
    for (a, b), y, w in dataset.as_numpy_iterator():
        assert [x.decode() for x in a] == [f"a{i}" for i in y] and [x.decode() for x in b] == [f"b{i}" for i in y]
        np.testing.assert_allclose(w, y / 10)


def test_validation_split_takes_the_tail_before_shuffling():
    texts, labels = [str(i) for i in range(10)], np.arange(10)
    kwargs = {"validation_split": 0.2, "shuffle": True}
    x, y, weights, batch_size = shuffle_in_memory_inputs(texts, labels, None, 4, kwargs)
    assert y is None and weights is None and batch_size is None
    assert sorted(flat_labels(x)) == list(range(8))
    validation_texts, validation_labels = kwargs["validation_data"]
    assert validation_texts == ["8", "9"] and validation_labels.tolist() == [8, 9]
    assert "validation_split" not in kwargs and "shuffle" not in kwargs


def test_shuffle_false_and_datasets_pass_through():
    texts, labels = ["a", "b"], [0, 1]
    assert shuffle_in_memory_inputs(texts, labels, None, 2, {"shuffle": False}) == (texts, labels, None, 2)
    dataset = shuffled_batches(texts, labels)
    assert shuffle_in_memory_inputs(dataset, None, None, None, {})[0] is dataset


def test_bad_validation_split():
    with pytest.raises(ValueError, match="validation_split"):
        shuffle_in_memory_inputs(["a", "b"], [0, 1], None, 2, {"validation_split": 0.99})
    with pytest.raises(ValueError, match="validation_split"):
        shuffle_in_memory_inputs(["a", "b"], [0, 1], None, 2, {"validation_split": 0.5, "validation_data": (["c"], [0])})
