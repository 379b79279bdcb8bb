"""Compression of fine-tuned models: structured feed-forward pruning and Keras int8 weights.

| function | what changes | faster? |
|---|---|---|
| `prune_ffn(task, fraction)` | every block keeps the `1 - fraction` feed-forward neurons of highest magnitude; a new, smaller backbone (`intermediate_dim` reduced) | yes: fewer FLOPs in every block |
| `quantize(task)` | Dense/EinsumDense/Embedding weights to int8 through Keras' own `Model.quantize("int8")` | smaller weights; speed depends on the backend's int8 kernels |

TensorFlow Model Optimization, the usual pruning library, does not support Keras 3 (its #1119),
so pruning is written here; quantization is Keras'.
"""

from __future__ import annotations

import keras
import numpy as np

# The classification / regression head is built with a fixed float32 dtype by the tasks (its
# config would not restore an int8 layer) and holds a negligible share of the weights.
_HEAD_LAYERS = ("probabilities", "predictions", "logits", "output_dense")


def quantize(task: keras.Model, mode: str = "int8") -> keras.Model:
    """Quantizes a task's backbone weights in place with Keras' `Model.quantize`.

    Dense, EinsumDense and Embedding weights become int8 with per-channel scales (Keras'
    `int8` mode); the head stays float32. The result saves to and loads from `.keras` as is.

    Args:
        task: a keras_ptft task or any `keras.Model` holding a backbone.
        mode: str. `"int8"` (the mode every backend supports).

    Returns:
        The same model, quantized.

    Example:
    ```python
    classifier = kp.recipes.text_classifier(bert, num_classes=2, vocabulary=vocab)
    kp.recipes.quantize(classifier)
    classifier.save("int8.keras")
    ```
    """
    if mode != "int8":
        raise ValueError(f"`mode` must be 'int8', received mode={mode!r}.")
    if not isinstance(task, keras.Model):
        raise TypeError(f"`task` must be a keras.Model, received {type(task).__name__}.")
    quantized = [layer.name for layer in task._flatten_layers() if "int8" in getattr(layer, "dtype_policy", keras.DTypePolicy()).name]
    if quantized:
        raise ValueError(f"`task` is already quantized (e.g. layer {quantized[0]!r} holds int8 weights); "
                         "quantize the float model instead.")
    import warnings

    with warnings.catch_warnings():
        # Keras warns once for every layer type without weights to quantize (LayerNorm, Dropout, ...).
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method.*")
        task.quantize(mode, filters=lambda layer: layer.name not in _HEAD_LAYERS)
    return task


def ffn_importance(backbone: keras.Model) -> list[np.ndarray]:
    """Per block, the importance of each feed-forward neuron: ‖w_in[:, j]‖ · ‖w_out[j, :]‖.

    The product of the L2 norms of a neuron's input column and output row bounds its contribution
    to the block's output (for a Lipschitz activation); it is the magnitude criterion of the
    structured-pruning literature (e.g. Li et al. 2017's filter norms, applied to both sides).
    """
    scores = []
    for block in _blocks(backbone):
        w_in = np.asarray(block._feedforward_intermediate_dense.kernel)
        w_out = np.asarray(block._feedforward_output_dense.kernel)
        scores.append(np.linalg.norm(w_in, axis=0) * np.linalg.norm(w_out, axis=1))
    return scores


def prune_ffn(task: keras.Model, fraction: float) -> keras.Model:
    """A new task of the same kind whose backbone keeps the most important feed-forward neurons.

    Every block keeps the same number of neurons, `round((1 - fraction) * intermediate_dim)`
    (backbones have one `intermediate_dim`), chosen by `ffn_importance`; every other weight is
    copied, so the pruned model differs from the original exactly by the removed neurons.

    Args:
        task: a keras_ptft task with a `Bert`, `GPT` or `ViT` backbone (e.g. a fine-tuned
            `TextClassifier`).
        fraction: float in [0, 1). The share of feed-forward neurons removed in each block.

    Returns:
        A new task (same class, same head and preprocessor) with a smaller backbone.

    Example:
    ```python
    smaller = kp.recipes.prune_ffn(classifier, 0.5)
    smaller.backbone.intermediate_dim  # half of classifier.backbone.intermediate_dim
    ```
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"`fraction` must be a number in [0, 1), received fraction={fraction!r}.")
    backbone = getattr(task, "backbone", None)
    if backbone is None or not _blocks(backbone):
        raise ValueError("`task` must be a task with a transformer backbone (Bert, GPT or ViT).")
    width = backbone.intermediate_dim
    keep = max(1, int(round((1.0 - fraction) * width)))
    kept = [np.sort(np.argsort(-score, kind="stable")[:keep]) for score in ffn_importance(backbone)]
    config = backbone.get_config()
    config["intermediate_dim"] = keep
    smaller = type(backbone).from_config(config)
    old_values = {v.path: np.asarray(v) for v in backbone.weights}
    for variable in smaller.weights:
        variable.assign(_pruned_value(variable.path, old_values[variable.path], kept))
    task_config = task.get_config()
    task_config["backbone"] = smaller
    if "preprocessor" in task_config:
        task_config["preprocessor"] = task.preprocessor
    pruned = type(task).from_config(task_config)
    pruned_backbone_paths = {id(v) for v in pruned.backbone.weights}
    old_task = {v.path: v for v in task.weights}
    for variable in pruned.weights:  # the head and anything else outside the backbone
        if id(variable) not in pruned_backbone_paths and variable.path in old_task:
            variable.assign(old_task[variable.path])
    if getattr(task, "compiled", False):
        pruned.compile()
    return pruned


def _pruned_value(path: str, value: np.ndarray, kept: list[np.ndarray]) -> np.ndarray:
    for index, neurons in enumerate(kept):
        prefix = f"transformer_layer_{index}/"
        if path.startswith(prefix + "feedforward_intermediate_dense/"):
            return value[..., neurons]  # kernel (hidden, intermediate) and bias (intermediate,)
        if path == prefix + "feedforward_output_dense/kernel":
            return value[neurons, :]
    return value


def _blocks(backbone) -> list:
    layers = getattr(backbone, "transformer_layers", None)
    if layers is None:
        layers = [layer for layer in backbone.layers if layer.name.startswith("transformer_layer_")]
    return list(layers)
