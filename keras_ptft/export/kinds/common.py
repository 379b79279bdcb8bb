"""Input checks and small helpers shared by the kinds (text validation lives here until
`keras_ptft.validation` takes it over)."""

from __future__ import annotations

import numpy as np


def check_texts(texts, argument: str, allow_str: bool = False, allow_empty: bool = False) -> list[str]:
    """`texts` as a list of str, or a ValueError naming `argument`, what it must be and what it got.

    Args:
        texts: the value to check: a list/tuple (or 1-D string array) of str.
        argument: str. The argument's name, for the message.
        allow_str: bool. Accept one str as a one-item list (`predict("a text")`).
        allow_empty: bool. Accept an empty list (`predict([])` returns an empty batch).

    Example:
    ```python
    check_texts(["a", "b"], "verify_data")     # ["a", "b"]
    check_texts("a", "texts", allow_str=True)  # ["a"]
    ```
    """
    expected = "a str or a list of str" if allow_str else "a list of str"
    if isinstance(texts, str):
        if allow_str:
            return [texts]
        raise ValueError(f"`{argument}` must be {expected}, received one str {texts!r:.60}; wrap it in a list.")
    if isinstance(texts, np.ndarray) and texts.ndim == 1 and texts.dtype.kind in "UO":
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"`{argument}` must be {expected}, received {type(texts).__name__}.")
    if not texts and not allow_empty:
        raise ValueError(f"`{argument}` must be a non-empty list of str, received an empty {type(texts).__name__}.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"`{argument}` must be {expected}, received {type(text).__name__} {text!r:.60} "
                             f"at index {index}.")
    return list(texts)


def token_ids(tokenizer, text: str) -> list[int]:
    """The ids of one text from a keras-hub tokenizer (a tensor on TensorFlow, a list elsewhere)."""
    ids = tokenizer(text)
    return np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids).reshape(-1).astype(int).tolist()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)
