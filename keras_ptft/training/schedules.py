"""Learning-rate schedules: serializable `keras.optimizers.schedules.LearningRateSchedule`s."""

from __future__ import annotations

import math

import keras
from keras import ops

DECAYS = ("linear", "cosine", "constant")


@keras.saving.register_keras_serializable(package="keras_ptft")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak_learning_rate`, then a decay to `end_learning_rate`.

    With `t` the step, `W` the warm-up steps and `T` the total steps:
    `lr(t) = peak * t / W` for `t < W`; after it, with `p = (t - W) / (T - W)` clipped to [0, 1],
    linear: `end + (peak - end) * (1 - p)`; cosine: `end + (peak - end) * (1 + cos(pi p)) / 2`;
    constant: `peak`.

    `total_steps=None` leaves the length open until a recipe's `fit()` knows how many steps it will
    run (`resolve()`), so a classifier can be compiled before its data is seen.

    Args:
        peak_learning_rate: float. The rate reached at the end of warm-up.
        total_steps: int or None. Steps of the whole run, warm-up included.
        warmup_steps: int. Steps of linear warm-up; 0 for none.
        warmup_ratio: float or None. Warm-up as a fraction of `total_steps`, used instead of
            `warmup_steps` when given.
        decay: str. `"linear"`, `"cosine"` or `"constant"`.
        end_learning_rate: float. The rate at the last step.

    Example:
    ```python
    schedule = WarmupDecay(1e-3, total_steps=1000, warmup_ratio=0.1)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule)
    ```
    """

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int | None = None,
        warmup_steps: int = 0,
        warmup_ratio: float | None = None,
        decay: str = "linear",
        end_learning_rate: float = 0.0,
    ):
        if not peak_learning_rate > 0:
            raise ValueError(
                f"`peak_learning_rate` must be > 0, received peak_learning_rate={peak_learning_rate!r}."
            )
        if decay not in DECAYS:
            raise ValueError(f"`decay` must be one of {DECAYS}, received decay={decay!r}.")
        if warmup_ratio is not None and not 0.0 <= warmup_ratio < 1.0:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), received warmup_ratio={warmup_ratio!r}.")
        if end_learning_rate < 0:
            raise ValueError(f"`end_learning_rate` must be >= 0, received {end_learning_rate!r}.")
        self.peak_learning_rate = float(peak_learning_rate)
        self.warmup_ratio = warmup_ratio
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        self.end_learning_rate = float(end_learning_rate)
        self.total_steps = None
        if total_steps is not None:
            self.resolve(total_steps)

    def resolve(self, total_steps: int) -> None:
        """Fixes the run length (and the warm-up, when given as a ratio)."""
        if not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"`total_steps` must be a positive integer, received total_steps={total_steps!r}.")
        if self.warmup_ratio is not None:
            self.warmup_steps = int(round(self.warmup_ratio * total_steps))
        if self.warmup_steps > total_steps:
            raise ValueError(
                f"The warm-up ({self.warmup_steps} steps) is longer than the whole run "
                f"(`total_steps`={total_steps})."
            )
        self.total_steps = total_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        warmup = float(self.warmup_steps)
        if self.total_steps is None or self.decay == "constant":
            decayed = ops.convert_to_tensor(peak, "float32")
        else:
            span = max(float(self.total_steps) - warmup, 1.0)
            progress = ops.clip((step - warmup) / span, 0.0, 1.0)
            end = self.end_learning_rate
            if self.decay == "linear":
                decayed = end + (peak - end) * (1.0 - progress)
            else:
                decayed = end + (peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        if self.warmup_steps == 0:
            return decayed
        warming = peak * step / warmup
        return ops.where(step < warmup, warming, decayed)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_ratio": self.warmup_ratio,
            "decay": self.decay,
            "end_learning_rate": self.end_learning_rate,
        }
