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

    def port_layer_norm(self, layer, prefix: str) -> None:
        """Assigns `{prefix}.weight` / `{prefix}.bias` to a LayerNormalization's gamma / beta."""
        self.port(layer.gamma, f"{prefix}.weight")
        self.port(layer.beta, f"{prefix}.bias")

    def port_dense(self, dense, prefix: str) -> None:
        """Assigns a PyTorch `Linear` (`{prefix}.weight` stored `(out, in)`, `{prefix}.bias`) to a
        Keras `Dense`, whose kernel is `(in, out)`."""
        self.port(dense.kernel, f"{prefix}.weight", transpose)
        self.port(dense.bias, f"{prefix}.bias")

    def port_encoder_block(self, block, prefix: str, attention: str) -> None:
        """Copies the attention and feed-forward weights of one HF BERT-style encoder layer (BERT
        and ViT share them: `{prefix}{attention}.query` / `key` / `value`,
        `{prefix}attention.output.dense`, `{prefix}intermediate.dense`, `{prefix}output.dense`) into a
        keras-hub `TransformerEncoder`; the LayerNorms, named and placed differently, are the caller's."""
        layer = block._self_attention_layer
        for name, dense in (("query", layer.query_dense), ("key", layer.key_dense), ("value", layer.value_dense)):
            # HF: (out, in) Linear; keras-hub EinsumDense: (in, heads, head_dim).
            self.port(dense.kernel, f"{prefix}{attention}.{name}.weight", lambda w, s: w.T.reshape(s))
            self.port(dense.bias, f"{prefix}{attention}.{name}.bias", lambda w, s: w.reshape(s))
        self.port(layer.output_dense.kernel, f"{prefix}attention.output.dense.weight", lambda w, s: w.T.reshape(s))
        self.port(layer.output_dense.bias, f"{prefix}attention.output.dense.bias")
        self.port_dense(block._feedforward_intermediate_dense, f"{prefix}intermediate.dense")
        self.port_dense(block._feedforward_output_dense, f"{prefix}output.dense")

    def matches(self, key: str, variable) -> bool:
        """Whether checkpoint tensor `key` holds the same values as `variable` (how a tied output
        matrix is recognised); the tensor counts as used."""
        value = self.take(key)
        current = np.asarray(variable.numpy())
        return value.shape == current.shape and np.allclose(value, current, atol=1e-6)

    def note_missing(self, key: str) -> None:
        self.missing.append(key)

    def unused(self) -> list[str]:
        return sorted(k for k in self.weights if k not in self.used and not k.endswith(IGNORED_SUFFIXES))


def transpose(w: np.ndarray, shape: tuple) -> np.ndarray:
    """A `WeightPorter.port` transform: a PyTorch `(out, in)` matrix as Keras' `(in, out)`."""
    return w.T


def check_supported(config: dict, model: str, field: str, allowed, default=None, supported=None):
    """Returns `config[field]` (`default` when absent), raising a `ValueError` unless it is one of
    the `allowed` values that the keras_ptft `model` reproduces.

    Args:
        config: dict. The parsed HF `config.json`.
        model: str. The keras_ptft class named in the message, e.g. `"Bert"`.
        field: str. The config field.
        allowed: a tuple, list or dict of the supported values.
        default: the value HF assumes when the field is absent.
        supported: what the message lists as supported; defaults to the first allowed value.

    Example:
    ```python
    check_supported({"hidden_act": "gelu"}, "Bert", "hidden_act", ("gelu", "relu"))  # "gelu"
    ```
    """
    value = config.get(field, default)
    if value not in allowed:
        shown = repr(allowed[0]) if supported is None else supported
        raise ValueError(
            f"config.json has {field}={value!r}, which keras_ptft's {model} does not support (supported: {shown})."
        )
    return value


def check_all_supported(config: dict, model: str, required: dict) -> None:
    """`check_supported` for each field of `required` (field → allowed values, None included when
    HF's default is the supported one).

    Example:
    ```python
    check_all_supported({}, "GPT", {"add_cross_attention": (False, None)})
    ```
    """
    for field, allowed in required.items():
        check_supported(config, model, field, allowed)


def check_present(config: dict, family: str, fields) -> None:
    """Raises a `ValueError` naming the `fields` a HF `config.json` of `family` (e.g. `"BERT"`) lacks.

    Example:
    ```python
    check_present({"vocab_size": 10, "n_embd": 8}, "GPT-2", ["vocab_size", "n_embd"])
    ```
    """
    missing = [field for field in fields if field not in config]
    if missing:
        raise ValueError(f"config.json lacks the {family} fields {missing}.")
