"""Load what `save_to_preset` wrote: a folder with the backbone config, weights and tokenizer."""

from __future__ import annotations

import json
import os

import keras
import keras_hub

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
    # The base class reads the registered class from config.json, which finds keras_ptft's own
    # backbones as well as keras-hub's.
    return keras_hub.models.Backbone.from_preset(path, load_weights=load_weights)


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
    # `Tokenizer.from_preset` looks for a tokenizer class paired with the backbone's class, which
    # keras_ptft's backbones do not register; the tokenizer's own config names its class.
    with open(os.path.join(path, "tokenizer.json"), encoding="utf-8") as file:
        tokenizer = keras.saving.deserialize_keras_object(json.load(file))
    tokenizer.load_preset_assets(path)
    return tokenizer


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

