"""Copying named checkpoint arrays into Keras variables, with shape checks that name the tensor."""

from __future__ import annotations

from typing import Callable

import numpy as np

# Buffers some checkpoints save that carry no learned value.
IGNORED_SUFFIXES = ("position_ids", "num_batches_tracked")


class WeightPorter:
    """Hands out checkpoint tensors by name and remembers which were used.

    Args:
        weights: dict of str to np.ndarray. The checkpoint's tensors.
        source: str. Where they came from, for error messages.
    """

    def __init__(self, weights: dict[str, np.ndarray], source: str):
        self.weights = weights
        self.source = source
        self.used: set[str] = set()
        self.missing: list[str] = []

    def has(self, key: str) -> bool:
        return key in self.weights

    def take(self, key: str) -> np.ndarray:
        if key not in self.weights:
            raise ValueError(
                f"The checkpoint {self.source!r} lacks the tensor {key!r} the model needs "
                "(is config.json from the same model?)."
            )
        self.used.add(key)
        return self.weights[key]

    def port(self, variable, key: str, transform: Callable[[np.ndarray, tuple], np.ndarray] | None = None) -> None:
        """Assigns checkpoint tensor `key` (optionally transformed) to `variable`."""
        value = self.take(key)
        shape = tuple(variable.shape)
        if transform is not None:
            try:
                value = transform(value, shape)
            except ValueError:  # a reshape that cannot fit
                pass
        if tuple(value.shape) != shape:
            raise ValueError(
                f"The tensor {key!r} in {self.source!r} has shape {tuple(self.weights[key].shape)}, "
                f"which does not fit the model variable {variable.path!r} of shape {shape} "
                "(does config.json match the weights?)."
            )
        variable.assign(value.astype(variable.dtype))

    def note_missing(self, key: str) -> None:
        self.missing.append(key)

    def unused(self) -> list[str]:
        return sorted(k for k in self.weights if k not in self.used and not k.endswith(IGNORED_SUFFIXES))
