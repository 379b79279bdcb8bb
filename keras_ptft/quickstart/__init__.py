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


def load(model: str):
    """Returns the quickstart module of a model family."""
    if model not in MODELS:
        raise ValueError(f"`model` must be one of {sorted(MODELS)}, received {model!r}.")
    return importlib.import_module(MODELS[model])
