"""keras-hub preset folders ↔ keras_ptft backbones.

keras_ptft's `Bert` names its sub-layers exactly as keras-hub's `BertBackbone` does, so weights
move layer by layer, by name. keras-hub's BertBackbone always uses the tanh-approximate GELU and
LayerNorm epsilon 1e-12; a preset loads as a `Bert` with those settings, and only a `Bert` with
those settings can be saved as one (anything else would change its outputs).
"""

from __future__ import annotations

import json
import os

import keras
import keras_hub

from keras_ptft.convert.huggingface import Converted
from keras_ptft.data.preprocessing import BertPreprocessor
from keras_ptft.models.bert import Bert

_KERAS_HUB_BERT = "keras_hub>BertBackbone"
_KERAS_HUB_BERT_FIXED = {"activation": "gelu_approximate", "layer_norm_epsilon": 1e-12}


def from_keras_hub(path: str | os.PathLike, sequence_length: int | None = None) -> Converted:
    """Loads a keras-hub `BertBackbone` preset folder (as written by `save_to_preset`) into keras_ptft.

    Args:
        path: str or `os.PathLike`. The preset folder (config.json, model.weights.h5 and, if
            saved, tokenizer.json with its vocabulary asset).
        sequence_length: int or None. The preprocessor's row length; defaults to the backbone's
            maximum, capped at 128.

    Returns:
        A `Converted` holding a `keras_ptft.models.Bert` with the preset's weights and a
        `BertPreprocessor` with its vocabulary (None when the folder has no tokenizer).

    Example:
    ```python
    keras_hub.models.BertBackbone(...).save_to_preset("kh_bert")
    backbone, preprocessor = kp.convert.from_keras_hub("kh_bert")
    ```
    """
    path = os.fspath(path)
    config_file = os.path.join(path, "config.json")
    if not os.path.exists(config_file):
        raise FileNotFoundError(f"{path!r} is not a keras-hub preset folder: it has no config.json.")
    with open(config_file, encoding="utf-8") as f:
        registered_name = json.load(f).get("registered_name")
    if registered_name != _KERAS_HUB_BERT:
        raise ValueError(
            f"{path!r} holds a {registered_name!r} preset; from_keras_hub supports {_KERAS_HUB_BERT!r}."
        )
    source = keras_hub.models.BertBackbone.from_preset(path)
    config = {key: value for key, value in source.get_config().items()
              if key in ("vocabulary_size", "num_layers", "num_heads", "hidden_dim", "intermediate_dim",
                         "dropout", "max_sequence_length", "num_segments")}
    backbone = Bert(**config, **_KERAS_HUB_BERT_FIXED)
    _copy_weights(source, backbone)
    preprocessor = None
    if os.path.exists(os.path.join(path, "tokenizer.json")):
        tokenizer = keras_hub.models.BertTokenizer.from_preset(path)
        length = min(128, backbone.max_sequence_length) if sequence_length is None else sequence_length
        # keras-hub's own normalisation (no HF adjustments): ids stay those of the keras-hub model.
        preprocessor = BertPreprocessor(
            tokenizer.get_vocabulary(), sequence_length=length,
            lowercase=tokenizer.lowercase, strip_accents=tokenizer.strip_accents,
        )
    return Converted(backbone, preprocessor, None, config, [])


def to_keras_hub(
    backbone: Bert,
    path: str | os.PathLike,
    preprocessor: BertPreprocessor | None = None,
) -> keras_hub.models.BertBackbone:
    """Saves a keras_ptft `Bert` as a keras-hub `BertBackbone` preset, loadable with
    `keras_hub.models.BertBackbone.from_preset(path)` (and `BertTokenizer.from_preset` when a
    preprocessor is given).

    Args:
        backbone: `keras_ptft.models.Bert` with `activation="gelu_approximate"` and
            `layer_norm_epsilon=1e-12`, the only settings keras-hub's BertBackbone has.
        path: str or `os.PathLike`. The folder to write.
        preprocessor: `BertPreprocessor` or None. Its vocabulary is saved as the preset's tokenizer.

    Returns:
        The keras-hub `BertBackbone` that was saved.

    Example:
    ```python
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=100, activation="gelu_approximate")
    kp.convert.to_keras_hub(bert, "kh_bert")
    keras_hub.models.BertBackbone.from_preset("kh_bert")
    ```
    """
    if not isinstance(backbone, Bert):
        raise ValueError(f"`backbone` must be a keras_ptft `Bert`, received {type(backbone).__name__}.")
    for field, value in _KERAS_HUB_BERT_FIXED.items():
        if getattr(backbone, field) != value:
            raise ValueError(
                f"keras-hub's BertBackbone has {field}={value!r} fixed; this backbone has "
                f"{field}={getattr(backbone, field)!r}, so its outputs would change. Build the Bert "
                f"with {field}={value!r} to save it as a keras-hub preset."
            )
    target = keras_hub.models.BertBackbone(
        vocabulary_size=backbone.vocabulary_size,
        num_layers=backbone.num_layers,
        num_heads=backbone.num_heads,
        hidden_dim=backbone.hidden_dim,
        intermediate_dim=backbone.intermediate_dim,
        dropout=backbone.dropout,
        max_sequence_length=backbone.max_sequence_length,
        num_segments=backbone.num_segments,
    )
    _copy_weights(backbone, target)
    path = os.fspath(path)
    target.save_to_preset(path)
    if preprocessor is not None:
        keras_hub.models.BertTokenizer(
            vocabulary=preprocessor.vocabulary,
            lowercase=preprocessor.lowercase,
            strip_accents=preprocessor.strip_accents,
        ).save_to_preset(path)
    return target


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copies weights between two backbones whose sub-layers share names and structure."""
    for layer in target.layers:
        if not layer.weights:
            continue
        source_weights = source.get_layer(layer.name).get_weights()
        shapes = [w.shape for w in layer.get_weights()]
        if [w.shape for w in source_weights] != shapes:
            raise ValueError(f"Layer {layer.name!r} has weights of shapes {shapes} in the target but "
                             f"{[w.shape for w in source_weights]} in the source.")
        layer.set_weights(source_weights)
