"""Learning-rate schedules: serializable `keras.optimizers.schedules.LearningRateSchedule`s.

| schedule | formula (`t` step, `W` warm-up steps, `T` total steps, `p = clip((t-W)/(T-W), 0, 1)`) |
|---|---|
| warm-up (all of `WarmupDecay`) | `peak * t / W` for `t < W` |
| `WarmupDecay(decay="linear")` | `end + (peak - end) * (1 - p)` |
| `WarmupDecay(decay="cosine")` | `end + (peak - end) * (1 + cos(pi p)) / 2` |
| `WarmupDecay(decay="polynomial")` | `end + (peak - end) * (1 - p) ** power` |
| `WarmupDecay(decay="exponential")` | `peak * decay_rate ** p` (so `peak * decay_rate` at `T`) |
| `WarmupDecay(decay="inverse_sqrt")` | `peak * sqrt(max(W, 1) / max(t, W, 1))` (no `T` needed) |
| `WarmupDecay(decay="constant")` | `peak` |
| `StepDecay` | `lr * gamma ** floor((t - W) / step_size)`, or piecewise `values[i]` for `boundaries[i-1] <= t < boundaries[i]` |
| `CosineRestarts` | cycle `i` of length `C * t_mul**i` from `peak * m_mul**i` down to `alpha * peak * m_mul**i` by a half cosine |
| `OneCycle` | `low + (peak - low) * (1 - cos(pi t / W)) / 2` for `t < W`, then `final + (peak - final) * (1 + cos(pi p)) / 2`; `low = peak / div_factor`, `final = low / final_div_factor` |
"""

from __future__ import annotations

import math

import keras
from keras import ops

DECAYS = ("linear", "cosine", "polynomial", "exponential", "inverse_sqrt", "constant")
# Decays that need the run length `T`; the others are defined for any step.
_NEEDS_TOTAL = ("linear", "cosine", "polynomial", "exponential")


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
        decay: str. One of `"linear"`, `"cosine"`, `"polynomial"`, `"exponential"`,
            `"inverse_sqrt"`, `"constant"` (formulas in the module docstring).
        end_learning_rate: float. The rate at the last step (linear, cosine, polynomial).
        power: float. Exponent of the polynomial decay.
        decay_rate: float. Factor the exponential decay has applied by the last step.

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
        power: float = 1.0,
        decay_rate: float = 0.01,
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
        if not power > 0:
            raise ValueError(f"`power` must be > 0, received power={power!r}.")
        if not 0 < decay_rate <= 1:
            raise ValueError(f"`decay_rate` must be in (0, 1], received decay_rate={decay_rate!r}.")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, received warmup_steps={warmup_steps!r}.")
        self.power = float(power)
        self.decay_rate = float(decay_rate)
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
        if self.decay == "inverse_sqrt":
            # fairseq / "Attention is all you need": the rate falls as 1/sqrt(t) after the warm-up.
            floor = max(warmup, 1.0)
            decayed = peak * ops.sqrt(floor / ops.maximum(step, floor))
        elif self.total_steps is None or self.decay == "constant":
            decayed = ops.convert_to_tensor(peak, "float32")
        else:
            span = max(float(self.total_steps) - warmup, 1.0)
            progress = ops.clip((step - warmup) / span, 0.0, 1.0)
            end = self.end_learning_rate
            if self.decay == "linear":
                decayed = end + (peak - end) * (1.0 - progress)
            elif self.decay == "polynomial":
                decayed = end + (peak - end) * ops.power(1.0 - progress, self.power)
            elif self.decay == "exponential":
                decayed = peak * ops.power(self.decay_rate, progress)
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
            "power": self.power,
            "decay_rate": self.decay_rate,
        }


