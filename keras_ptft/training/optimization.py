"""Optimizer and compile defaults shared by tasks and recipes."""

from __future__ import annotations

import keras

# LayerNorm scales/offsets and biases are excluded from weight decay, as in BERT's reference
# optimizer: decaying them towards zero only hurts.
NO_DECAY_VARIABLE_NAMES = ("bias", "gamma", "beta", "LayerNorm", "layer_norm")


def make_adamw(learning_rate, weight_decay: float = 0.01, **kwargs) -> keras.optimizers.AdamW:
    """AdamW with weight decay on kernels and embeddings only.

    Args:
        learning_rate: float or `LearningRateSchedule`. The (peak) learning rate.
        weight_decay: float. Decoupled weight decay coefficient.
        **kwargs: any other `keras.optimizers.AdamW` argument (e.g. `clipnorm=1.0`).

    Example:
    ```python
    optimizer = make_adamw(3e-4, clipnorm=1.0)
    ```
    """
    optimizer = keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
    optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY_VARIABLE_NAMES))
    return optimizer


def build_optimizer(model: keras.Model) -> None:
    """Builds `model.optimizer` on `model.trainable_variables` now, unless it is built already.

    Why before `fit` rather than where Keras does it: on TensorFlow without a `tf.distribute`
    strategy, Keras builds the optimizer inside the first trace of the train step, and a
    `tf.function` that creates variables is traced twice (once creating them, once more without),
    so the whole forward, backward and update graph is built twice. On a tiny Seq2Seq translator
    (2 layers, width 128) the first `fit` took 13.8 s, and 7.7 s with the optimizer built first,
    with the same losses. It is the build Keras itself does first under a strategy
    (`Trainer._symbolic_build`); JAX and PyTorch build before the first step anyway.

    Args:
        model: a compiled `keras.Model` (nothing happens before `compile`).

    Example:
    ```python
    translator.compile()
    build_optimizer(translator)  # the first fit traces its train step once
    ```
    """
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)


def default_compile_kwargs() -> dict:
    """`compile()` arguments the tasks and recipes add to Keras' defaults.

    None for now: measured inside `fit()` with keras-hub's string preprocessing on 2 CPU cores,
    XLA (`jit_compile=True`) made a tiny BERT's masked-LM epochs slower, not faster, so Keras'
    default `jit_compile="auto"` stays. Pass `jit_compile=True` to `compile()` to try it; the
    benchmarks measure both.
    """
    return {}


# `learning_rate="auto"` of the text recipes. BERT's fine-tuning rates (2e-5 .. 5e-5) were tuned for
# 768-wide encoders and stay right for MiniLM-sized ones (384); the tiny/mini encoders this package
# builds learn next to nothing at them in a few epochs (issue 13: a 128-wide BERT stays at the
# majority class after 3 epochs at 5e-5 and solves the task at 1e-2). The rate therefore grows as
# the width shrinks below 384, cubically, capped at 2e-3:
#
# | hidden_dim | 768 | 512 | 384  | 256    | 128     | 64    |
# |------------|-----|-----|------|--------|---------|-------|
# | rate       | 5e-5| 5e-5| 5e-5 | 1.7e-4 | 1.35e-3 | 2e-3  |
AUTO_LEARNING_RATE_WIDTH = 384
AUTO_LEARNING_RATE = 5e-5
AUTO_LEARNING_RATE_CAP = 2e-3


def auto_learning_rate(backbone) -> float:
    """The fine-tuning learning rate `learning_rate="auto"` picks for `backbone`, by its width.

    `5e-5` for a `hidden_dim` of 384 or more (BERT-base, MiniLM); below that
    `5e-5 * (384 / hidden_dim) ** 3`, at most `2e-3` (see the table above).

    Example:
    ```python
    auto_learning_rate(kp.models.Bert.from_size("tiny", vocabulary_size=100))  # 1.35e-3
    ```
    """
    width = getattr(backbone, "hidden_dim", None)
    if not width:
        return AUTO_LEARNING_RATE
    rate = AUTO_LEARNING_RATE * max(1.0, AUTO_LEARNING_RATE_WIDTH / width) ** 3
    return float(min(rate, AUTO_LEARNING_RATE_CAP))


def resolve_learning_rate(learning_rate, backbone) -> float:
    """`learning_rate` as a positive float: `"auto"` becomes `auto_learning_rate(backbone)`."""
    if isinstance(learning_rate, str) and learning_rate == "auto":
        return auto_learning_rate(backbone)
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f'`learning_rate` must be a positive number or "auto", received learning_rate={learning_rate!r}.')
    return float(learning_rate)
