"""Compression of fine-tuned models: structured feed-forward and attention-head pruning, Keras int8 weights.

| function | what changes | faster? |
|---|---|---|
| `prune_ffn(task, fraction)` | every block keeps the `1 - fraction` feed-forward neurons of highest magnitude; a new, smaller backbone (`intermediate_dim` reduced) | yes: fewer FLOPs in every block |
| `prune_heads(classifier, fraction, probe_texts=...)` | the least important attention heads (gradient importance, Michel et al. 2019) go; a new backbone with fewer heads per block (`Bert(head_counts=...)`) | yes: fewer heads in every block |
| `quantize(task)` | Dense/EinsumDense/Embedding weights to int8 through Keras' own `Model.quantize("int8")` | smaller weights; speed depends on the backend's int8 kernels |

TensorFlow Model Optimization, the usual pruning library, does not support Keras 3 (its #1119),
so pruning is written here; quantization is Keras'.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import keras
import numpy as np

from keras_ptft.models.bert import Bert

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
        # Unbuilt layers (a loaded model's preprocessor, e.g. its packer) hold no weights and
        # Keras refuses to visit them.
        task.quantize(mode, filters=lambda layer: layer.built and layer.name not in _HEAD_LAYERS)
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
    return _rebuilt(task, config, lambda path, value: _pruned_value(path, value, kept))


def _rebuilt(task: keras.Model, config: dict, slice_value) -> keras.Model:
    """A new task of `task`'s kind on a backbone built from `config`, every weight copied from
    `task` through `slice_value(path, value)` (which cuts the removed units out)."""
    backbone = task.backbone
    smaller = type(backbone).from_config(config)
    old_values = {v.path: np.asarray(v) for v in backbone.weights}
    for variable in smaller.weights:
        variable.assign(slice_value(variable.path, old_values[variable.path]))
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


# === Attention heads (Michel et al. 2019) ===

_ATTENTION = "transformer_layer_{}/self_attention_layer/"


@dataclasses.dataclass
class PruningReport:
    """What `prune_heads` removed and how the pruned model agrees with the original on the probe
    texts (label agreement and the largest probability difference), before and after recovery."""

    removed: dict[int, list[int]]
    head_counts: list[int]
    agreement: float
    max_abs_difference: float
    recovered_agreement: float | None = None

    def __str__(self) -> str:
        text = (f"Pruned {sum(map(len, self.removed.values()))} heads, heads per block now {self.head_counts}; "
                f"agreement with the original on the probe texts {self.agreement:.4f} "
                f"(max |Δp| {self.max_abs_difference:.2e})")
        if self.recovered_agreement is not None:
            text += f", {self.recovered_agreement:.4f} after recovery"
        return text + "."


def head_importance(classifier: keras.Model, texts, labels=None, *, batch_size: int = 16,
                    normalize: bool = True) -> list[np.ndarray]:
    """Per block, the importance of each attention head: `I_h = Σ_batches |∂L/∂ξ_h|`.

    `ξ_h` gates head h's output (Michel et al. 2019, "Are Sixteen Heads Really Better than
    One?"); L is the cross-entropy against `labels`, or against the classifier's own predictions
    when there are none. The gate multiplies the head's slice `W_o[h]` of the attention output
    projection, so `∂L/∂ξ_h = Σ ∂L/∂W_o[h] ⊙ W_o[h]` at ξ = 1: the ordinary weight gradients
    give it, without changing the model.

    Args:
        classifier: a `TextClassifier` with a `Bert` backbone.
        texts: list of str. Probe texts (in-domain; a few hundred are plenty).
        labels: integer labels of `texts` or None.
        batch_size: int. Examples per gradient; the absolute value is taken per batch.
        normalize: bool. Divide each block's scores by their L2 norm (the paper's choice when
            heads are ranked across blocks).

    Returns:
        One array of `head_counts[i]` scores per block.
    """
    backbone = classifier.backbone
    texts = list(texts)
    if labels is None:
        labels = np.asarray(classifier.predict(texts, batch_size=64, verbose=0)).argmax(-1)
    labels = np.asarray(labels, "int32").reshape(-1)
    kernels = [_variable(backbone, _ATTENTION.format(i) + "attention_output/kernel")
               for i in range(backbone.num_layers)]
    scores = [np.zeros(kernel.shape[0]) for kernel in kernels]
    for start in range(0, len(texts), batch_size):
        features = classifier.preprocessor(texts[start:start + batch_size])
        target = labels[start:start + batch_size]
        gradients = _gradients(classifier, kernels, features, target)
        for score, kernel, gradient in zip(scores, kernels, gradients):
            score += np.abs((np.asarray(gradient) * np.asarray(kernel)).sum(axis=(1, 2)))
    if normalize:
        scores = [score / max(np.linalg.norm(score), 1e-12) for score in scores]
    return scores


def prune_heads(
    classifier: keras.Model,
    fraction: float | None = None,
    *,
    probe_texts=None,
    probe_labels=None,
    heads: dict[int, Sequence[int]] | None = None,
    recovery_data: tuple | None = None,
    recovery_epochs: int = 1,
    verbose: bool = True,
) -> keras.Model:
    """A new, smaller classifier without the least important attention heads.

    Heads are ranked across blocks by `head_importance` on the probe texts and the
    `round(fraction * total)` lowest go; every block keeps at least one head. The backbone is
    rebuilt with fewer heads per block (`Bert(head_counts=..., key_dim=...)`: fewer weights and
    FLOPs, saves, loads and exports like any `Bert`), and every other weight is copied, so the
    pruned model equals the original with those heads' outputs zeroed. Its agreement with the
    original on the probe texts is measured and printed (`pruned.pruning_report`).

    Args:
        classifier: a `TextClassifier` with a `kp.models.Bert` backbone.
        fraction: float in [0, 1). Share of all heads removed; or None with `heads`.
        probe_texts: list of str. Texts the importance is measured on (and the agreement).
        probe_labels: labels of `probe_texts`, or None to use the classifier's own predictions.
        heads: dict or None. Instead of `fraction`: `{block index: [head indices]}` to remove.
        recovery_data: `(texts, labels)` or None. Short fine-tuning of the pruned model after
            pruning (default compile: AdamW 5e-5 with warm-up), to win back accuracy.
        recovery_epochs: int. Epochs of the recovery fine-tuning.
        verbose: bool. Print the report.

    Returns:
        A new classifier of the same class.

    Example:
    ```python
    pruned = kp.recipes.prune_heads(classifier, 0.4, probe_texts=dev_texts, probe_labels=dev_labels)
    pruned.backbone.head_counts   # e.g. (7, 8, 6, 7, 8, 7) of 12 per block
    ```
    """
    backbone = getattr(classifier, "backbone", None)
    if not isinstance(backbone, Bert):
        raise ValueError("`classifier` must be a task with a kp.models.Bert backbone, received "
                         f"{type(backbone).__name__ if backbone is not None else type(classifier).__name__}.")
    counts = list(backbone.head_counts or [backbone.num_heads] * backbone.num_layers)
    if probe_texts is None or not len(probe_texts):
        raise ValueError("`probe_texts` is required: the texts the pruned model is checked on (and, with "
                         "`fraction`, the head importance is measured on).")
    if (fraction is None) == (heads is None):
        raise ValueError("Pass exactly one of `fraction` and `heads`.")
    if heads is None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
            raise ValueError(f"`fraction` must be a number in [0, 1), received fraction={fraction!r}.")
        heads = _least_important(head_importance(classifier, probe_texts, probe_labels), fraction, counts)
    removed = _check_heads(heads, counts)
    kept = [np.array([h for h in range(count) if h not in removed.get(i, [])]) for i, count in enumerate(counts)]
    config = backbone.get_config()
    config["head_counts"] = [len(k) for k in kept]
    config["key_dim"] = backbone.key_dim or backbone.hidden_dim // backbone.num_heads
    pruned = _rebuilt(classifier, config, lambda path, value: _heads_value(path, value, kept))
    want = np.asarray(classifier.predict(probe_texts, verbose=0))
    got = np.asarray(pruned.predict(probe_texts, verbose=0))
    report = PruningReport(removed, config["head_counts"], float(np.mean(got.argmax(-1) == want.argmax(-1))),
                           float(np.abs(got - want).max()))
    if recovery_data is not None:
        pruned.compile()
        pruned.fit(*recovery_data, epochs=recovery_epochs, verbose=0)
        recovered = np.asarray(pruned.predict(probe_texts, verbose=0))
        report.recovered_agreement = float(np.mean(recovered.argmax(-1) == want.argmax(-1)))
    pruned.pruning_report = report
    if verbose:
        print(report)
    return pruned


def _least_important(scores, fraction: float, counts: list[int]) -> dict[int, list[int]]:
    total = sum(counts)
    wanted = int(round(fraction * total))
    if wanted > total - len(counts):
        raise ValueError(f"`fraction`={fraction} removes {wanted} of {total} heads, but every one of the "
                         f"{len(counts)} blocks keeps at least one head: at most {total - len(counts)} can go.")
    order = sorted(((float(s), i, h) for i, block in enumerate(scores) for h, s in enumerate(block)))
    removed, left = {}, list(counts)
    for _, i, h in order:
        if sum(map(len, removed.values())) == wanted:
            break
        if left[i] > 1:
            removed.setdefault(i, []).append(h)
            left[i] -= 1
    return removed


def _check_heads(heads, counts: list[int]) -> dict[int, list[int]]:
    if not isinstance(heads, dict):
        raise ValueError(f"`heads` must be a dict {{block index: [head indices]}}, received {type(heads).__name__}.")
    checked = {}
    for block, indices in heads.items():
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or not 0 <= block < len(counts):
            raise ValueError(f"`heads` names block {block!r}, but the backbone has blocks 0..{len(counts) - 1}.")
        indices = sorted({int(h) for h in indices})
        if any(not 0 <= h < counts[block] for h in indices):
            raise ValueError(f"`heads` names head(s) {indices} of block {block}, which has heads 0..{counts[block] - 1}.")
        if len(indices) >= counts[block]:
            raise ValueError(f"`heads` removes {len(indices)} heads from block {block}, which has {counts[block]}: "
                             "every block keeps at least one head.")
        if indices:
            checked[int(block)] = indices
    return checked


def _heads_value(path: str, value: np.ndarray, kept: list[np.ndarray]) -> np.ndarray:
    for index, heads in enumerate(kept):
        prefix = _ATTENTION.format(index)
        if not path.startswith(prefix):
            continue
        name = path[len(prefix):]
        if name in ("query/kernel", "key/kernel", "value/kernel"):
            return value[:, heads, :]  # (hidden, heads, key_dim)
        if name in ("query/bias", "key/bias", "value/bias", "attention_output/kernel"):
            return value[heads]  # (heads, key_dim) and (heads, key_dim, hidden)
    return value


def _variable(model: keras.Model, path: str):
    for variable in model.weights:
        if variable.path == path:
            return variable
    raise ValueError(f"The backbone has no weight {path!r}.")


def _gradients(classifier: keras.Model, variables: list, features: dict, labels: np.ndarray) -> list:
    """Gradients of the mean cross-entropy of `classifier(features)` against `labels` with respect
    to `variables`, on the current backend (Keras has no backend-neutral gradient call)."""
    loss = keras.losses.SparseCategoricalCrossentropy()
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch([v.value for v in variables])  # watched even in a frozen backbone
            value = loss(labels, classifier(features, training=False))
        return tape.gradient(value, [v.value for v in variables])
    if backend == "torch":
        for variable in variables:
            variable.value.grad = None
        loss(labels, classifier(features, training=False)).backward()
        return [variable.value.grad.detach().cpu().numpy() for variable in variables]
    if backend == "jax":
        import jax

        trainable = [v.value for v in classifier.trainable_variables]
        non_trainable = [v.value for v in classifier.non_trainable_variables]
        positions = [next(i for i, t in enumerate(classifier.trainable_variables) if t is v) for v in variables]

        def value(trainable):
            outputs, _ = classifier.stateless_call(trainable, non_trainable, features, training=False)
            return loss(labels, outputs)

        gradients = jax.grad(value)(trainable)
        return [gradients[i] for i in positions]
    raise ValueError(f"Head importance needs gradients; backend {backend!r} is not supported.")


def keep_layers(backbone: Bert, layers: Sequence[int] | int) -> Bert:
    """A shallower copy of a `Bert` backbone that keeps the given encoder blocks (and the
    embeddings and pooler): the usual initialisation of a distillation student (DistilBERT takes
    every other block of its teacher).

    Args:
        backbone: a `kp.models.Bert`.
        layers: list of block indices, in order, or an int n: n blocks spread uniformly
            (`round(i * num_layers / n)`, e.g. 6 -> 3 keeps 0, 2, 4).

    Returns:
        A new `Bert` with `len(layers)` blocks.

    Example:
    ```python
    student = kp.recipes.keep_layers(teacher.backbone, 3)   # MiniLM 6 -> 3 blocks
    ```
    """
    if not isinstance(backbone, Bert):
        raise ValueError(f"`backbone` must be a kp.models.Bert, received {type(backbone).__name__}.")
    total = backbone.num_layers
    if isinstance(layers, int) and not isinstance(layers, bool):
        if not 1 <= layers <= total:
            raise ValueError(f"`layers` must be between 1 and num_layers={total}, received layers={layers}.")
        layers = [int(round(i * total / layers)) for i in range(layers)]
    layers = list(layers)
    if not layers or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < total for i in layers):
        raise ValueError(f"`layers` must name blocks in [0, {total}), received layers={layers}.")
    config = backbone.get_config()
    config["num_layers"] = len(layers)
    if backbone.head_counts is not None:
        config["head_counts"] = [backbone.head_counts[i] for i in layers]
    smaller = Bert.from_config(config)
    old = {v.path: np.asarray(v) for v in backbone.weights}
    for variable in smaller.weights:
        path = variable.path
        if path.startswith("transformer_layer_"):
            index, rest = path[len("transformer_layer_"):].split("/", 1)
            path = f"transformer_layer_{layers[int(index)]}/{rest}"
        variable.assign(old[path])
    return smaller
