"""Any checkpoint folder, by path: one function that tells what a folder holds and loads it.

A recipe or task given `backbone_or_path` as a folder calls `load_checkpoint`, which accepts

| folder | recognised by | loaded with |
|---|---|---|
| saved here (`save_to_preset` of a keras_ptft task) | `config.json` naming a `keras_ptft>` class + `model.weights.h5` | keras-hub's preset loader |
| a keras-hub preset (`BertBackbone`) | `config.json` naming `keras_hub>BertBackbone` + `model.weights.h5` | `from_keras_hub` |
| a Hugging Face folder | `config.json` with `model_type` + `model.safetensors` / `*.index.json` / `pytorch_model.bin` | `from_huggingface` |
| a sentence-transformers folder | a Hugging Face folder with `modules.json` | `from_huggingface` + its `1_Pooling/config.json` |

and refuses anything else with a message naming what the folder holds. The pooling a
sentence-transformers model was trained with (mean for all-MiniLM-L6-v2) is returned so that a
recipe uses it without the user having to know.
"""

from __future__ import annotations

import dataclasses
import json
import os

import keras
import keras_hub

from keras_ptft.convert.huggingface import from_huggingface
from keras_ptft.convert.keras_hub_presets import from_keras_hub
from keras_ptft.models.presets import load_backbone, load_tokenizer

KERAS_PTFT = "keras_ptft"
KERAS_HUB = "keras_hub"
HUGGING_FACE = "huggingface"
SENTENCE_TRANSFORMERS = "sentence_transformers"

_HF_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# sentence-transformers' pooling flags, in the order its Pooling module concatenates them.
_POOLING_FLAGS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len",
}


@dataclasses.dataclass
class Checkpoint:
    """What `load_checkpoint` returns.

    Attributes:
        backbone: the keras_ptft backbone with the checkpoint's weights.
        tokenizer: the keras-hub tokenizer saved with a keras_ptft folder, or None.
        preprocessor: the preprocessor a converted folder comes with (Hugging Face, keras-hub),
            or None.
        pooling: str or None. `"mean"` or `"cls"` when the folder says how its sentence vectors
            were pooled (sentence-transformers' `1_Pooling/config.json`), else None.
        kind: str. One of `"keras_ptft"`, `"keras_hub"`, `"huggingface"`, `"sentence_transformers"`,
            or `"object"` for a backbone object given as is (`resolve_checkpoint`).
        path: str or None. The folder (None for a backbone object).
    """

    backbone: keras.Model
    tokenizer: object | None
    preprocessor: keras.layers.Layer | None
    pooling: str | None
    kind: str
    path: str | None

    @property
    def text_tokenizer(self):
        """The tokenizer the folder brings: the one saved here, or a converted GPT-2 folder's
        byte-level BPE (which `from_huggingface` returns as its preprocessor)."""
        if self.tokenizer is not None:
            return self.tokenizer
        return self.preprocessor if isinstance(self.preprocessor, keras_hub.tokenizers.Tokenizer) else None

    def wrong_model(self, expected: str) -> ValueError:
        """The error a recipe raises when the checkpoint holds another kind of model than it needs."""
        where = f" (the {self.kind} checkpoint {self.path!r})" if self.path else ""
        return ValueError(
            f"`backbone_or_path` must be {expected}, received a {type(self.backbone).__name__}{where}."
        )


def checkpoint_kind(path: str | os.PathLike) -> str:
    """Which kind of checkpoint folder `path` is, by its files (nothing is loaded).

    Args:
        path: str or `os.PathLike`. A folder.

    Returns:
        str. `"keras_ptft"`, `"keras_hub"`, `"huggingface"` or `"sentence_transformers"`.

    Raises:
        FileNotFoundError: `path` is not a folder.
        ValueError: the folder is none of the four; the message lists what it holds.

    Example:
    ```python
    kp.convert.checkpoint_kind("path/to/all-MiniLM-L6-v2")  # "sentence_transformers"
    ```
    """
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"`backbone_or_path` must be a checkpoint folder; {path!r} is not a folder.")
    config = _read_json(os.path.join(path, "config.json"))
    has = lambda name: os.path.exists(os.path.join(path, name))  # noqa: E731
    if config is not None and has("model.weights.h5"):
        registered = str(config.get("registered_name", ""))
        if registered.startswith("keras_ptft>"):
            return KERAS_PTFT
        if registered.startswith("keras_hub>"):
            return KERAS_HUB
    if config is not None and "model_type" in config and any(has(name) for name in _HF_WEIGHTS):
        return SENTENCE_TRANSFORMERS if has("modules.json") else HUGGING_FACE
    held = sorted(os.listdir(path))
    shown = ", ".join(held[:8]) + (f" and {len(held) - 8} more" if len(held) > 8 else "") if held else "nothing"
    raise ValueError(
        f"{path!r} is not a checkpoint folder this toolkit can load: it holds {shown}. Expected a folder "
        "saved here with `save_to_preset` (config.json + model.weights.h5), a keras-hub preset, or a Hugging "
        f"Face folder (config.json with `model_type` and one of {', '.join(_HF_WEIGHTS)})."
    )


