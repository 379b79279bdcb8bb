"""Model-parallel layouts for the backbones: which axis of which weight is sharded over the mesh.

`Bert`, `GPT` and `ViT` run keras-hub's `TransformerEncoder`/`TransformerDecoder`, whose weights
have the same names in all three, so one Megatron-style map serves them (Shoeybi et al. 2019):

| weight | shape | sharded axis |
|---|---|---|
| `token_embedding/embeddings` | (vocabulary, hidden) | hidden |
| attention `query`/`key`/`value` kernels | (hidden, heads, head_dim) | heads (column-parallel) |
| attention `attention_output` kernel | (heads, head_dim, hidden) | heads (row-parallel) |
| `feedforward_intermediate_dense` kernel | (hidden, intermediate) | intermediate (column-parallel) |
| `feedforward_output_dense` kernel | (intermediate, hidden) | intermediate (row-parallel) |

Everything else (biases, LayerNorms, position embeddings, heads) is replicated. keras-hub ships
`get_layout_map` only for Gemma/Llama/Qwen (its #1689), hence this module.
"""

from __future__ import annotations

import re

import keras

# (path regex, layout with "model" standing for the model axis); the key/value cache and the
# activations follow from these through XLA's sharding propagation.
_SHARDED = (
    (r"token_embedding/embeddings", (None, "model")),
    (r"transformer_layer_\d+/.*attention.*/(query|key|value)/kernel", (None, "model", None)),
    (r"transformer_layer_\d+/.*attention.*/attention_output/kernel", ("model", None, None)),
    (r"transformer_layer_\d+/feedforward_intermediate_dense/kernel", (None, "model")),
    (r"transformer_layer_\d+/feedforward_output_dense/kernel", ("model", None)),
)


def transformer_layout_map(device_mesh, model_axis: str = "model") -> keras.distribution.LayoutMap:
    """The Megatron-style `LayoutMap` of the table above on `device_mesh`.

    Args:
        device_mesh: `keras.distribution.DeviceMesh` with an axis named `model_axis`.
        model_axis: str. The mesh axis the weights are sharded over.

    Returns:
        A `keras.distribution.LayoutMap` for `keras.distribution.ModelParallel`.

    Example:
    ```python
    mesh = keras.distribution.DeviceMesh((1, 2), ["batch", "model"], keras.distribution.list_devices())
    layout_map = kp.models.Bert.get_layout_map(mesh)
    keras.distribution.set_distribution(keras.distribution.ModelParallel(layout_map=layout_map))
    ```
    """
    if model_axis not in device_mesh.axis_names:
        raise ValueError(
            f"`model_axis`={model_axis!r} is not an axis of the device mesh, whose axes are "
            f"{list(device_mesh.axis_names)}."
        )
    layout_map = keras.distribution.LayoutMap(device_mesh)
    for pattern, axes in _SHARDED:
        layout_map[pattern] = tuple(model_axis if axis == "model" else axis for axis in axes)
    return layout_map


def check_layout_map(layout_map: keras.distribution.LayoutMap, model: keras.Model) -> None:
    """Raises a `ValueError` naming the first weight of `model` whose sharded axis does not
    divide by the mesh axis it is sharded over (JAX would fail later with a bare shape error).

    Example:
    ```python
    check_layout_map(kp.models.Bert.get_layout_map(mesh), bert)
    ```
    """
    mesh = layout_map.device_mesh
    sizes = dict(zip(mesh.axis_names, mesh.shape))
    for variable in model.weights:
        layout = layout_map[variable.path]
        if layout is None:
            continue
        for dim, (length, axis) in enumerate(zip(variable.shape, layout.axes)):
            if axis is not None and length % sizes[axis]:
                raise ValueError(
                    f"Cannot shard weight {variable.path!r} of shape {tuple(variable.shape)}: its axis {dim} "
                    f"({length}) is not divisible by the mesh axis {axis!r} of size {sizes[axis]}."
                )


def sharded_weight_paths(model: keras.Model) -> list[str]:
    """The paths of `model`'s weights the layout map shards (for reports and tests)."""
    return [v.path for v in model.weights if any(re.search(p, v.path) for p, _ in _SHARDED)]