def _check_rate(value, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{argument}` must be a number > 0, received {argument}={value!r}.")
    return float(value)


def _warm(step, peak: float, warmup_steps: int, after):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then `after`."""
    if warmup_steps == 0:
        return after
    return ops.where(step < warmup_steps, peak * step / float(warmup_steps), after)


@keras.saving.register_keras_serializable(package="keras_ptft")
class StepDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Step decay (`gamma` every `step_size` steps) or piecewise-constant rates, after a warm-up.

    Give either `step_size` (the rate is multiplied by `gamma` every `step_size` steps after the
    warm-up) or `boundaries` and `values` (`values[i]` from `boundaries[i-1]` to
    `boundaries[i]`, one more value than boundaries; `learning_rate` is then `values[0]`).
    Keras' `PiecewiseConstantDecay` has no warm-up, hence this class.

    Args:
        learning_rate: float. Rate at the end of the warm-up.
        step_size: int or None. Steps between two decays.
        gamma: float. Factor applied at each decay, in (0, 1].
        boundaries: list of int or None. Increasing steps where the rate changes.
        values: list of float or None. The rates, `len(boundaries) + 1` of them.
        warmup_steps: int. Steps of linear warm-up from 0.

    Example:
    ```python
    schedule = StepDecay(1e-3, step_size=100, gamma=0.5)  # 1e-3, then 5e-4 from step 100, ...
    piecewise = StepDecay(boundaries=[100, 200], values=[1e-3, 1e-4, 1e-5])
    ```
    """

    def __init__(
        self,
        learning_rate: float | None = None,
        step_size: int | None = None,
        gamma: float = 0.1,
        boundaries: list[int] | None = None,
        values: list[float] | None = None,
        warmup_steps: int = 0,
    ):
        if (step_size is None) == (boundaries is None):
            raise ValueError("`StepDecay` needs exactly one of `step_size` or `boundaries` (with `values`).")
        if boundaries is not None:
            boundaries = [int(b) for b in boundaries]
            if values is None or len(values) != len(boundaries) + 1:
                raise ValueError(
                    f"`values` must hold len(boundaries) + 1 = {len(boundaries) + 1} rates, received {values!r}."
                )
            if any(b1 >= b2 for b1, b2 in zip(boundaries, boundaries[1:])) or boundaries[0] <= 0:
                raise ValueError(f"`boundaries` must be positive and increasing, received {boundaries!r}.")
            values = [_check_rate(v, "values") for v in values]
            learning_rate = values[0]
        else:
            if not isinstance(step_size, int) or step_size < 1:
                raise ValueError(f"`step_size` must be a positive integer, received step_size={step_size!r}.")
            if not 0 < gamma <= 1:
                raise ValueError(f"`gamma` must be in (0, 1], received gamma={gamma!r}.")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, received warmup_steps={warmup_steps!r}.")
        self.learning_rate = _check_rate(learning_rate, "learning_rate")
        self.step_size = step_size
        self.gamma = float(gamma)
        self.boundaries = boundaries
        self.values = values
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        if self.boundaries is None:
            after = self.learning_rate * ops.power(
                self.gamma, ops.floor(ops.maximum(step - self.warmup_steps, 0.0) / self.step_size)
            )
        else:
            after = ops.convert_to_tensor(self.values[0], "float32")
            for boundary, value in zip(self.boundaries, self.values[1:]):
                after = ops.where(step >= boundary, value, after)
        return _warm(step, self.learning_rate, self.warmup_steps, after)

    def get_config(self) -> dict:
        return {
            "learning_rate": self.learning_rate,
            "step_size": self.step_size,
            "gamma": self.gamma,
            "boundaries": self.boundaries,
            "values": self.values,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="keras_ptft")
class CosineRestarts(keras.optimizers.schedules.LearningRateSchedule):
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017) after a warm-up.

    Cycle `i` lasts `cycle_steps * t_mul**i` steps and anneals from `peak * m_mul**i` to
    `alpha * peak * m_mul**i`. Same cycles as Keras' `CosineDecayRestarts`, which has no warm-up.

    Args:
        peak_learning_rate: float. Rate at the start of the first cycle.
        cycle_steps: int. Length of the first cycle.
        t_mul: float. Each cycle is `t_mul` times longer than the previous one (>= 1).
        m_mul: float. Each cycle starts `m_mul` times lower than the previous one.
        alpha: float. Lowest rate of a cycle, as a fraction of its starting rate.
        warmup_steps: int. Steps of linear warm-up from 0 before the first cycle.

    Example:
    ```python
    schedule = CosineRestarts(1e-3, cycle_steps=100, t_mul=2.0, warmup_steps=10)
    ```
    """

    def __init__(
        self,
        peak_learning_rate: float,
        cycle_steps: int,
        t_mul: float = 1.0,
        m_mul: float = 1.0,
        alpha: float = 0.0,
        warmup_steps: int = 0,
    ):
        self.peak_learning_rate = _check_rate(peak_learning_rate, "peak_learning_rate")
        if not isinstance(cycle_steps, int) or cycle_steps < 1:
            raise ValueError(f"`cycle_steps` must be a positive integer, received cycle_steps={cycle_steps!r}.")
        if not t_mul >= 1:
            raise ValueError(f"`t_mul` must be >= 1, received t_mul={t_mul!r}.")
        if not 0 < m_mul <= 1:
            raise ValueError(f"`m_mul` must be in (0, 1], received m_mul={m_mul!r}.")
        if not 0 <= alpha <= 1:
            raise ValueError(f"`alpha` must be in [0, 1], received alpha={alpha!r}.")
        if warmup_steps < 0:
            raise ValueError(f"`warmup_steps` must be >= 0, received warmup_steps={warmup_steps!r}.")
        self.cycle_steps = cycle_steps
        self.t_mul = float(t_mul)
        self.m_mul = float(m_mul)
        self.alpha = float(alpha)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        fraction = ops.maximum(step - self.warmup_steps, 0.0) / self.cycle_steps
        if self.t_mul == 1.0:
            cycle = ops.floor(fraction)
            within = fraction - cycle
        else:
            # Cycle i starts at (t_mul**i - 1) / (t_mul - 1) first-cycle lengths.
            cycle = ops.floor(ops.log(1.0 + fraction * (self.t_mul - 1.0)) / math.log(self.t_mul))
            start = (ops.power(self.t_mul, cycle) - 1.0) / (self.t_mul - 1.0)
            within = (fraction - start) / ops.power(self.t_mul, cycle)
        top = self.peak_learning_rate * ops.power(self.m_mul, cycle)
        after = top * (self.alpha + (1.0 - self.alpha) * 0.5 * (1.0 + ops.cos(math.pi * within)))
        return _warm(step, self.peak_learning_rate, self.warmup_steps, after)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "cycle_steps": self.cycle_steps,
            "t_mul": self.t_mul,
            "m_mul": self.m_mul,
            "alpha": self.alpha,
            "warmup_steps": self.warmup_steps,
        }


@keras.saving.register_keras_serializable(package="keras_ptft")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle policy (Smith 2018; fastai, PyTorch `OneCycleLR` with cosine annealing).

    The rate rises from `peak / div_factor` to `peak` over the first `pct_start` of the run by a
    half cosine, then falls by a half cosine to `peak / (div_factor * final_div_factor)` at
    `total_steps`. Like `WarmupDecay`, `total_steps=None` is fixed later by `resolve()`.

    Args:
        peak_learning_rate: float. Highest rate, reached at `pct_start * total_steps`.
        total_steps: int or None. Steps of the whole run.
        pct_start: float. Fraction of the run spent rising, in (0, 1).
        div_factor: float. `peak / div_factor` is the starting rate.
        final_div_factor: float. The final rate is the starting rate / `final_div_factor`.

    Example:
    ```python
    schedule = OneCycle(1e-3, total_steps=1000)
    ```
    """

    def __init__(
        self,
        peak_learning_rate: float,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ):
        self.peak_learning_rate = _check_rate(peak_learning_rate, "peak_learning_rate")
        if not 0 < pct_start < 1:
            raise ValueError(f"`pct_start` must be in (0, 1), received pct_start={pct_start!r}.")
        self.pct_start = float(pct_start)
        self.div_factor = _check_rate(div_factor, "div_factor")
        self.final_div_factor = _check_rate(final_div_factor, "final_div_factor")
        self.total_steps = None
        self.warmup_steps = None
        if total_steps is not None:
            self.resolve(total_steps)

    def resolve(self, total_steps: int) -> None:
        """Fixes the run length, hence the rising phase."""
        if not isinstance(total_steps, int) or total_steps < 2:
            raise ValueError(f"`total_steps` must be an integer >= 2, received total_steps={total_steps!r}.")
        self.total_steps = total_steps
        self.warmup_steps = min(max(int(round(self.pct_start * total_steps)), 1), total_steps - 1)

    def __call__(self, step):
        if self.total_steps is None:
            raise ValueError("`OneCycle` needs `total_steps` (pass it, or call `resolve(total_steps)`).")
        step = ops.cast(step, "float32")
        peak = self.peak_learning_rate
        low = peak / self.div_factor
        final = low / self.final_div_factor
        rise = ops.clip(step / self.warmup_steps, 0.0, 1.0)
        rising = low + (peak - low) * 0.5 * (1.0 - ops.cos(math.pi * rise))
        fall = ops.clip((step - self.warmup_steps) / (self.total_steps - self.warmup_steps), 0.0, 1.0)
        falling = final + (peak - final) * 0.5 * (1.0 + ops.cos(math.pi * fall))
        return ops.where(step < self.warmup_steps, rising, falling)

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }


def training_steps(
    num_examples: int,
    batch_size: int,
    epochs: int,
    warmup_ratio: float | None = None,
    warmup_steps: int | None = None,
    drop_remainder: bool = False,
) -> tuple[int, int]:
    """Total and warm-up steps of a run, from its data size, batch size and epochs.

    Args:
        num_examples: int. Training examples per epoch.
        batch_size: int. Examples per step.
        epochs: int. Passes over the data.
        warmup_ratio: float or None. Warm-up as a fraction of the total steps.
        warmup_steps: int or None. Warm-up steps, instead of `warmup_ratio`.
        drop_remainder: bool. Whether the last, smaller batch of an epoch is dropped.

    Returns:
        `(total_steps, warmup_steps)`.

    Example:
    ```python
    total, warmup = training_steps(67_349, batch_size=32, epochs=3, warmup_ratio=0.1)  # (6315, 632)
    ```
    """
    for value, name in ((num_examples, "num_examples"), (batch_size, "batch_size"), (epochs, "epochs")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")
    if warmup_ratio is not None and warmup_steps is not None:
        raise ValueError("Pass `warmup_ratio` or `warmup_steps`, not both.")
    per_epoch = num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)
    if per_epoch == 0:
        raise ValueError(
            f"`num_examples`={num_examples} is smaller than `batch_size`={batch_size} with drop_remainder=True."
        )
    total = per_epoch * epochs
    if warmup_ratio is not None:
        if not 0 <= warmup_ratio < 1:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), received warmup_ratio={warmup_ratio!r}.")
        warmup = int(round(warmup_ratio * total))
    else:
        warmup = int(warmup_steps or 0)
    if warmup > total:
        raise ValueError(f"The warm-up ({warmup} steps) is longer than the whole run ({total} steps).")
    return total, warmup


SCHEDULES = {"warmup_decay": WarmupDecay, "step": StepDecay, "cosine_restarts": CosineRestarts, "one_cycle": OneCycle}


def get(name: str, learning_rate: float, **kwargs) -> keras.optimizers.schedules.LearningRateSchedule:
    """A schedule by name: one of `SCHEDULES` or a `WarmupDecay` decay (`"cosine"`, ...).

    Example:
    ```python
    schedule = get("cosine", 1e-3, total_steps=1000, warmup_ratio=0.1)
    ```
    """
    if name in DECAYS:
        return WarmupDecay(learning_rate, decay=name, **kwargs)
    if name not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; valid names: {sorted(DECAYS + tuple(SCHEDULES))}.")
    return SCHEDULES[name](learning_rate, **kwargs)
