"""Fine-tuning techniques every recipe offers as arguments: optimizers and losses by name,
weight regularization, gradient clipping and accumulation, EMA of weights, mixed precision,
layer-wise learning-rate decay, freezing and LoRA.

Recipes call these helpers in this order: `with_dtype_policy` (before the head is built),
`freeze`/`enable_lora`, `add_weight_regularization`, `make_optimizer` (+ `layerwise_decay`),
`make_loss`, then `compile`.
"""

from __future__ import annotations

import keras
import numpy as np

from keras_ptft.training import schedules as schedules_lib
from keras_ptft.training.optimization import NO_DECAY_VARIABLE_NAMES
from keras_ptft.training.callbacks import encoder_layers

OPTIMIZERS = {
    "sgd": lambda lr, **kw: keras.optimizers.SGD(lr, **kw),
    "momentum": lambda lr, **kw: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, **kw),
    "adam": lambda lr, **kw: keras.optimizers.Adam(lr, **kw),
    "adamw": lambda lr, **kw: keras.optimizers.AdamW(lr, **kw),
    "adagrad": lambda lr, **kw: keras.optimizers.Adagrad(lr, **kw),
    "adadelta": lambda lr, **kw: keras.optimizers.Adadelta(lr, **kw),
    "lion": lambda lr, **kw: keras.optimizers.Lion(lr, **kw),
}
CLASSIFICATION_LOSSES = ("cross_entropy", "focal", "hinge")
PRECISIONS = ("float32", "mixed_bfloat16", "bfloat16", "mixed_float16")


