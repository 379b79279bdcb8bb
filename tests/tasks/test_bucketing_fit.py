"""Length-bucketed fine-tuning and length-sorted inference of the text tasks (issue 14, items 1 and 3)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ptft.recipes import TextClassifier, text_classifier, text_regressor
from keras_ptft.tasks import TextRegressor
from tests import harness

POSITIVE = ["big", "cat"]
NEGATIVE = ["small", "dog"]
SEQUENCE_LENGTH = 48


def mixed_length_task(n=96, seed=0):
    """The toy sentiment task of tests/recipes/test_text_classifier.py, with 1-12 filler words on
    each side, so the texts span several length buckets."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        left, right = (" ".join(rng.choice(["the", "on", "sat", "mat"], size=rng.integers(1, 13))) for _ in "lr")
        texts.append(f"{left} {word} {right}")
        labels.append(label)
    return texts, np.array(labels, "int32")


def tiny_backbone(vocabulary):
    return harness.tiny_bert(vocabulary, max_sequence_length=SEQUENCE_LENGTH)


def real_lengths(texts, preprocessor):
    return np.asarray(preprocessor(texts)["padding_mask"]).astype(bool).sum(axis=1)


def test_fit_trains_on_bucket_length_batches_and_learns(toy_vocabulary):
    texts, labels = mixed_length_task()
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary,
                                 sequence_length=SEQUENCE_LENGTH, learning_rate=1e-2, seed=0, verbose=False,
                                 pooling="mean", run_eagerly=True)  # eager steps see each batch's concrete shape
    lengths = real_lengths(texts, classifier.preprocessor)
    assert lengths.min() <= 8 < 17 <= lengths.max() < SEQUENCE_LENGTH  # the data spans several buckets
    seen = []  # (batch width, longest real length in the batch, batch size)
    train_step = classifier.train_step

    def recording_train_step(data):
        mask = np.asarray(data[0]["padding_mask"]).astype(bool)
        seen.append((mask.shape[1], int(mask.sum(axis=1).max()), mask.shape[0]))
        return train_step(data)

    classifier.train_step = recording_train_step
    classifier.fit(texts, labels, batch_size=16, epochs=8, verbose=0)

    boundaries = sorted({int(b) for b in np.ceil(np.quantile(lengths, [0.25, 0.5, 0.75, 1.0], method="higher") / 8) * 8})
    widths = sorted({width for width, _, _ in seen})
    assert widths == boundaries and len(widths) > 1 and max(widths) < SEQUENCE_LENGTH
    for width, longest, _ in seen:  # each batch is cut to the shortest bucket that fits its examples
        below = [b for b in boundaries if b < width]
        assert longest <= width and (not below or longest > below[-1])
    per_epoch = len(seen) // 8
    assert len(seen) == 8 * per_epoch and sum(size for _, _, size in seen[:per_epoch]) == len(texts)
    assert classifier.optimizer._learning_rate.total_steps == len(seen)  # sized from the bucketed batches
    # Batches are shuffled across buckets: the first epoch is not sorted by width.
    first = [width for width, _, _ in seen[:per_epoch]]
    assert first != sorted(first) and first != sorted(first, reverse=True)
    assert classifier.evaluate(texts, labels, verbose=0, return_dict=True)["accuracy"] > 0.9


def test_a_dataset_of_strings_is_bucketed_too(toy_vocabulary):
    texts, labels = mixed_length_task(n=40)
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary,
                                 sequence_length=SEQUENCE_LENGTH, seed=0, verbose=False)
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8)
    batches = list(classifier.make_batches(dataset, shuffle=True).as_numpy_iterator())
    got_labels = np.concatenate([y for _, y in batches])
    assert sorted(got_labels.tolist()) == sorted(labels.tolist())
    assert max(len(y) for _, y in batches) == 8  # rebatched at the dataset's own batch size
    assert {x["token_ids"].shape[1] for x, _ in batches} <= {8, 16, 24, 32}
    assert min(x["token_ids"].shape[1] for x, _ in batches) < SEQUENCE_LENGTH


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_predict_matches_fixed_padding_in_the_callers_order(toy_vocabulary, task):
    texts, _ = mixed_length_task(n=23, seed=1)
    order = np.random.default_rng(2).permutation(len(texts))
    texts = [texts[i] for i in order]
    build = text_classifier if task == "classifier" else text_regressor
    args = (2,) if task == "classifier" else ()
    model = build(tiny_backbone(toy_vocabulary), *args, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH,
                  verbose=False)
    batches, batch_order = model.prediction_batches(texts, batch_size=4)
    widths = [x["token_ids"].shape[1] for x in batches.as_numpy_iterator()]
    assert batch_order is not None and min(widths) < SEQUENCE_LENGTH and widths == sorted(widths)

    bucketed = model.predict(texts, batch_size=4, verbose=0)
    model.set_run_options(bucketing=False)
    assert model.prediction_batches(texts, batch_size=4)[1] is None
    fixed = model.predict(texts, batch_size=4, verbose=0)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)
    # The caller's order, checked against one text at a time at full padding.
    for i in (0, 7, 22):
        np.testing.assert_allclose(bucketed[i], model.predict([texts[i]], verbose=0)[0], atol=1e-5)


def test_unknown_bucketing_is_refused_naming_the_argument(toy_vocabulary):
    backbone = tiny_backbone(toy_vocabulary)
    with pytest.raises(ValueError, match="`bucketing`.*'maybe'"):
        text_classifier(backbone, 2, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH, bucketing="maybe")
    with pytest.raises(ValueError, match="`bucketing`"):
        text_regressor(backbone, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH, bucketing="maybe")
    with pytest.raises(ValueError, match="`bucketing`"):
        TextRegressor(backbone, bucketing=[16, 0])
    classifier = TextClassifier(backbone, 2, bucketing=[16, 32])
    assert classifier.bucketing == (16, 32)
    with pytest.raises(ValueError, match="`bucketing`"):
        classifier.set_run_options(bucketing="maybe")
    assert classifier.bucketing == (16, 32)  # a refused value changes nothing
