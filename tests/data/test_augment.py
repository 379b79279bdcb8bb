import numpy as np
import pytest
import tensorflow as tf

import keras_ptft as kp

TEXTS = ["the cat sat on the mat today", "a dog lay on the warm rug", "birds sing"]


def run(ds):
    return [t.decode() if isinstance(t, bytes) else (t[0].decode(), int(t[1])) for t in ds.as_numpy_iterator()]


def test_clean_text():
    dirty = tf.constant(["<p>Caf\u0065\u0301  <b>bar</b></p>\x00\x07 \t\n ﬁne\u200b"])
    assert kp.data.clean_text(dirty).numpy()[0].decode() == "Caf\u00e9 bar fine"


def test_each_transform_keeps_the_words_and_is_seeded():
    ds = tf.data.Dataset.from_tensor_slices((TEXTS, [0, 1, 2]))
    for kwargs in (dict(deletion=0.3), dict(swap=0.3), dict(insertion=0.3)):
        first = run(kp.data.augment_text(ds, seed=3, **kwargs))
        assert first == run(kp.data.augment_text(ds, seed=3, **kwargs))  # same seed, same result
        others = [run(kp.data.augment_text(ds, seed=s, **kwargs)) for s in (4, 5)]
        assert any(other != first for other in others)  # the seed matters
        for (augmented, label), original in zip(first, TEXTS):
            words, source = augmented.split(), original.split()
            assert label == TEXTS.index(original)
            if "deletion" in kwargs:
                assert 1 <= len(words) <= len(source) and all(w in source for w in words)
                it = iter(source)
                assert all(w in it for w in words)  # what is left keeps its order
            if "swap" in kwargs:
                assert sorted(words) == sorted(source)
            if "insertion" in kwargs:
                n = max(1, round(0.3 * len(source)))
                assert len(words) == len(source) + n and set(words) == set(source)
                it = iter(words)
                assert all(w in it for w in source)  # the original order survives as a subsequence


def test_synonyms_from_embedding_neighbours():
    vocabulary = ["[PAD]", "[UNK]", "cat", "kitten", "dog", "puppy", "##s"]
    embeddings = np.array([[0, 0], [0, 0], [1, 0.1], [1, 0.0], [0, 1], [0.1, 1], [1, 0.05]], "float32")
    table = kp.data.embedding_neighbours(embeddings, vocabulary)
    assert table == {"cat": "kitten", "kitten": "cat", "dog": "puppy", "puppy": "dog"}
    ds = tf.data.Dataset.from_tensor_slices(["cat and dog"])
    assert run(kp.data.augment_text(ds, synonyms=table, synonym_rate=1.0)) == ["kitten and puppy"]
    assert run(kp.data.augment_text(ds, synonyms=table, synonym_rate=0.0)) == ["cat and dog"]


def test_bad_arguments():
    ds = tf.data.Dataset.from_tensor_slices(TEXTS)
    with pytest.raises(ValueError, match="deletion"):
        kp.data.augment_text(ds, deletion=1.5)
    with pytest.raises(ValueError, match="before `batch"):
        kp.data.augment_text(ds.batch(2), swap=0.1)
    with pytest.raises(ValueError, match="rows"):
        kp.data.embedding_neighbours(np.zeros((3, 2)), ["a", "b"])
