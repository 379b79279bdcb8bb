"""Shuffled input pipelines for keras-hub tasks trained on in-memory examples.

keras-hub's `Task.fit` turns lists and arrays into a dataset in their given order and never
shuffles them (Keras itself reshuffles arrays every epoch by default), so a labelled file sorted
by class would be learned one class at a time. The tasks and recipes of this package pass such
inputs through `shuffled_batches` first.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_ptft.validation import num_examples


def shuffled_batches(x, y=None, sample_weight=None, batch_size: int | None = None, seed: int | None = None,
                     shuffle: bool = True):
    """In-memory examples as a `tf.data.Dataset` of batches, reshuffled every epoch.

    Args:
        x: a list or array of examples, or a tuple of them (e.g. text pairs).
        y: labels or None.
        sample_weight: per-example weights or None.
        batch_size: int or None. Batch size; None for 32, Keras' default.
        seed: int or None. Shuffling seed; None follows `keras.utils.set_random_seed`.
        shuffle: bool. False keeps the given order (for evaluation and prediction).

    Returns:
        A `tf.data.Dataset` yielding `x`, `(x, y)` or `(x, y, sample_weight)` batches.

    Example:
    ```python
    dataset = shuffled_batches(["a b", "c d", "e f"], [0, 1, 0], batch_size=2, seed=0)
    ```
    """
    import tensorflow as tf

    data = keras.utils.pack_x_y_sample_weight(_as_sliceable(x), _as_sliceable(y), _as_sliceable(sample_weight))
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if not shuffle:
        return dataset.batch(batch_size or 32)
    count = int(dataset.cardinality())
    return dataset.shuffle(count, seed=seed, reshuffle_each_iteration=True).batch(batch_size or 32)


def shuffle_in_memory_inputs(x, y, sample_weight, batch_size, kwargs: dict):
    """What a keras-hub task's `fit` should receive: `(x, y, sample_weight, batch_size)`.

    In-memory inputs become `shuffled_batches` unless `shuffle=False` is in `kwargs` (which
    this removes, as Keras warns about it with a dataset); a `validation_split` is taken first,
    from the end of the data as Keras does, and replaced by `validation_data`. Datasets and
    generators pass through unchanged.
    """
    shuffle = kwargs.pop("shuffle", True)
    if x is None or hasattr(x, "element_spec") or not _is_in_memory(x):
        return x, y, sample_weight, batch_size
    split = kwargs.pop("validation_split", None)
    if split:
        if kwargs.get("validation_data") is not None:
            raise ValueError("Pass either `validation_split` or `validation_data`, not both.")
        (x, y, sample_weight), kwargs["validation_data"] = split_validation(x, y, sample_weight, split)
    if not shuffle:
        return x, y, sample_weight, batch_size
    return shuffled_batches(x, y, sample_weight, batch_size), None, None, None


def split_validation(x, y, sample_weight, validation_split: float):
    """Cuts the last `validation_split` of in-memory examples off as validation data, as Keras
    does: returns `((x, y, sample_weight), validation_data)`.

    Example:
    ```python
    (x, y, _), validation_data = split_validation(texts, labels, None, 0.2)
    ```
    """
    total = num_examples(x)
    cut = total - int(round(total * float(validation_split)))
    if not 0 < cut < total:
        raise ValueError(f"`validation_split`={validation_split} leaves no training or no validation examples "
                         f"of {total}.")
    head = lambda part: _slice(part, slice(None, cut))  # noqa: E731
    tail = lambda part: _slice(part, slice(cut, None))  # noqa: E731
    validation = tuple(v for v in (tail(x), tail(y), tail(sample_weight)) if v is not None)
    return (head(x), head(y), head(sample_weight)), validation


def _is_in_memory(x) -> bool:
    if isinstance(x, tuple):
        return all(isinstance(part, (list, np.ndarray)) for part in x)
    return isinstance(x, (list, np.ndarray))


def _as_sliceable(part):
    if part is None:
        return None
    if isinstance(part, tuple):
        return tuple(_as_sliceable(p) for p in part)
    if isinstance(part, dict):
        return {k: _as_sliceable(v) for k, v in part.items()}
    return np.asarray(part)


def _slice(part, where: slice):
    if part is None:
        return None
    if isinstance(part, tuple):
        return tuple(_slice(p, where) for p in part)
    if isinstance(part, dict):
        return {k: _slice(v, where) for k, v in part.items()}
    return part[where]
