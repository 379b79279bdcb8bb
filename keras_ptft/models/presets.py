"""Load what `save_to_preset` wrote: a folder with the backbone config, weights and tokenizer."""

from __future__ import annotations

import os

import keras
from keras_hub.src.utils.preset_utils import get_preset_loader

_BACKBONE_FILES = ("config.json", "model.weights.h5")


def load_backbone(path: str | os.PathLike, load_weights: bool = True) -> keras.Model:
    """Loads a backbone saved with `save_to_preset` (by a keras_ptft task or keras-hub).

    Args:
        path: str. The folder the backbone was saved to.
        load_weights: bool. False builds the architecture with fresh random weights.

    Example:
    ```python
    mlm.save_to_preset("saved_models/my_bert")
    bert = load_backbone("saved_models/my_bert")
    ```
    """
    path = _check_preset_folder(path)
    # `Backbone.from_preset` resolves the class through keras-hub's registry; the loader reads the
    # registered class from config.json, which also finds keras_ptft's own backbones.
    return get_preset_loader(path).load_backbone(None, load_weights)


def load_tokenizer(path: str | os.PathLike):
    """Loads the tokenizer (with its vocabulary) saved beside a backbone, or None if there is none.

    Example:
    ```python
    tokenizer = load_tokenizer("saved_models/my_bert")
    ```
    """
    path = _check_preset_folder(path)
    if not os.path.exists(os.path.join(path, "tokenizer.json")):
        return None
    return get_preset_loader(path).load_tokenizer(None)


def _check_preset_folder(path) -> str:
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"`backbone_or_path` must be a folder saved with `save_to_preset`; {path!r} is not a folder."
        )
    missing = [name for name in _BACKBONE_FILES if not os.path.exists(os.path.join(path, name))]
    if missing:
        raise FileNotFoundError(
            f"{path!r} is not a saved backbone: it lacks {', '.join(missing)} "
            "(expected a folder written by `save_to_preset`)."
        )
    return path
