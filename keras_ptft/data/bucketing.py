"""Length-bucketed batches with dynamic padding: stop computing on padding.

Preprocessors (ours and keras-hub's) pad every example to one `sequence_length`. On real text
most of those positions are padding: SST-2 sentences average 13 WordPiece tokens, so at length 64
only ~21% of the positions a step computes are real. Here examples are grouped into a handful of
length buckets and each batch is cut to its bucket's length, so a batch of short sentences costs
what short sentences cost.

- `bucket_boundaries(lengths)` picks the bucket lengths from the data's own length quantiles,
  rounded up to a multiple of 8, so the number of distinct batch shapes (and hence of traces /
  XLA compilations) stays small; `batch_shapes` lists them.
- `bucketed_batches(dataset, batch_size, boundaries)` batches a `tf.data.Dataset` of unbatched
  preprocessed examples (`features`, `(features, y)` or `(features, y, sample_weight)`), shuffling
  examples and batches anew every epoch.
- `length_sorted_batches(features, batch_size)` + `restore_order(outputs, order)` do the same for
  inference: sort by length, predict bucket by bucket, hand results back in the caller's order.
- `check_bucketing(bucketing)` normalises a `bucketing=` argument (True / False / a number of
  buckets / explicit boundaries).

Bucketing only ever drops positions where `padding_mask` is 0 at the right end of a row; a
backbone whose outputs on real tokens do not depend on right padding (tested for `Bert` and `GPT`
in `tests/models/test_padding_invariance.py`) gives the same results as with fixed padding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

DEFAULT_NUM_BUCKETS = 4
LENGTH_KEY = "padding_mask"


def bucket_boundaries(
    lengths: Sequence[int] | np.ndarray,
    num_buckets: int = DEFAULT_NUM_BUCKETS,
    multiple: int = 8,
    max_length: int | None = None,
) -> list[int]:
    """Bucket lengths from the data's own length quantiles.

    The `i / num_buckets` quantiles of `lengths` (i = 1 … num_buckets, the last being the longest
    example) are rounded up to a multiple of `multiple`, capped at `max_length` and deduplicated,
    so there are at most `num_buckets` buckets, and the last one holds the longest example.

    Args:
        lengths: list or 1-D array of int. The number of real tokens of every example (special
            tokens included), e.g. the row sums of `padding_mask`.
        num_buckets: int. The most buckets to make; >= 1.
        multiple: int. Every bucket length is a multiple of this (8 suits vector units and keeps
            the set of shapes small), except a last one capped at `max_length`; >= 1.
        max_length: int or None. The longest a batch may be, normally the preprocessor's
            `sequence_length`; None means the longest example, rounded up.

    Returns:
        A sorted list of int: the length every batch of each bucket is padded/cut to. An example
        of length `n` goes to the first bucket whose length is >= `n`.

    Example:
    ```python
    bucket_boundaries([3, 5, 7, 9, 12, 30], num_buckets=3, max_length=64)  # [8, 16, 32]
    ```
    """
    num_buckets = _check_positive_int(num_buckets, "num_buckets")
    multiple = _check_positive_int(multiple, "multiple")
    if max_length is not None:
        max_length = _check_positive_int(max_length, "max_length")
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.size == 0 or lengths.dtype.kind not in "iu":
        raise ValueError(
            "`lengths` must be a non-empty 1-D list or array of int, received "
            f"{'an empty sequence' if lengths.size == 0 else f'dtype {lengths.dtype}, shape {lengths.shape}'}."
        )
    if lengths.min() < 1:
        raise ValueError(f"`lengths` must all be >= 1, received a length of {lengths.min()}.")
    quantiles = np.quantile(lengths, np.arange(1, num_buckets + 1) / num_buckets, method="higher")
    rounded = np.ceil(quantiles / multiple).astype(int) * multiple
    if max_length is not None:
        if lengths.max() > max_length:
            raise ValueError(
                f"`lengths` holds an example of {lengths.max()} tokens, longer than "
                f"max_length={max_length}."
            )
        rounded = np.minimum(rounded, max_length)
    return sorted({int(length) for length in rounded})


def batch_shapes(
    boundaries: Sequence[int], batch_size: int, drop_remainder: bool = False
) -> list[tuple[int | None, int]]:
    """The `(batch, sequence)` shapes `bucketed_batches` can produce with these boundaries.

    Every distinct shape is one more trace of a `tf.function` and one more XLA / `jax.jit`
    compilation, so this is the number to keep small.

    Args:
        boundaries: list of int. Bucket lengths, as returned by `bucket_boundaries`.
        batch_size: int. The batch size given to `bucketed_batches`.
        drop_remainder: bool. As given to `bucketed_batches`. When False, each bucket may also
            produce one smaller last batch per epoch; its shape is listed with batch `None`.

    Returns:
        A list of `(batch, sequence)` tuples, full batches first.

    Example:
    ```python
    batch_shapes([16, 32], batch_size=32)  # [(32, 16), (32, 32), (None, 16), (None, 32)]
    ```
    """
    boundaries = _check_boundaries(boundaries)
    batch_size = _check_positive_int(batch_size, "batch_size")
    shapes = [(batch_size, length) for length in boundaries]
    if not drop_remainder:
        shapes += [(None, length) for length in boundaries]
    return shapes


def check_bucketing(bucketing) -> bool | int | list[int]:
    """Validates a `bucketing=` argument.

    Args:
        bucketing: True (bucket with `DEFAULT_NUM_BUCKETS` buckets from the data's quantiles),
            False (fixed padding to `sequence_length`), a positive int (that many buckets) or a
            list of positive ints (explicit bucket lengths).

    Returns:
        False, a number of buckets (int), or a sorted list of bucket lengths.

    Example:
    ```python
    check_bucketing(True)      # 4
    check_bucketing([32, 16])  # [16, 32]
    ```
    """
    if bucketing is True:
        return DEFAULT_NUM_BUCKETS
    if bucketing is False or bucketing is None:
        return False
    if isinstance(bucketing, (int, np.integer)):
        return _check_positive_int(bucketing, "bucketing")
    if isinstance(bucketing, (list, tuple, np.ndarray)):
        return _check_boundaries(bucketing, "bucketing")
    raise ValueError(
        "`bucketing` must be True, False, a number of buckets or a list of bucket lengths, "
        f"received bucketing={bucketing!r}."
    )


def boundaries_for(bucketing, lengths, max_length: int | None = None) -> list[int]:
    """The bucket lengths a checked `bucketing` (`check_bucketing`) asks for on these lengths.

    Args:
        bucketing: a number of buckets (from the data's quantiles, `bucket_boundaries`) or a
            list / tuple of explicit bucket lengths (returned as they are).
        lengths: 1-D int array. The examples' real lengths.
        max_length: int or None. The preprocessor's `sequence_length`.

    Example:
    ```python
    boundaries_for(2, [3, 5, 20], max_length=32)  # [8, 24]
    ```
    """
    if isinstance(bucketing, (list, tuple)):
        return list(bucketing)
    return bucket_boundaries(np.maximum(np.asarray(lengths), 1), num_buckets=bucketing, max_length=max_length)


def merge_small_buckets(boundaries: Sequence[int], lengths, min_size: int) -> list[int]:
    """Drops every bucket length that would hold fewer than `min_size` examples; its examples go
    to the next longer bucket (the longest bucket always stays).

    With `drop_remainder=True` a bucket smaller than one batch would lose all its examples; a
    contrastive task (in-batch negatives want full batches) merges them upward instead.

    Args:
        boundaries: list of int. Bucket lengths.
        lengths: 1-D int array. The examples' real lengths.
        min_size: int. The fewest examples a bucket may hold, e.g. the batch size.

    Example:
    ```python
    merge_small_buckets([8, 16, 32], [3, 4, 10, 11, 30, 31], min_size=2)  # [8, 16, 32]
    merge_small_buckets([8, 16, 32], [3, 10, 11, 30, 31], min_size=2)     # [16, 32]
    merge_small_buckets([8, 16, 32], [3, 4, 10, 11, 30], min_size=2)      # [8, 32]
    ```
    """
    boundaries = _check_boundaries(boundaries)
    lengths = np.asarray(lengths)
    kept, start = [], 0
    for index, boundary in enumerate(boundaries):
        count = int(np.sum((lengths > start) & (lengths <= boundary)))
        if count >= min_size or index == len(boundaries) - 1:
            kept.append(boundary)
            start = boundary
    # A small longest bucket has nowhere longer to go: it joins the one below instead (else its
    # examples, the longest of the data, would never fill a batch).
    while len(kept) > 1 and np.sum(lengths > kept[-2]) < min_size:
        del kept[-2]
    return kept


def example_lengths(dataset: tf.data.Dataset) -> np.ndarray:
    """The number of real tokens of every example of a dataset of unbatched preprocessed examples.

    One pass over `dataset` (cheap next to training: no model runs); use it to choose boundaries.

    Args:
        dataset: `tf.data.Dataset` of `features`, `(features, y)` or `(features, y, sample_weight)`
            where `features` is a dict holding a 1-D `"padding_mask"`.

    Returns:
        A 1-D int array of `padding_mask` row sums, in the dataset's order.

    Example:
    ```python
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=32)
    examples = kp.data.preprocessed_examples(["a b", "a", "a b a b a b a b a b"], preprocessor)
    lengths = kp.data.example_lengths(examples)                   # array([ 4,  3, 12])
    boundaries = kp.data.bucket_boundaries(lengths, max_length=32)  # [8, 16]
    ```
    """
    _check_examples(dataset)
    lengths = dataset.map(lambda *element: _length(element[0]), num_parallel_calls=tf.data.AUTOTUNE)
    chunks = list(lengths.batch(4096).as_numpy_iterator())
    return np.concatenate(chunks).astype(int) if chunks else np.zeros((0,), int)


def bucketed_batches(
    dataset: tf.data.Dataset,
    batch_size: int,
    boundaries: Sequence[int],
    shuffle: bool = True,
    seed: int | None = None,
    shuffle_buffer_size: int | None = None,
    batch_shuffle_buffer_size: int = 64,
    drop_remainder: bool = False,
    lengths: Sequence[int] | np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches preprocessed examples by length bucket, each batch cut to its bucket's length.

    Each example goes to the first bucket at least as long as its real tokens. Every tensor of an
    example whose length is the examples' padded length (`token_ids`, `padding_mask`,
    `segment_ids`, and labels / sample weights per token, e.g. a causal LM's) is cut to the
    bucket's length; everything else (`mask_positions`, class labels) is left whole. Only right
    padding is ever removed.

    Shuffling stays honest: with `shuffle=True` the examples are shuffled anew every epoch before
    they are grouped (so every bucket sees its examples in a new order), and the finished batches
    are shuffled again across buckets, so an epoch is never "all short, then all long".

    Args:
        dataset: `tf.data.Dataset` of unbatched examples: `features`, `(features, y)` or
            `(features, y, sample_weight)`, where `features` is a dict of 1-D tensors padded to one
            length and holding `"padding_mask"` (1 on real tokens), as keras-hub-style
            preprocessors return.
        batch_size: int. Examples per batch.
        boundaries: list of int. Bucket lengths, e.g. from `bucket_boundaries`; the last must be
            at least the longest example.
        shuffle: bool. Shuffle examples and batches every epoch.
        seed: int or None. Makes the shuffles reproducible (each epoch still differs).
        shuffle_buffer_size: int or None. Examples held for shuffling; None means the whole
            dataset when its size is known, else 10,000.
        batch_shuffle_buffer_size: int. Finished batches held for the cross-bucket shuffle.
        drop_remainder: bool. Drop each bucket's last smaller batch (fewer distinct shapes).
        lengths: list or 1-D array of int, or None. The examples' lengths (`example_lengths`), when
            known: the dataset then reports its number of batches, so Keras shows a progress bar
            total and does not warn that the first epoch "ran out of data".

    Returns:
        A `tf.data.Dataset` of batches with the same structure as `dataset`'s elements.

    Example:
    ```python
    import tensorflow as tf
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=32)
    texts = tf.data.Dataset.from_tensor_slices((["a", "a b a b a b a b a b a"], [0, 1]))
    examples = texts.batch(256).map(preprocessor).unbatch()
    batches = kp.data.bucketed_batches(examples, batch_size=8, boundaries=[8, 16], seed=0)
    [x["token_ids"].shape for x, _ in batches]  # [(1, 8), (1, 16)] in either order
    ```
    """
    _check_examples(dataset)
    boundaries = _check_boundaries(boundaries)
    batch_size = _check_positive_int(batch_size, "batch_size")
    features_spec = _features_spec(dataset)
    padded_length = features_spec[_mask_keys(features_spec)[0]].shape[0]
    bucket_lengths = tf.constant(boundaries, tf.int64)

    if shuffle:
        if shuffle_buffer_size is None:
            size = int(dataset.cardinality())
            shuffle_buffer_size = size if size > 0 else 10_000
        dataset = dataset.shuffle(shuffle_buffer_size, seed=seed, reshuffle_each_iteration=True)

    def bucket_of(*element):
        length = tf.cast(_length(element[0]), tf.int64)
        index = tf.searchsorted(bucket_lengths, length[tf.newaxis], side="left", out_type=tf.int64)[0]
        # An example longer than the last bucket would silently lose tokens; refuse it instead.
        tf.debugging.assert_less(
            index, tf.size(bucket_lengths, tf.int64),
            message="bucketed_batches: an example is longer than the last of `boundaries`",
        )
        return index

    def batch_bucket(index, window):
        length = bucket_lengths[index]

        def cut(*batch):
            return _cut(batch if len(batch) > 1 else batch[0], length, padded_length)

        return window.batch(batch_size, drop_remainder=drop_remainder).map(cut)

    # `group_by_window` rather than `bucket_by_sequence_length`: the latter pads ragged examples
    # with `padded_batch`, so it needs unpadded inputs and a pad value per feature (the pad id
    # differs between tokenizers). Our examples are already padded to one length by the
    # preprocessor, so cutting each batch to its bucket's length is both simpler and cheaper.
    batches = dataset.group_by_window(bucket_of, batch_bucket, window_size=batch_size)
    if shuffle and batch_shuffle_buffer_size > 1:
        batches = batches.shuffle(
            batch_shuffle_buffer_size, seed=None if seed is None else seed + 1, reshuffle_each_iteration=True
        )
    if lengths is not None:
        lengths = np.asarray(lengths)
        per_bucket = np.bincount(np.searchsorted(boundaries, lengths, side="left"), minlength=len(boundaries) + 1)
        if per_bucket[-1]:
            raise ValueError(
                f"`lengths` holds an example of {lengths.max()} tokens, longer than the last of "
                f"boundaries={boundaries}."
            )
        rounding = np.floor if drop_remainder else np.ceil
        num_batches = int(rounding(per_bucket[:-1] / batch_size).sum())
        batches = batches.apply(tf.data.experimental.assert_cardinality(num_batches))
    return batches.prefetch(tf.data.AUTOTUNE)


def bucketed_arrays(
    x: dict,
    y=None,
    sample_weight=None,
    batch_size: int = 32,
    bucketing=DEFAULT_NUM_BUCKETS,
    max_length: int | None = None,
    shuffle: bool = True,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """`bucketed_batches` for examples already tokenized into arrays (one example per row).

    Args:
        x: dict of arrays `(num_examples, sequence_length)`, holding `"padding_mask"` (or one per
            side of a pair model: `"anchor_padding_mask"`, `"positive_padding_mask"`).
        y, sample_weight: arrays with one row per example, or None; per-token ones (a causal
            LM's next tokens and loss weights) are cut with the features.
        batch_size: int. Examples per batch.
        bucketing: a checked `bucketing` (`check_bucketing`): a number of buckets or bucket lengths.
        max_length: int or None. The preprocessor's `sequence_length`.
        shuffle, seed: as in `bucketed_batches`.
        drop_remainder: bool. Drop each bucket's last partial batch; buckets too small for one
            batch are merged first (`merge_small_buckets`), so no bucket loses all its examples.

    Returns:
        A `tf.data.Dataset` of `x`, `(x, y)` or `(x, y, sample_weight)` batches with a known length.

    Example:
    ```python
    import numpy as np

    mask = np.array([[1, 1, 0, 0], [1, 1, 1, 1]] * 4)
    batches = kp.data.bucketed_arrays({"token_ids": mask * 5, "padding_mask": mask}, batch_size=2,
                                      bucketing=[2, 4])
    sorted({x["token_ids"].shape for x in batches.as_numpy_iterator()})  # [(2, 2), (2, 4)]
    ```
    """
    features = {key: np.asarray(value) for key, value in x.items()}
    keys = _mask_keys(features)
    if not keys:
        raise ValueError(f"`x` must be a dict holding {LENGTH_KEY!r}, received keys {sorted(features)}.")
    lengths = np.max([features[key].astype(bool).sum(axis=1) for key in keys], axis=0)
    boundaries = boundaries_for(bucketing, lengths, max_length)
    if drop_remainder:
        boundaries = merge_small_buckets(boundaries, lengths, batch_size)
    columns = [features] + [np.asarray(v) for v in (y, sample_weight) if v is not None]
    dataset = tf.data.Dataset.from_tensor_slices(tuple(columns) if len(columns) > 1 else features)
    return bucketed_batches(dataset, batch_size, boundaries, shuffle=shuffle, seed=seed,
                            drop_remainder=drop_remainder, lengths=lengths)


def preprocessed_examples(
    x,
    preprocessor,
    y=None,
    sample_weight=None,
    batch_size: int = 256,
) -> tf.data.Dataset:
    """Raw texts (+ labels) → a dataset of unbatched preprocessed examples for `bucketed_batches`.

    Texts are preprocessed `batch_size` at a time (tokenizing a batch is much faster than one
    text at a time) and then unbatched, so bucketing can regroup them by length.

    Args:
        x: the texts: a list or 1-D NumPy array of str, a pair of equally long lists (text
            pairs, packed by the preprocessor into one example), or a `tf.data.Dataset` yielding
            strings or `(strings, y)` / `(strings, y, sample_weight)`, batched or not.
        preprocessor: a callable `preprocessor(texts, y, sample_weight)` returning
            `features` / `(features, y[, sample_weight])` with a `"padding_mask"`, e.g.
            `kp.data.BertPreprocessor` or a keras-hub text classifier preprocessor.
        y: labels for list / array `x`; None for a dataset (which carries its own).
        sample_weight: sample weights for list / array `x`, or None.
        batch_size: int. Texts preprocessed at once.

    Returns:
        A `tf.data.Dataset` of unbatched `features`, `(features, y)` or
        `(features, y, sample_weight)`.

    Example:
    ```python
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=16)
    examples = kp.data.preprocessed_examples(["a b", "a"], preprocessor, y=[1, 0])
    next(iter(examples))[0]["token_ids"].shape  # (16,)
    ```
    """
    batch_size = _check_positive_int(batch_size, "batch_size")
    expected = "strings (a list or 1-D array of str, or a tf.data.Dataset of strings)"
    if isinstance(x, tf.data.Dataset):
        if y is not None or sample_weight is not None:
            raise ValueError("`y` and `sample_weight` must be None when `x` is a tf.data.Dataset (it carries its own).")
        dataset = x
    else:
        pair = isinstance(x, tuple) and len(x) == 2 and not isinstance(x[0], (str, bytes))
        texts = [_checked_strings(part, f"x[{side}]" if pair else "x", expected)
                 for side, part in enumerate(x if pair else (x,))]
        if pair and len(texts[0]) != len(texts[1]):
            raise ValueError(
                f"`x` must be a pair of equally long lists of str, received {len(texts[0])} and {len(texts[1])} texts."
            )
        columns = [tuple(texts) if pair else texts[0]] + [v for v in (y, sample_weight) if v is not None]
        dataset = tf.data.Dataset.from_tensor_slices(tuple(columns) if len(columns) > 1 else columns[0])
        if pair:  # already checked, and the first element of a pair's spec is itself a tuple
            if len(columns) == 1:  # `map` would hand the two sides over as `x` and `y`
                return dataset.batch(batch_size).map(lambda a, b: preprocessor((a, b))).unbatch()
            return dataset.batch(batch_size).map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    spec = dataset.element_spec
    text_spec = spec[0] if isinstance(spec, tuple) else spec
    if not isinstance(text_spec, tf.TensorSpec) or text_spec.dtype != tf.string or text_spec.shape.rank not in (0, 1):
        raise ValueError(
            f"`x` must be {expected}; the dataset yields {text_spec} instead of strings."
        )
    if text_spec.shape.rank == 0:
        dataset = dataset.batch(batch_size)
    return dataset.map(preprocessor, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def length_sorted_batches(
    features: dict,
    batch_size: int,
    boundaries: Sequence[int] | None = None,
) -> tuple[tf.data.Dataset, np.ndarray]:
    """Inference batches with little padding: examples sorted by length, cut per batch.

    Each batch holds consecutive examples of the length-sorted order and is cut to the shortest
    bucket that fits its longest example. Run the model over the dataset, then put the outputs
    back in the caller's order with `restore_order(outputs, order)`.

    Args:
        features: dict of arrays of shape `(num_examples, sequence_length)` (plus any per-example
            arrays), holding `"padding_mask"`, as a preprocessor returns for a batch.
        batch_size: int. Examples per batch.
        boundaries: list of int or None. Bucket lengths; None derives them from the lengths with
            `bucket_boundaries(..., max_length=sequence_length)`.

    Returns:
        `(batches, order)`: a `tf.data.Dataset` of feature dicts, and the int array of example
        indices in the order the batches hold them.

    Example:
    ```python
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"]
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=32)
    texts = ["a b a b a b a b a b a b", "a", "b a"]
    batches, order = kp.data.length_sorted_batches(preprocessor(texts), batch_size=2)
    lengths = [batch["padding_mask"].sum(axis=1) for batch in batches.as_numpy_iterator()]
    kp.data.restore_order(np.concatenate(lengths), order)  # [14, 3, 4]: the caller's order
    # with a model: kp.data.restore_order(model.predict(batches), order)
    ```
    """
    if not isinstance(features, dict) or not _mask_keys(features):
        raise ValueError(
            f"`features` must be a dict holding {LENGTH_KEY!r}, received "
            f"{type(features).__name__}{'' if not isinstance(features, dict) else ' with keys ' + str(sorted(features))}."
        )
    batch_size = _check_positive_int(batch_size, "batch_size")
    features = {key: np.asarray(value) for key, value in features.items()}
    masks = [features[key] for key in _mask_keys(features)]
    if any(mask.ndim != 2 or mask.shape != masks[0].shape for mask in masks):
        raise ValueError(f"`features[{LENGTH_KEY!r}]` must be 2-D, received shape {masks[0].shape}.")
    num_examples, padded_length = masks[0].shape
    lengths = np.max([mask.astype(bool).sum(axis=1) for mask in masks], axis=0)
    if boundaries is None:
        boundaries = bucket_boundaries(np.maximum(lengths, 1), max_length=padded_length)
    boundaries = _check_boundaries(boundaries)
    if lengths.max(initial=0) > boundaries[-1]:
        raise ValueError(
            f"`boundaries` must reach the longest example ({lengths.max()} tokens), received "
            f"boundaries={boundaries}."
        )
    order = np.argsort(lengths, kind="stable")
    batches = []
    for start in range(0, num_examples, batch_size):
        indices = order[start : start + batch_size]
        length = boundaries[int(np.searchsorted(boundaries, lengths[indices].max(), side="left"))]
        batches.append(
            {
                key: value[indices, :length] if value.ndim >= 2 and value.shape[1] == padded_length else value[indices]
                for key, value in features.items()
            }
        )
    signature = {
        key: tf.TensorSpec((None,) * value.ndim, tf.as_dtype(value.dtype)) for key, value in features.items()
    }
    dataset = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=signature)
    # A known length: Keras' `predict` shows a progress total and does not warn "ran out of data".
    return dataset.apply(tf.data.experimental.assert_cardinality(len(batches))), order


def restore_order(outputs, order: np.ndarray):
    """Puts per-example outputs computed in `order` back in the caller's order.

    Args:
        outputs: an array (or a list of per-example results, or a dict / tuple of arrays) whose
            first axis follows `order`.
        order: 1-D int array, the `order` returned by `length_sorted_batches`.

    Returns:
        The same structure, reordered so that item `i` belongs to the caller's example `i`.

    Example:
    ```python
    restore_order(np.array([10, 20, 30]), np.array([2, 0, 1]))  # array([20, 30, 10])
    ```
    """
    order = np.asarray(order)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    if isinstance(outputs, dict):
        return {key: restore_order(value, order) for key, value in outputs.items()}
    if isinstance(outputs, tuple):
        return tuple(restore_order(value, order) for value in outputs)
    if isinstance(outputs, list):
        if len(outputs) != order.size:
            raise ValueError(f"`outputs` has {len(outputs)} items but `order` has {order.size}.")
        return [outputs[i] for i in inverse]
    outputs = np.asarray(outputs)
    if outputs.shape[:1] != order.shape:
        raise ValueError(f"`outputs` has {outputs.shape[0]} rows but `order` has {order.size}.")
    return outputs[inverse]


def _checked_strings(x, argument: str, expected: str) -> list:
    """`x` as a non-empty list of str, or a ValueError naming `argument`."""
    if isinstance(x, (str, bytes)):
        x = [x]
    array = np.asarray(x) if isinstance(x, (list, tuple, np.ndarray)) else None
    if array is None or array.ndim != 1 or (array.size and array.dtype.kind not in "USO"):
        raise ValueError(f"`{argument}` must be {expected}, received {type(x).__name__} {x!r:.100}.")
    # The original items, not `array`'s: NumPy would quietly turn a stray 7 into "7".
    for index, text in enumerate(x if isinstance(x, (list, tuple)) else array.tolist()):
        if not isinstance(text, (str, bytes)):
            raise ValueError(
                f"`{argument}` must be {expected}, received {text!r:.100} of type {type(text).__name__} at index {index}."
            )
    if array.size == 0:
        raise ValueError(f"`{argument}` must hold at least one text, received an empty sequence.")
    return list(array.tolist())


def _mask_keys(features) -> list[str]:
    """The padding masks of an example: `"padding_mask"`, or one per side of a pair model's inputs
    (`"anchor_padding_mask"`, `"positive_padding_mask"`)."""
    return sorted(key for key in features if key == LENGTH_KEY or key.endswith("_" + LENGTH_KEY))


def _length(features):
    # A pair model's example is as long as its longer side: one cut must keep both.
    return tf.reduce_max(
        [tf.reduce_sum(tf.cast(tf.not_equal(features[key], 0), tf.int32)) for key in _mask_keys(features)]
    )


def _cut(batch, length, padded_length):
    """Cuts every tensor of a batch whose second axis is the padded length to `length`."""

    def cut_one(tensor):
        if tensor.shape.rank is not None and tensor.shape.rank >= 2 and tensor.shape[1] == padded_length:
            return tensor[:, :length]
        return tensor

    return tf.nest.map_structure(cut_one, batch)


def _features_spec(dataset) -> dict:
    spec = dataset.element_spec
    return spec[0] if isinstance(spec, tuple) else spec


def _check_examples(dataset) -> None:
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(
            "`dataset` must be a tf.data.Dataset of unbatched preprocessed examples, received "
            f"{type(dataset).__name__}."
        )
    spec = dataset.element_spec
    features = _features_spec(dataset)
    if not isinstance(features, dict) or not _mask_keys(features):
        raise ValueError(
            f"`dataset` must yield a dict of features holding {LENGTH_KEY!r} (optionally with labels "
            f"and sample weights), received elements of spec {spec}. Map a preprocessor over the "
            "texts first."
        )
    shapes = {tuple(features[key].shape) for key in _mask_keys(features)}
    shape = features[_mask_keys(features)[0]].shape
    if shape.rank != 1 or shape[0] is None or len(shapes) > 1:
        raise ValueError(
            f"`dataset` must yield unbatched examples padded to one length (a {LENGTH_KEY!r} of shape "
            f"(sequence_length,)), received shape {shape}; `.unbatch()` a batched dataset first."
        )


def _check_positive_int(value, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{argument}` must be a positive int, received {argument}={value!r}.")
    return int(value)


def _check_boundaries(boundaries, argument: str = "boundaries") -> list[int]:
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, (Sequence, np.ndarray)) or len(boundaries) == 0:
        raise ValueError(
            f"`{argument}` must be a non-empty list of positive ints (bucket lengths), received "
            f"{argument}={boundaries!r}."
        )
    for value in boundaries:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(
                f"`{argument}` must hold positive ints (bucket lengths), received {value!r} in "
                f"{argument}={list(boundaries)!r}."
            )
    return sorted({int(value) for value in boundaries})