def make_optimizer(
    name: str,
    learning_rate,
    *,
    weight_decay: float | None = None,
    clipnorm: float | None = None,
    clipvalue: float | None = None,
    gradient_accumulation_steps: int | None = None,
    use_ema: bool = False,
    ema_momentum: float = 0.999,
) -> keras.optimizers.Optimizer:
    """A Keras optimizer by name, with the options every Keras optimizer shares.

    `weight_decay` (decoupled, as in AdamW) skips LayerNorm parameters and biases for every
    optimizer. `gradient_accumulation_steps=k` averages gradients over `k` batches before one
    update (a `k` times larger effective batch); `use_ema` keeps an exponential moving average
    of the weights and writes it into the model at the end of `fit`.

    Args:
        name: str. One of `"sgd"`, `"momentum"` (SGD, Nesterov 0.9), `"adam"`, `"adamw"`,
            `"adagrad"`, `"adadelta"`, `"lion"`.
        learning_rate: float or `LearningRateSchedule`.
        weight_decay: float or None. Decoupled weight decay.
        clipnorm: float or None. Clip the gradients' global norm to this value.
        clipvalue: float or None. Clip each gradient element to [-clipvalue, clipvalue].
        gradient_accumulation_steps: int or None. Batches per update.
        use_ema: bool. Keep an exponential moving average of the weights.
        ema_momentum: float. EMA momentum.

    Example:
    ```python
    optimizer = make_optimizer("lion", 1e-4, weight_decay=0.1, gradient_accumulation_steps=4)
    ```
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {name!r}; valid names: {sorted(OPTIMIZERS)}.")
    if clipnorm is not None and clipvalue is not None:
        raise ValueError("Pass `clipnorm` or `clipvalue`, not both.")
    for value, argument in ((clipnorm, "clipnorm"), (clipvalue, "clipvalue")):
        if value is not None and not value > 0:
            raise ValueError(f"`{argument}` must be > 0, received {argument}={value!r}.")
    if gradient_accumulation_steps is not None and (
        not isinstance(gradient_accumulation_steps, int) or gradient_accumulation_steps < 1
    ):
        raise ValueError(
            "`gradient_accumulation_steps` must be a positive integer, received "
            f"gradient_accumulation_steps={gradient_accumulation_steps!r}."
        )
    if gradient_accumulation_steps == 1:
        gradient_accumulation_steps = None
    kwargs = dict(
        weight_decay=weight_decay,
        # Keras' `clipnorm` clips each gradient separately; the global norm is what BERT and
        # most fine-tuning code clip.
        global_clipnorm=clipnorm,
        clipvalue=clipvalue,
        gradient_accumulation_steps=gradient_accumulation_steps,
        use_ema=use_ema,
        ema_momentum=ema_momentum,
    )
    if name == "adamw" and weight_decay is None:
        kwargs["weight_decay"] = 0.01
    optimizer = OPTIMIZERS[name](learning_rate, **kwargs)
    if optimizer.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_VARIABLE_NAMES))
    return optimizer


@keras.saving.register_keras_serializable(package="keras_ptft")
class SparseClassificationLoss(keras.losses.Loss):
    """Cross-entropy (with label smoothing), focal or multi-class hinge loss on integer labels
    and probability outputs.

    Keras' label-smoothing, focal and hinge losses take one-hot labels; this one-hots the
    integer labels the recipes train on and calls them.

    Args:
        kind: str. `"cross_entropy"`, `"focal"` or `"hinge"`.
        num_classes: int. Number of classes.
        label_smoothing: float. In [0, 1); cross-entropy and focal only.
        focal_gamma: float. Focusing parameter of the focal loss (Lin et al. 2017).

    Example:
    ```python
    loss = SparseClassificationLoss("cross_entropy", num_classes=3, label_smoothing=0.1)
    ```
    """

    def __init__(self, kind: str, num_classes: int, label_smoothing: float = 0.0, focal_gamma: float = 2.0,
                 name: str | None = None, **kwargs):
        if kind not in CLASSIFICATION_LOSSES:
            raise ValueError(f"Unknown loss {kind!r}; valid names: {list(CLASSIFICATION_LOSSES)}.")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"`label_smoothing` must be in [0, 1), received label_smoothing={label_smoothing!r}.")
        if label_smoothing and kind == "hinge":
            raise ValueError("`label_smoothing` applies to the cross-entropy and focal losses, not hinge.")
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        self.focal_gamma = float(focal_gamma)

    def call(self, y_true, y_pred):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,))
        one_hot = keras.ops.one_hot(y_true, self.num_classes, dtype=y_pred.dtype)
        if self.kind == "cross_entropy":
            return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)
        if self.kind == "focal":
            return keras.losses.categorical_focal_crossentropy(
                one_hot, y_pred, alpha=1.0, gamma=self.focal_gamma, label_smoothing=self.label_smoothing
            )
        # Hinge on probabilities: max(0, 1 + max_wrong p - p_true) (Keras' categorical hinge).
        return keras.losses.categorical_hinge(one_hot, y_pred)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kind": self.kind,
            "num_classes": self.num_classes,
            "label_smoothing": self.label_smoothing,
            "focal_gamma": self.focal_gamma,
        }


def make_loss(name: str, num_classes: int, label_smoothing: float = 0.0, focal_gamma: float = 2.0):
    """A classification loss by name (see `SparseClassificationLoss`); plain sparse cross-entropy
    when there is nothing to smooth (the fastest path)."""
    if name == "cross_entropy" and not label_smoothing:
        return keras.losses.SparseCategoricalCrossentropy()
    return SparseClassificationLoss(name, num_classes, label_smoothing=label_smoothing, focal_gamma=focal_gamma)


def with_dtype_policy(backbone: keras.Model, precision: str) -> keras.Model:
    """The backbone under `precision` (`"mixed_bfloat16"`: bfloat16 compute, float32 weights),
    rebuilt from its config with the same weights when its policy differs."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}; valid names: {list(PRECISIONS)}.")
    if backbone.dtype_policy.name == precision:
        return backbone
    config = {**backbone.get_config(), "dtype": precision}
    rebuilt = type(backbone).from_config(config)
    rebuilt.set_weights(backbone.get_weights())
    return rebuilt


