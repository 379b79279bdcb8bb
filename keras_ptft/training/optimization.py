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


def default_compile_kwargs() -> dict:
    """`compile()` arguments the tasks and recipes add to Keras' defaults.

    None for now: measured inside `fit()` with keras-hub's string preprocessing on 2 CPU cores,
    XLA (`jit_compile=True`) made a tiny BERT's masked-LM epochs slower, not faster, so Keras'
    default `jit_compile="auto"` stays. Pass `jit_compile=True` to `compile()` to try it; the
    benchmarks measure both.
    """
    return {}