def sentence_transformers_pooling(path: str | os.PathLike) -> str | None:
    """The pooling a sentence-transformers folder declares (`"mean"`, `"cls"`, …), or None.

    Reads `modules.json` to find the Pooling module's folder (usually `1_Pooling`) and its
    `config.json`. Only one pooling mode may be on: the toolkit's recipes pool one way.

    Example:
    ```python
    kp.convert.sentence_transformers_pooling("path/to/all-MiniLM-L6-v2")  # "mean"
    ```
    """
    path = os.fspath(path)
    modules = _read_json(os.path.join(path, "modules.json"))
    if not isinstance(modules, list):
        return None
    for module in modules:
        if str(module.get("type", "")).endswith(".Pooling"):
            config_file = os.path.join(path, module.get("path", ""), "config.json")
            config = _read_json(config_file)
            if config is None:
                raise ValueError(f"{path!r}: modules.json names a Pooling module but {config_file!r} is missing.")
            modes = [mode for flag, mode in _POOLING_FLAGS.items() if config.get(flag)]
            if len(modes) != 1:
                raise ValueError(
                    f"{config_file!r} turns on {modes or 'no'} pooling modes; keras_ptft pools one way "
                    "(`pooling='mean'` or `'cls'`), so exactly one must be on."
                )
            return modes[0]
    return None


def load_checkpoint(path: str | os.PathLike, sequence_length: int | None = None) -> Checkpoint:
    """Loads any checkpoint folder the toolkit understands (see the module's table).

    Args:
        path: str or `os.PathLike`. The folder.
        sequence_length: int or None. The row length of a converted folder's preprocessor
            (default: the model's maximum, capped at 128).

    Returns:
        A `Checkpoint` (backbone, tokenizer, preprocessor, pooling, kind, path).

    Example:
    ```python
    checkpoint = kp.convert.load_checkpoint("path/to/all-MiniLM-L6-v2")
    checkpoint.kind, checkpoint.pooling  # ("sentence_transformers", "mean")
    ```
    """
    path = os.fspath(path)
    kind = checkpoint_kind(path)
    if kind == KERAS_PTFT:
        return Checkpoint(load_backbone(path), load_tokenizer(path), None, None, kind, path)
    if kind == KERAS_HUB:
        converted = from_keras_hub(path, sequence_length=sequence_length)
        return Checkpoint(converted.backbone, None, converted.preprocessor, None, kind, path)
    converted = from_huggingface(path, sequence_length=sequence_length)
    pooling = sentence_transformers_pooling(path) if kind == SENTENCE_TRANSFORMERS else None
    return Checkpoint(converted.backbone, None, converted.preprocessor, pooling, kind, path)


def resolve_checkpoint(
    backbone_or_path, sequence_length: int | None = None, *, expected: str = "a backbone model"
) -> Checkpoint:
    """The one entry of every recipe's `backbone_or_path`: a backbone object passes through
    (`kind="object"`), a folder goes to `load_checkpoint`.

    Args:
        backbone_or_path: a `keras.Model`, or a folder `load_checkpoint` reads.
        sequence_length: int or None. Passed to `load_checkpoint` for a converted text folder.
        expected: str. What the recipe wants, for the message when given something else.

    Example:
    ```python
    checkpoint = resolve_checkpoint("path/to/hf_gpt2")
    checkpoint.backbone, checkpoint.text_tokenizer
    ```
    """
    if isinstance(backbone_or_path, (str, os.PathLike)):
        return load_checkpoint(backbone_or_path, sequence_length=sequence_length)
    if isinstance(backbone_or_path, keras.Model):
        return Checkpoint(backbone_or_path, None, None, None, "object", None)
    raise ValueError(
        f"`backbone_or_path` must be {expected} or the folder of a checkpoint, received "
        f"{type(backbone_or_path).__name__}."
    )


def _read_json(file: str):
    if not os.path.exists(file):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"{file!r} is not readable JSON: {error}") from None
