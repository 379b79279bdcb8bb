"""Reading Hugging Face checkpoint folders into plain NumPy arrays.

Every converter works on a `{name: np.ndarray}` dict, so the model code never sees the file
format: a single `model.safetensors`, a sharded `model.safetensors.index.json`, or a legacy
`pytorch_model.bin` (which needs torch to unpickle).
"""

from __future__ import annotations

import json
import os

import numpy as np

SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
PYTORCH_BIN = "pytorch_model.bin"
PYTORCH_BIN_INDEX = "pytorch_model.bin.index.json"


def read_config(path: str) -> dict:
    """Reads `config.json` of a Hugging Face folder, with a clear error when it is missing."""
    if not os.path.isdir(path):
        raise FileNotFoundError(f"`path` must be a Hugging Face model folder; {path!r} is not a folder.")
    config_file = os.path.join(path, "config.json")
    if not os.path.exists(config_file):
        raise FileNotFoundError(
            f"{path!r} has no config.json; a Hugging Face model folder holds config.json and "
            f"{SAFETENSORS} (or {SAFETENSORS_INDEX}, or {PYTORCH_BIN})."
        )
    try:
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file!r} is not valid JSON: {error}.") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_file!r} must hold a JSON object, received {type(config).__name__}.")
    return config


def read_weights(path: str) -> dict[str, np.ndarray]:
    """Reads all tensors of a Hugging Face folder as float32/int NumPy arrays, keyed by name.

    Looks for, in order: `model.safetensors`, `model.safetensors.index.json` (shards),
    `pytorch_model.bin`, `pytorch_model.bin.index.json`.
    """
    candidates = {name: os.path.join(path, name) for name in
                  (SAFETENSORS, SAFETENSORS_INDEX, PYTORCH_BIN, PYTORCH_BIN_INDEX)}
    if os.path.exists(candidates[SAFETENSORS]):
        return _read_safetensors(candidates[SAFETENSORS])
    if os.path.exists(candidates[SAFETENSORS_INDEX]):
        return _read_sharded(path, candidates[SAFETENSORS_INDEX], _read_safetensors)
    if os.path.exists(candidates[PYTORCH_BIN]):
        return _read_torch_bin(candidates[PYTORCH_BIN])
    if os.path.exists(candidates[PYTORCH_BIN_INDEX]):
        return _read_sharded(path, candidates[PYTORCH_BIN_INDEX], _read_torch_bin)
    raise FileNotFoundError(
        f"{path!r} has no weights: expected one of {', '.join(candidates)}."
    )


def _read_safetensors(filename: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(filename)
    except (SafetensorError, OSError, ValueError) as error:
        # A truncated download is the usual cause; safetensors' own message names no file.
        raise ValueError(
            f"Cannot read {filename!r}: it is not a complete safetensors file ({error}). "
            "Re-download or re-save it."
        ) from None
    return {name: _as_numpy_float(value) for name, value in tensors.items()}


def _read_sharded(path: str, index_file: str, read_shard) -> dict[str, np.ndarray]:
    with open(index_file, encoding="utf-8") as f:
        index = json.load(f)
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise ValueError(f"{index_file!r} must hold a non-empty `weight_map` of tensor name -> shard file.")
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        shard_file = os.path.join(path, shard)
        if not os.path.exists(shard_file):
            raise FileNotFoundError(f"{index_file!r} lists the shard {shard!r}, which is missing from {path!r}.")
        tensors.update(read_shard(shard_file))
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise ValueError(f"{index_file!r} lists tensors absent from their shards, e.g. {missing[0]!r}.")
    return tensors


def _read_torch_bin(filename: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{filename!r} is a PyTorch pickle and reading it needs torch, which is not installed. "
            "Install it (`pip install torch==2.13.0`), or save the checkpoint as model.safetensors."
        ) from None
    try:
        # weights_only: never run code from a pickle found on disk.
        state = torch.load(filename, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a damaged file
        raise ValueError(f"Cannot read {filename!r} as a PyTorch checkpoint: {error}") from None
    return {name: _as_numpy_float(value.float().numpy() if value.is_floating_point() else value.numpy())
            for name, value in state.items()}


def _as_numpy_float(value: np.ndarray) -> np.ndarray:
    # Half-precision checkpoints are widened once here, so converters compare shapes only.
    if value.dtype.kind == "f" or value.dtype.name == "bfloat16":
        return np.asarray(value, dtype="float32")
    return value
