"""Learning-rate range test (Smith 2017, as popularised by fastai's `lr_find`)."""

from __future__ import annotations

import math
import os

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_ptft")
class ExponentialSweep(keras.optimizers.schedules.LearningRateSchedule):
    """`min * (max / min) ** ((t - start) / (num_steps - 1))`: the range test's rising rate.

    A schedule (rather than assigning the rate each batch) so the sweep runs inside the traced
    step on every backend, driven by the optimizer's own step counter.
    """

    def __init__(self, min_learning_rate: float, max_learning_rate: float, num_steps: int, start_step: int = 0):
        self.min_learning_rate = float(min_learning_rate)
        self.max_learning_rate = float(max_learning_rate)
        self.num_steps = int(num_steps)
        self.start_step = int(start_step)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") - self.start_step
        exponent = keras.ops.clip(t / max(self.num_steps - 1, 1), 0.0, 1.0)
        return self.min_learning_rate * keras.ops.exp(exponent * math.log(self.max_learning_rate / self.min_learning_rate))

    def get_config(self) -> dict:
        return {
            "min_learning_rate": self.min_learning_rate,
            "max_learning_rate": self.max_learning_rate,
            "num_steps": self.num_steps,
            "start_step": self.start_step,
        }


class _LossPerStep(keras.callbacks.Callback):
    def __init__(self, divergence: float):
        super().__init__()
        self.losses: list[float] = []
        self.divergence = divergence

    def on_epoch_end(self, epoch, logs=None):
        loss = float(logs["loss"])
        self.losses.append(loss)
        best = min(self.losses)
        if not math.isfinite(loss) or loss > self.divergence * best:
            self.model.stop_training = True


def suggest_learning_rate(rates, losses, smoothing: float = 0.9, skip_start: int = 5) -> float:
    """The rate where the smoothed loss falls fastest (steepest negative slope against
    log-rate), searched between the first `skip_start` steps (batch noise while the smoothing
    warms up, as fastai skips them) and the loss minimum, capped at one tenth of the
    minimum-loss rate (the other common rule).

    The cap matters for fine-tuning: there the loss often stays flat until it diverges, so the
    steepest drop is the last dip right before the blow-up. Measured on the quickstart
    classifier: the uncapped suggestion (0.024) diverged, a tenth of it trains.

    When the loss does not fall at all before it climbs (less than 2% below its start), the
    minimum is batch noise anywhere on the plateau (it once gave 2.6e-7 on a sweep from 1e-6);
    then the suggestion is a tenth of the rate where the loss starts to climb (5% above its
    best so far), Smith's "an order of magnitude below divergence".
    """
    rates, losses = np.asarray(rates, "float64"), np.asarray(losses, "float64")
    smoothed, average = [], 0.0
    for i, loss in enumerate(losses):
        average = smoothing * average + (1 - smoothing) * loss
        smoothed.append(average / (1 - smoothing ** (i + 1)))  # bias-corrected, as in Adam
    smoothed = np.asarray(smoothed)
    first = min(skip_start, len(smoothed) - 1)
    climbing = np.nonzero(smoothed[first:] > 1.05 * np.minimum.accumulate(smoothed[first:]))[0]
    onset = first + int(climbing[0]) if climbing.size else len(smoothed) - 1
    if smoothed[first:onset + 1].min() > 0.98 * smoothed[first]:
        return float(rates[onset] / 10)
    end = int(np.argmin(smoothed)) + 1
    start = min(skip_start, max(end - 3, 0))
    cap = rates[end - 1] / 10
    if end - start < 3:
        return float(min(rates[start], cap))
    slopes = np.gradient(smoothed[start:end], np.log(rates[start:end]))
    return float(min(rates[start + int(np.argmin(slopes))], cap))


