"""The main job, `keras-ptft quickstart`: the whole pretrain → fine-tune → export path on embedded
data, one module per model family. Each module offers `Settings` (with a `fast()` variant) and
`run(settings, output_dir, seed) -> dict`, raising `CheckFailed` when a check does not hold."""

from __future__ import annotations

import importlib


class CheckFailed(RuntimeError):
    """A quickstart check did not hold; the CLI exits non-zero with its message."""


# model family -> module implementing its quickstart
MODELS = {
    "bert": "keras_ptft.quickstart.bert",
    "gpt": "keras_ptft.quickstart.gpt",
    "vit": "keras_ptft.quickstart.vit",
}


def phase(message: str) -> None:
    """Prints the heading of a quickstart phase (flushed, so it shows before the phase's work)."""
    print(f"\n=== {message}", flush=True)


def start(settings, seed: int) -> dict:
    """Seeds Keras with `seed` and returns the results dict a quickstart fills: its `settings`
    (a dataclass) and the Keras backend.

    Example:
    ```python
    results = start(Settings.fast(), seed=0)  # {"settings": {...}, "backend": "tensorflow"}
    ```
    """
    import dataclasses

    import keras

    keras.utils.set_random_seed(seed)
    return {"settings": dataclasses.asdict(settings), "backend": keras.config.backend()}


def check(failures: list[str]) -> None:
    """Raises `CheckFailed` with every failed check's message, `; `-joined, when there is any."""
    if failures:
        raise CheckFailed("; ".join(failures))


def load(model: str):
    """Returns the quickstart module of a model family."""
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {sorted(MODELS)}, received {model!r}.")
    return importlib.import_module(MODELS[model])
