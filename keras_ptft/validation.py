"""Argument checks shared by every task and recipe: one rule per kind of input.

Each check raises a `ValueError` (a `TypeError` for a value of the wrong kind altogether) whose
message names the argument, what was expected and what was received, before any backend sees the
value. The rules:

| check                   | accepts                                                  | refuses                          |
|-------------------------|----------------------------------------------------------|----------------------------------|
| `check_texts`           | a list / tuple / 1-D array of str; a single str is one   | empty (unless `allow_empty`),    |
|                         | text and becomes `[text]`                                | any non-str item                 |
| `check_text_pairs`      | a tuple `(firsts, seconds)` of two equally long texts    | anything else                    |
| `check_images`          | uint8 `(batch, *image_shape)` arrays or a tf.data spec   | other dtypes, shapes, empty      |
| `check_num_classes`     | an int >= 2 (not a bool)                                 | anything else                    |
| `check_labels`          | integer labels in `[0, num_classes)` (integral floats ok)| out of range, fractional, NaN    |
| `check_same_length`     | two in-memory inputs with as many examples               | different counts                 |
| `check_sequence_length` | None (then `min(default, backbone.max_sequence_length)`) | non-int, < minimum, > backbone   |
|                         | or an int in `[minimum, backbone.max_sequence_length]`   | limit                            |

Tensors and `tf.data` datasets pass the in-memory checks untouched: they can only be checked as
they stream by.

Example:
```python
from keras_ptft import validation

texts = validation.check_texts("a single text", "x")   # ["a single text"]
validation.check_labels([0, 1, 1], num_classes=2, argument="y")
```
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = [
    "check_texts",
    "check_text_pairs",
    "check_text_dataset",
    "check_images",
    "check_num_classes",
    "check_labels",
    "check_same_length",
    "check_sequence_length",
    "num_examples",
    "is_in_memory",
]


def check_texts(texts: Any, argument: str, allow_empty: bool = False, allow_blank: bool = True) -> list[str]:
    """Checks raw texts and returns them as a list of str.

    Args:
        texts: a list, tuple or 1-D NumPy array of str; a single str counts as one text.
        argument: str. The argument's name, used in the error message.
        allow_empty: bool. Accept an empty list (e.g. for `predict([])`).
        allow_blank: bool. Accept texts that are empty or only white space (False for the two
            sides of translation pairs, where a blank row is a mistake in the data).

    Returns:
        list of str.

    Example:
    ```python
    check_texts(["a", "b"], "x")  # ["a", "b"]
    ```
    """
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray):
        if texts.ndim != 1:
            raise ValueError(f"`{argument}` must be a 1-D list of strings, received an array of shape {texts.shape}.")
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise TypeError(
            f"`{argument}` must be a string or a list of strings, received {type(texts).__name__}: {texts!r:.80}."
        )
    if not texts and not allow_empty:
        raise ValueError(f"`{argument}` must hold at least one text, received an empty {type(texts).__name__}.")
    for index, text in enumerate(texts):
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        if not isinstance(text, str):
            raise ValueError(
                f"`{argument}` must hold only strings, received {type(text).__name__} {text!r:.80} at index {index}."
            )
    texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
    if not allow_blank:
        for index, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"`{argument}` row {index} is empty; every row needs text.")
    return texts


def check_text_pairs(pairs: Any, argument: str, allow_empty: bool = False) -> tuple[list[str], list[str]]:
    """Checks text pairs given as a tuple `(firsts, seconds)` of two equally long lists of str.

    Args:
        pairs: tuple of two texts lists (see `check_texts`).
        argument: str. The argument's name, used in the error message.
        allow_empty: bool. Accept two empty lists.

    Example:
    ```python
    check_text_pairs((["a question"], ["a passage"]), "x")
    ```
    """
    if not (isinstance(pairs, tuple) and len(pairs) == 2):
        raise ValueError(
            f"`{argument}` must be a tuple `(firsts, seconds)` of two lists of strings, received "
            f"{type(pairs).__name__}{f' of {len(pairs)}' if isinstance(pairs, tuple) else ''}."
        )
    firsts = check_texts(pairs[0], f"{argument}[0]", allow_empty)
    seconds = check_texts(pairs[1], f"{argument}[1]", allow_empty)
    check_same_length(firsts, seconds, f"{argument}[0]", f"{argument}[1]")
    return firsts, seconds


def check_text_dataset(dataset) -> None:
    """Refuses a `tf.data.Dataset` whose inputs are neither strings nor preprocessed feature dicts
    (a dataset of token ids or numbers would otherwise fail deep inside the tokenizer).

    Example:
    ```python
    check_text_dataset(tf.data.Dataset.from_tensor_slices((["a", "b"], [0, 1])))  # passes
    ```
    """
    spec = dataset.element_spec
    inputs = spec[0] if isinstance(spec, tuple) else spec
    dtype = getattr(inputs, "dtype", None)
    if isinstance(inputs, dict) or isinstance(inputs, tuple) or dtype is None or dtype.name == "string":
        return  # strings, text pairs or preprocessed features
    raise ValueError(
        "`x` must be a tf.data.Dataset of strings (or of `(strings, labels)`), or of preprocessed "
        f"feature dicts; the dataset yields {dtype.name} tensors of shape {inputs.shape} as inputs."
    )


def check_images(images: Any, image_shape: Sequence[int], argument: str, allow_empty: bool = False) -> None:
    """Checks uint8 images `(batch, *image_shape)` (arrays, or a tf.data dataset's element spec).

    Args:
        images: array-like or `tf.data.Dataset`.
        image_shape: tuple `(height, width, channels)` the backbone takes.
        argument: str. The argument's name, used in the error message.
        allow_empty: bool. Accept a batch of zero images.

    Example:
    ```python
    check_images(np.zeros((2, 32, 32, 3), "uint8"), (32, 32, 3), "x")
    ```
    """
    # The shape/dtype rule is the backbone's own (`models/vit.py`), so a ViT refuses the same
    # images its tasks do; this adds the batch-level rules.
    from keras_ptft.models.vit import check_images as check_backbone_images

    if images is None:
        raise ValueError(f"`{argument}` must be uint8 images (batch, {', '.join(map(str, image_shape))}), received None.")
    check_backbone_images(images, image_shape, argument)
    if not allow_empty and not hasattr(images, "element_spec") and num_examples(images) == 0:
        raise ValueError(f"`{argument}` must hold at least one image, received an empty batch.")


def check_num_classes(num_classes: Any, argument: str = "num_classes") -> int:
    """Checks a class count: an int >= 2. Returns it as a Python int.

    Example:
    ```python
    check_num_classes(3)
    ```
    """
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"`{argument}` must be an integer >= 2, received {argument}={num_classes!r}.")
    return int(num_classes)


def check_labels(labels: Any, num_classes: int, argument: str = "y") -> Any:
    """Checks integer class labels in `[0, num_classes)`; tensors and datasets pass unchecked.

    Floats are accepted when every value is a whole number (labels read with pandas often are).

    Returns:
        The labels as an int32 NumPy array (tensors and None are returned as they are).

    Example:
    ```python
    check_labels([0, 2, 1], num_classes=3, argument="y")
    ```
    """
    if labels is None or not is_in_memory(labels):
        return labels
    array = np.asarray(labels)
    if array.size == 0:
        return array.astype("int32")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(np.isfinite(array)) or not np.all(
            array == np.round(array)
        ):
            raise ValueError(f"`{argument}` must hold integer class labels, received dtype {array.dtype}.")
    low, high = array.min(), array.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"`{argument}` must hold labels in [0, num_classes={num_classes}), received labels from {low} to {high}."
        )
    return array.astype("int32")


def check_same_length(x: Any, y: Any, x_argument: str = "x", y_argument: str = "y") -> None:
    """Checks that two in-memory inputs hold as many examples (datasets and None pass).

    Example:
    ```python
    check_same_length(["a", "b"], [0, 1])
    ```
    """
    if x is None or y is None or not is_in_memory(x) or not is_in_memory(y):
        return
    x_count, y_count = num_examples(x), num_examples(y)
    if x_count != y_count:
        raise ValueError(
            f"`{x_argument}` and `{y_argument}` must hold as many examples: `{x_argument}` has {x_count}, "
            f"`{y_argument}` has {y_count}."
        )


def check_sequence_length(
    sequence_length: Any,
    backbone: Any,
    argument: str = "sequence_length",
    default: int = 128,
    minimum: int = 2,
) -> int:
    """The sequence length to use with `backbone`: `min(default, backbone.max_sequence_length)`
    when None, else the given int checked against `[minimum, backbone.max_sequence_length]`.

    Args:
        sequence_length: int or None.
        backbone: a backbone; its `max_sequence_length` (if it has one) is the limit.
        argument: str. The argument's name, used in the error message.
        default: int. The task's usual length.
        minimum: int. The shortest useful length (e.g. 3 for `[CLS] x [SEP]`).

    Example:
    ```python
    check_sequence_length(None, kp.models.Bert.from_size("tiny", max_sequence_length=32))  # 32
    ```
    """
    limit = getattr(backbone, "max_sequence_length", None)
    if sequence_length is None:
        return min(default, limit) if limit else default
    if not isinstance(sequence_length, (int, np.integer)) or isinstance(sequence_length, bool):
        raise ValueError(f"`{argument}` must be an integer, received {argument}={sequence_length!r}.")
    if sequence_length < minimum:
        raise ValueError(f"`{argument}` must be at least {minimum}, received {argument}={sequence_length}.")
    if limit is not None and sequence_length > limit:
        raise ValueError(
            f"`{argument}`={sequence_length} is longer than the backbone's max_sequence_length={limit}; "
            f"pass {argument}<={limit} or leave it unset for min({default}, {limit})."
        )
    return int(sequence_length)


def is_in_memory(value: Any) -> bool:
    """True for lists, tuples, NumPy arrays and dicts of them (examples already in memory), false
    for tensors, datasets and generators."""
    if isinstance(value, dict):
        return all(is_in_memory(v) for v in value.values())
    if isinstance(value, tuple):
        return all(isinstance(v, (list, tuple, np.ndarray)) for v in value) or all(
            not isinstance(v, (list, tuple, dict)) and not hasattr(v, "shape") for v in value
        )
    return isinstance(value, (list, np.ndarray))


def num_examples(value: Any) -> int:
    """The number of examples of an in-memory input: its length, the first part's for a tuple of
    parallel parts (text pairs) or a dict of features."""
    if isinstance(value, dict):
        value = next(iter(value.values()))
    elif isinstance(value, tuple) and value and isinstance(value[0], (list, tuple, np.ndarray)):
        value = value[0]
    return len(value)