def find_learning_rate(
    model: keras.Model,
    x,
    y=None,
    *,
    min_learning_rate: float = 1e-7,
    max_learning_rate: float = 1.0,
    num_steps: int = 100,
    path: str | os.PathLike | None = "lr_find.png",
    divergence: float = 4.0,
    batch_size: int | None = None,
    verbose: int = 1,
) -> float:
    """LR range test: trains `num_steps` batches with a rate rising exponentially from
    `min_learning_rate` to `max_learning_rate`, plots loss against rate, returns a suggestion.

    The model's weights, optimizer state and schedule are restored afterwards, so the test leaves
    no trace. Each step is one Keras "epoch" of one batch, so the recorded loss is that batch's
    (Keras' running mean would smear it). The sweep stops early once the loss exceeds
    `divergence` times its best value.

    Args:
        model: a compiled Keras model (any recipe's output).
        x: training data as `fit` takes it (a `tf.data.Dataset` of batches is repeated).
        y: labels, when `x` is not a dataset.
        min_learning_rate: float. First rate of the sweep.
        max_learning_rate: float. Last rate of the sweep.
        num_steps: int. Batches in the sweep.
        path: str or None. Where to write the PNG of loss against rate; None for no plot.
        divergence: float. Stop once loss > `divergence` x best loss.
        batch_size: int or None. Passed to `fit` for array data.
        verbose: int. 1 prints the phases and the suggestion.

    Returns:
        float. The suggested learning rate (steepest descent of the smoothed loss).

    Example:
    ```python
    rate = kp.training.find_learning_rate(classifier, texts, labels, num_steps=50, path="lr.png")
    ```
    """
    if getattr(model, "optimizer", None) is None:
        raise ValueError("`model` must be compiled before `find_learning_rate`.")
    if not 0 < min_learning_rate < max_learning_rate:
        raise ValueError(
            "`min_learning_rate` and `max_learning_rate` must satisfy 0 < min < max, received "
            f"min_learning_rate={min_learning_rate!r}, max_learning_rate={max_learning_rate!r}."
        )
    if not isinstance(num_steps, int) or num_steps < 5:
        raise ValueError(f"`num_steps` must be an integer >= 5, received num_steps={num_steps!r}.")
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        x = x.repeat()
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    saved_weights = [keras.ops.convert_to_numpy(v) for v in model.weights]
    saved_optimizer = [keras.ops.convert_to_numpy(v) for v in optimizer.variables]
    saved_rate = optimizer._learning_rate
    start = int(keras.ops.convert_to_numpy(optimizer.iterations))
    sweep = ExponentialSweep(min_learning_rate, max_learning_rate, num_steps, start_step=start)
    recorder = _LossPerStep(divergence)
    if verbose:
        print(f"LR range test: {num_steps} steps, rate {min_learning_rate:g} -> {max_learning_rate:g}")
    optimizer._learning_rate = sweep
    model.make_train_function(force=True)
    try:
        model.fit(x, y, batch_size=batch_size, epochs=num_steps, steps_per_epoch=1, callbacks=[recorder], verbose=0)
    finally:
        optimizer._learning_rate = saved_rate
        for variable, value in zip(model.weights, saved_weights):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, saved_optimizer):
            variable.assign(value)
        model.make_train_function(force=True)
    losses = np.asarray(recorder.losses)
    rates = np.array([float(keras.ops.convert_to_numpy(sweep(start + i))) for i in range(len(losses))])
    finite = np.isfinite(losses)
    suggestion = suggest_learning_rate(rates[finite], losses[finite])
    if path is not None:
        _plot(rates, losses, suggestion, path)
    if verbose:
        print(f"LR range test: suggested learning rate {suggestion:.3g}" + (f" (plot: {path})" if path else ""))
    return suggestion


def _plot(rates, losses, suggestion, path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # headless
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(rates, losses)
    axis.axvline(suggestion, color="red", linestyle="--", label=f"suggested {suggestion:.2g}")
    axis.set_xscale("log")
    axis.set_xlabel("learning rate")
    axis.set_ylabel("loss")
    axis.legend()
    figure.tight_layout()
    figure.savefig(os.fspath(path))
    plt.close(figure)
