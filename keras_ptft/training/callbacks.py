"""Callbacks for fine-tuning: per-batch schedules, rate logging, gradual unfreezing.

`ReduceLROnPlateau` and schedules: Keras' `ReduceLROnPlateau` assigns a new float to
`optimizer.learning_rate`, which an optimizer built with a `LearningRateSchedule` refuses
(TypeError). To combine a warm-up/decay shape with plateau reductions, compile with a float rate
and pass both `LearningRateWarmupDecay(schedule)` and `ReduceLROnPlateau`: the warm-up callback
notices each reduction (the rate it finds differs from the one it set) and keeps it as a factor,
so the rest of the run follows `factor * schedule(step)`.
"""

from __future__ import annotations

import os

import keras
import numpy as np


def _current_rate(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def _check_float_rate(optimizer, callback: str) -> None:
    if isinstance(optimizer._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        raise ValueError(
            f"`{callback}` sets the optimizer's rate itself: compile with a float `learning_rate`, "
            "not a `LearningRateSchedule`."
        )


class LearningRateWarmupDecay(keras.callbacks.Callback):
    """Sets the optimizer's learning rate before every batch from a schedule.

    For users who compile with a float rate and prefer callbacks; equivalent to passing the
    schedule to the optimizer, and combinable with `ReduceLROnPlateau` (see module docstring).

    Args:
        schedule: a `LearningRateSchedule` (e.g. `keras_ptft.schedules.WarmupDecay`) or a
            function of the step returning a float.

    Example:
    ```python
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), loss="mse")
    callback = LearningRateWarmupDecay(kp.schedules.WarmupDecay(1e-3, total_steps=100, warmup_steps=10))
    model.fit(x, y, epochs=2, callbacks=[callback])
    ```
    """

    def __init__(self, schedule):
        super().__init__()
        if not callable(schedule):
            raise ValueError(f"`schedule` must be a LearningRateSchedule or a function, received {schedule!r}.")
        self.schedule = schedule
        self.factor = 1.0
        self._last_set = None

    def on_train_begin(self, logs=None):
        _check_float_rate(self.model.optimizer, type(self).__name__)

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        if self._last_set is not None:
            found = _current_rate(optimizer)
            if not np.isclose(found, self._last_set, rtol=1e-5, atol=0.0) and self._last_set > 0:
                self.factor *= found / self._last_set  # someone (ReduceLROnPlateau) rescaled the rate
        step = int(keras.ops.convert_to_numpy(optimizer.iterations))
        rate = self.factor * float(keras.ops.convert_to_numpy(self.schedule(step)))
        optimizer.learning_rate = rate
        self._last_set = _current_rate(optimizer)


class LearningRateLogger(keras.callbacks.Callback):
    """Records the learning rate: per epoch in `history.history["learning_rate"]`, per step in
    `self.rates`, and per step in TensorBoard when `log_dir` is given.

    Works with float rates and with schedules (it reads `optimizer.learning_rate`, which
    evaluates a schedule at the current step). Keras' own `TensorBoard` callback logs the rate
    once per epoch only; a per-step curve shows the warm-up.

    Args:
        log_dir: str or None. TensorBoard folder; the scalar is `learning_rate` under `train/`.

    Example:
    ```python
    history = model.fit(x, y, epochs=3, callbacks=[LearningRateLogger()])
    history.history["learning_rate"]
    ```
    """

    def __init__(self, log_dir: str | None = None):
        super().__init__()
        self.log_dir = log_dir
        self.rates: list[float] = []
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.log_dir is not None and self._writer is None:
            # TensorBoard files are written by tf.summary on every backend, as Keras'
            # TensorBoard callback does.
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(os.path.join(os.fspath(self.log_dir), "train"))

    def on_train_batch_end(self, batch, logs=None):
        optimizer = self.model.optimizer
        # The rate the step just used: the optimizer's counter has already moved on.
        step = int(keras.ops.convert_to_numpy(optimizer.iterations)) - 1
        schedule = optimizer._learning_rate
        if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
            rate = float(keras.ops.convert_to_numpy(schedule(step)))
        else:
            rate = _current_rate(optimizer)
        self.rates.append(rate)
        if self._writer is not None:
            import tensorflow as tf

            with self._writer.as_default():
                tf.summary.scalar("learning_rate", rate, step=step)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.rates:
            logs["learning_rate"] = self.rates[-1]

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.flush()


def encoder_layers(backbone: keras.Model) -> list:
    """The transformer blocks of a backbone, bottom first (keras_ptft and keras-hub backbones)."""
    layers = getattr(backbone, "transformer_layers", None)
    if not layers:
        raise ValueError(
            f"`backbone` must have `transformer_layers` (a keras_ptft or keras-hub transformer), "
            f"received {type(backbone).__name__}."
        )
    return list(layers)


class GradualUnfreezing(keras.callbacks.Callback):
    """Gradual unfreezing (ULMFiT, Howard & Ruder 2018): the backbone starts frozen, then the top
    `layers_per_epoch` encoder blocks join training at each epoch, the embeddings last.

    Epoch `e` (from 0) trains the head, the pooler and the top `(e + 1) * layers_per_epoch` blocks;
    once every block trains, the embeddings join at the next epoch. The optimizer must have been
    built with the backbone trainable (the default: `fit` builds it before this callback runs), so
    it holds slots for the layers that join later.

    Args:
        backbone: the model's backbone (e.g. `classifier.backbone`).
        layers_per_epoch: int. Blocks unfrozen per epoch.

    Example:
    ```python
    classifier.fit(x, y, epochs=4, callbacks=[GradualUnfreezing(classifier.backbone)])
    ```
    """

    def __init__(self, backbone: keras.Model, layers_per_epoch: int = 1):
        super().__init__()
        if not isinstance(layers_per_epoch, int) or layers_per_epoch < 1:
            raise ValueError(f"`layers_per_epoch` must be a positive integer, received {layers_per_epoch!r}.")
        self.blocks = encoder_layers(backbone)
        self.backbone = backbone
        self.layers_per_epoch = layers_per_epoch
        self.unfrozen: list[int] = []  # blocks trainable in each epoch, for inspection

    def _embedding_layers(self):
        blocks = {id(b) for b in self.blocks}
        pooler = getattr(self.backbone, "pooled_dense", None)
        return [
            layer for layer in self.backbone.layers
            if id(layer) not in blocks and layer is not pooler and layer.weights
        ]

    def on_train_begin(self, logs=None):
        # Slots for every variable that will ever train, before the first epoch freezes most.
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)

    def on_epoch_begin(self, epoch, logs=None):
        count = min((epoch + 1) * self.layers_per_epoch, len(self.blocks))
        embeddings_too = epoch * self.layers_per_epoch >= len(self.blocks)
        for i, block in enumerate(self.blocks):
            block.trainable = i >= len(self.blocks) - count
        for layer in self._embedding_layers():
            layer.trainable = embeddings_too
        self.unfrozen.append(count)
        # The traced step captured the old trainable set; trace it again.
        self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        for layer in self.blocks + self._embedding_layers():
            layer.trainable = True


class TimeBudget(keras.callbacks.Callback):
    """Stops training once `minutes` of wall-clock time have passed since `fit` began.

    The check runs after every batch, so the run ends within one batch of the budget; the epoch
    in progress ends early (its logs cover the batches it ran). A wall-clock budget rather than an
    epoch count is how a CPU run is promised to finish in time, whatever the machine's speed.

    Args:
        minutes: float. The budget; positive.

    Example:
    ```python
    translator.fit((sources, targets), epochs=1000, callbacks=[TimeBudget(30)])
    ```
    """

    def __init__(self, minutes: float):
        super().__init__()
        if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes < float("inf"):
            raise ValueError(f"`minutes` must be a positive number, received minutes={minutes!r}.")
        self.minutes = float(minutes)
        self.started = None

    def on_train_begin(self, logs=None):
        import time

        self.started = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        import time

        if time.perf_counter() - self.started > 60 * self.minutes:
            self.model.stop_training = True
class MagnitudePruning(keras.callbacks.Callback):
    """Unstructured magnitude pruning with the polynomial sparsity schedule of Zhu & Gupta (2017).

    Sparsity target at optimizer step t (`t0 = begin_step`, `n = end_step - begin_step`):

    | step | target sparsity |
    |---|---|
    | t < t0 | 0 (nothing pruned yet) |
    | t0 <= t <= t0 + n | `s_f + (s_i - s_f) * (1 - (t - t0) / n) ** 3` |
    | t > t0 + n | `s_f` |

    Every `frequency` steps inside the schedule, each pruned weight tensor gets a fresh mask that
    zeroes its `target` share of smallest-magnitude entries (once pruned, an entry stays pruned:
    masks only grow); after every step the masks are applied again, so weights the optimizer moved
    stay zero. The sparsity reached over the pruned tensors is written to the logs as
    `sparsity` (every batch and epoch). Written here because TensorFlow Model Optimization does not
    support Keras 3 (its issue #1119).

    Args:
        target_sparsity: float in [0, 1). Final share `s_f` of zero weights in each pruned tensor.
        begin_step: int. Optimizer step at which pruning starts.
        end_step: int. Step at which `target_sparsity` is reached (> `begin_step`).
        initial_sparsity: float in [0, target_sparsity]. `s_i`, the sparsity at `begin_step`.
        frequency: int. Steps between mask updates (Zhu & Gupta's Δt).
        weights: list of variables or None. What is pruned; None: the kernels of every `Dense`
            and `EinsumDense` layer of the model (embeddings, biases and norms are left alone).

    Example:
    ```python
    pruning = kp.callbacks.MagnitudePruning(0.5, begin_step=0, end_step=100)
    classifier.fit(texts, labels, epochs=2, callbacks=[pruning])  # logs["sparsity"] reaches 0.5
    ```
    """

    def __init__(self, target_sparsity: float, begin_step: int = 0, end_step: int = 1000,
                 initial_sparsity: float = 0.0, frequency: int = 10, weights=None):
        super().__init__()
        self.target_sparsity = _check_sparsity(target_sparsity, "target_sparsity")
        self.initial_sparsity = _check_sparsity(initial_sparsity, "initial_sparsity")
        if self.initial_sparsity > self.target_sparsity:
            raise ValueError(f"`initial_sparsity` must be at most `target_sparsity`={target_sparsity}, received "
                             f"initial_sparsity={initial_sparsity}.")
        for name, value in (("begin_step", begin_step), ("end_step", end_step), ("frequency", frequency)):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "frequency" else 0):
                raise ValueError(f"`{name}` must be an integer >= {1 if name == 'frequency' else 0}, "
                                 f"received {name}={value!r}.")
        if end_step <= begin_step:
            raise ValueError(f"`end_step` must be greater than `begin_step`={begin_step}, received end_step={end_step}.")
        self.begin_step, self.end_step, self.frequency = begin_step, end_step, frequency
        self.pruned_weights, self.masks = weights, None

    def sparsity_at(self, step: int) -> float:
        """The schedule's target sparsity at optimizer step `step`."""
        if step < self.begin_step:
            return 0.0
        progress = min(1.0, (step - self.begin_step) / (self.end_step - self.begin_step))
        return self.target_sparsity + (self.initial_sparsity - self.target_sparsity) * (1.0 - progress) ** 3

    def on_train_begin(self, logs=None):
        if self.pruned_weights is None:
            self.pruned_weights = [layer.kernel for layer in self.model._flatten_layers()
                                   if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))]
        if self.masks is None:
            self.masks = [np.ones(tuple(w.shape), bool) for w in self.pruned_weights]

    def on_train_batch_end(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        due = (step - self.begin_step) % self.frequency == 0 or step == self.end_step
        if self.begin_step <= step <= self.end_step and due:
            self.update_masks(self.sparsity_at(step))
        for variable, mask in zip(self.pruned_weights, self.masks):
            if not mask.all():
                variable.assign(np.where(mask, keras.ops.convert_to_numpy(variable), 0).astype(variable.dtype))
        if logs is not None:
            logs["sparsity"] = self.sparsity()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["sparsity"] = self.sparsity()

    def update_masks(self, sparsity: float) -> None:
        """Masks that zero the `sparsity` share of smallest-magnitude entries of each tensor."""
        for index, variable in enumerate(self.pruned_weights):
            magnitude = np.abs(keras.ops.convert_to_numpy(variable)).reshape(-1)
            count = int(np.floor(sparsity * magnitude.size))
            if count == 0:
                continue
            mask = self.masks[index].reshape(-1).copy()
            magnitude[~mask] = -1.0  # already pruned entries stay first in line
            mask[np.argsort(magnitude, kind="stable")[:count]] = False
            self.masks[index] = mask.reshape(self.masks[index].shape)

    def sparsity(self) -> float:
        """The share of zero entries over the pruned tensors now."""
        zeros = sum(int(np.sum(keras.ops.convert_to_numpy(w) == 0)) for w in self.pruned_weights or [])
        total = sum(int(np.prod(w.shape)) for w in self.pruned_weights or [])
        return zeros / max(total, 1)


def _check_sparsity(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1), received {name}={value!r}.")
    return float(value)