def freeze(backbone: keras.Model, freeze_backbone: bool = False, freeze_layers: int = 0) -> None:
    """Freezes the whole backbone, or its embeddings and lowest `freeze_layers` encoder blocks.

    The embeddings are every layer with weights that the graph runs before the first block (token,
    position and segment embeddings and their LayerNorm; a ViT's patch embedding, positions and
    class token); what runs after the blocks (BERT's pooler, a ViT's final LayerNorm) stays
    trainable."""
    if freeze_backbone:
        backbone.trainable = False
        return
    if freeze_layers == 0:
        return
    blocks = encoder_layers(backbone)
    if not isinstance(freeze_layers, int) or not 0 <= freeze_layers <= len(blocks):
        raise ValueError(
            f"`freeze_layers` must be an integer in [0, {len(blocks)}] (the backbone's encoder "
            f"layers), received freeze_layers={freeze_layers!r}."
        )
    # A functional model lists its layers in the order the graph runs them.
    first_block = next(i for i, layer in enumerate(backbone.layers) if layer is blocks[0])
    for layer in backbone.layers[:first_block]:
        if layer.weights:
            layer.trainable = False
    for block in blocks[:freeze_layers]:
        block.trainable = False


def enable_lora(backbone: keras.Model, rank: int) -> None:
    """LoRA through keras-hub's `Backbone.enable_lora`: freezes the backbone and adds rank-`rank`
    adapters to the attention query and value projections."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"`lora_rank` must be a positive integer, received lora_rank={rank!r}.")
    names = set(backbone.default_lora_layer_names())
    targets = [layer for layer in backbone._flatten_layers(include_self=False) if layer.name in names]
    if not targets:
        raise ValueError(f"`backbone` ({type(backbone).__name__}) has no attention layers LoRA can adapt.")
    # A rank above the smaller side of the adapted kernel (input dim, or per-head output dim of
    # an EinsumDense) adds no expressiveness, only parameters.
    limit = min(min(layer.kernel.shape[0], layer.kernel.shape[-1]) for layer in targets)
    if rank > limit:
        raise ValueError(
            f"`lora_rank`={rank} is larger than the layers it adapts (kernel sides down to {limit}); "
            f"use a rank <= {limit}."
        )
    backbone.enable_lora(rank)


def add_weight_regularization(model: keras.Model, l1: float = 0.0, l2: float = 0.0) -> None:
    """Adds an L1/L2 penalty on every trainable kernel and embedding (not LayerNorm parameters
    or biases) of an already built model; Keras sums it into the training loss."""
    for value, argument in ((l1, "l1"), (l2, "l2")):
        if not value >= 0:
            raise ValueError(f"`{argument}` must be >= 0, received {argument}={value!r}.")
    if not (l1 or l2):
        return
    regularizer = keras.regularizers.L1L2(l1=l1, l2=l2)
    for variable in model.trainable_weights:
        if not any(name in variable.path for name in NO_DECAY_VARIABLE_NAMES):
            variable.regularizer = regularizer


def layerwise_decay(optimizer: keras.optimizers.Optimizer, backbone: keras.Model, decay: float) -> dict:
    """Layer-wise learning-rate decay (ELECTRA, BEiT): the top encoder block learns at the full
    rate, the block below at `decay` times it, ..., the embeddings at `decay ** (L + 1)`; the
    head and pooler at the full rate.

    Keras optimizers have one rate for all variables, so this wraps the optimizer's per-variable
    `update_step` to scale the rate; it is not part of the optimizer's saved config. Returns the
    multiplier of each variable path.
    """
    if not 0 < decay <= 1:
        raise ValueError(f"`layerwise_lr_decay` must be in (0, 1], received layerwise_lr_decay={decay!r}.")
    # On PyTorch, Keras swaps in fused optimizers that update all variables at once.
    if type(optimizer).__module__.startswith("keras.src.backend.torch.optimizers"):
        raise ValueError(
            "`layerwise_lr_decay` is not available with Keras' fused PyTorch optimizers; use the "
            "TensorFlow or JAX backend."
        )
    blocks = encoder_layers(backbone)
    count = len(blocks)
    multipliers = {}
    pooler = getattr(backbone, "pooled_dense", None)
    block_ids = {id(b): i for i, b in enumerate(blocks)}
    for layer in backbone.layers:
        if layer is pooler:
            continue
        depth = block_ids.get(id(layer))
        factor = decay ** (count - depth) if depth is not None else decay ** (count + 1)
        for variable in layer.trainable_weights:
            multipliers[variable.path] = factor
    # Backends hand `update_step` their own variable objects; `_var_key` identifies them all.
    by_key = {optimizer._var_key(v): multipliers[v.path] for v in backbone.trainable_weights if v.path in multipliers}
    update_step = optimizer.update_step

    def scaled_update_step(gradient, variable, learning_rate):
        factor = by_key.get(optimizer._var_key(variable), 1.0)
        return update_step(gradient, variable, learning_rate * factor if factor != 1.0 else learning_rate)

    optimizer.update_step = scaled_update_step
    return multipliers


def count_params(model: keras.Model) -> tuple[int, int]:
    """`(trainable, total)` parameter counts."""
    trainable = int(sum(np.prod(v.shape) for v in model.trainable_weights))
    total = int(sum(np.prod(v.shape) for v in model.weights))
    return trainable, total


def apply_techniques(
    model: keras.Model,
    backbone: keras.Model,
    compile_kwargs: dict,
    *,
    learning_rate: float,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    schedule: str = "linear",
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float | None = 0.01,
    clipnorm: float | None = 1.0,
    clipvalue: float | None = None,
    gradient_accumulation_steps: int | None = None,
    use_ema: bool = False,
    l1: float = 0.0,
    l2: float = 0.0,
    layerwise_lr_decay: float | None = None,
    freeze_backbone: bool = False,
    freeze_layers: int = 0,
    lora_rank: int | None = None,
    verbose: bool = True,
) -> None:
    """The shared part of every fine-tuning recipe: freezing / LoRA, regularization and the
    optimizer with its schedule, written into `compile_kwargs["optimizer"]`."""
    if lora_rank is not None:
        if freeze_backbone or freeze_layers:
            raise ValueError("`lora_rank` already freezes the backbone; drop `freeze_backbone`/`freeze_layers`.")
        enable_lora(backbone, lora_rank)
    else:
        freeze(backbone, freeze_backbone=freeze_backbone, freeze_layers=freeze_layers)
    add_weight_regularization(model, l1=l1, l2=l2)
    if "optimizer" not in compile_kwargs:
        if isinstance(optimizer, keras.optimizers.Optimizer):
            built = optimizer
        else:
            if schedule == "one_cycle":
                rate = schedules_lib.OneCycle(learning_rate, total_steps=total_steps)
            elif schedule in schedules_lib.DECAYS:
                rate = schedules_lib.WarmupDecay(
                    learning_rate, total_steps=total_steps, warmup_ratio=warmup_ratio, decay=schedule
                )
            else:
                raise ValueError(
                    f"Unknown schedule {schedule!r}; valid names: {list(schedules_lib.DECAYS) + ['one_cycle']}."
                )
            built = make_optimizer(
                optimizer,
                rate,
                weight_decay=weight_decay,
                clipnorm=None if clipvalue is not None else clipnorm,
                clipvalue=clipvalue,
                gradient_accumulation_steps=gradient_accumulation_steps,
                use_ema=use_ema,
            )
        if layerwise_lr_decay is not None:
            layerwise_decay(built, backbone, layerwise_lr_decay)
        compile_kwargs["optimizer"] = built
    trainable, total = count_params(model)
    model.trainable_parameters = trainable
    if verbose:
        print(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)")
