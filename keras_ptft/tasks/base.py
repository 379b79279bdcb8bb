"""The one training path every task shares: `fit`, `evaluate` and `predict` of all of them.

`fit(x, y, ...)` always runs the same steps, in this order:

1. `check_inputs` (per task): normalise and validate `x` / `y` / `sample_weight`, naming the
   argument on error; then, for in-memory inputs, empty data and length mismatches are refused here.
2. `validation_split` is cut from the end of in-memory data, as Keras does.
3. `make_batches` (per task, with a default): in-memory examples or a `tf.data.Dataset` become
   model-ready batches — shuffled every epoch with the task's `seed`, and passed through the
   task's preprocessor. **Length-bucketed batching belongs here, and only here.**
4. `size_schedule`: any learning-rate schedule whose length was left open (`WarmupDecay`,
   `OneCycle`, anything with `resolve(total_steps)`) is sized from epochs x batches.
5. `checkpoint_dir` callbacks (resume and best model), when the task has one.
6. `keras.Model.fit` runs inside `distribution_scope()` — **the distribution switch belongs
   there, and only there.** Every task constructor accepts `distribution=` (`"data_parallel"`,
   `"model_parallel"`, a `keras.distribution.Distribution` or a `tf.distribute.Strategy`; see
   `keras_ptft/training/distribution.py`): the task is built, compiled, trained, evaluated and
   run inside it, and `fit`'s `batch_size` is the global batch.

Example:
```python
import keras_ptft as kp

classifier = kp.recipes.text_classifier(bert, num_classes=2, vocabulary=vocab, seed=0)
classifier.fit(["a fine film", "a dull film"], [1, 0], validation_split=0.5, epochs=2)
```
"""

from __future__ import annotations

import functools
import os

import keras
import keras_hub
import numpy as np

from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.training.checkpoints import add_checkpoint_callbacks, check_checkpoint_dir
from keras_ptft.training.distribution import (
    check_global_batch_size,
    distributable,
    distribution_scope,
    drop_uneven_batches,
)
from keras_ptft.training.optimization import build_optimizer
from keras_ptft.training.shuffling import shuffled_batches, split_validation
from keras_ptft.validation import check_same_length, is_in_memory, num_examples


class TrainingMixin:
    """`fit` / `evaluate` / `predict` through `check_inputs` and `make_batches`; see the module
    docstring. Mixed in before a keras-hub `Task` (or `keras.Model`) class."""

    #: int or None. Seed of the shuffling (and of a task's augmentation). None follows
    #: `keras.utils.set_random_seed`.
    seed = None
    #: str or None. Folder that makes `fit` resumable (see `set_run_options`).
    checkpoint_dir = None
    checkpoint_monitor = None
    #: The resolved distribution (None: one device). Set by the constructor's `distribution=`.
    distribution = None

    def __init_subclass__(cls, **kwargs):
        # Every task constructor gets `distribution=` here, once, instead of in each task.
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = distributable(cls.__init__)
        if "compile" in cls.__dict__:
            cls.compile = _compile_in_scope(cls.compile)

    # === Hooks a task overrides ===

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets: bool = False):
        """Normalises and validates one call's inputs; returns `(x, y, sample_weight)`.
        `with_targets` is True for `fit` / `evaluate` (targets may be required), False for `predict`."""
        return x, y, sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        """Turns checked inputs (in-memory examples or a `tf.data.Dataset`) into a `tf.data.Dataset`
        of model-ready batches: the single place where examples are grouped into batches.

        Args:
            x, y, sample_weight: as `check_inputs` returned them.
            batch_size: int or None (32). Ignored for a dataset, which is already batched.
            shuffle: bool. Reshuffle in-memory examples every epoch (seeded by `self.seed`).
            augment: bool. Apply training-only augmentation (tasks that have any).
        """
        import tensorflow as tf  # tf.data feeds every backend

        if hasattr(x, "element_spec"):
            if y is not None or sample_weight is not None:
                raise ValueError("`y` and `sample_weight` must be None when `x` is a tf.data.Dataset.")
            dataset = x
        else:
            dataset = shuffled_batches(x, y, sample_weight, batch_size, seed=self.seed, shuffle=shuffle)
        if getattr(self, "preprocessor", None) is not None:
            dataset = dataset.map(self.preprocess_samples, num_parallel_calls=tf.data.AUTOTUNE)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def distribution_scope(self):
        """The context the task is compiled, trained and run in: its `distribution`'s scope."""
        return distribution_scope(self.distribution)

    def compile(self, *args, **kwargs):
        return super().compile(*args, **kwargs)

    def training_model(self) -> keras.Model:
        """The model `fit` trains: the task itself, or a training-only model that shares its
        weights and adds to its loss (e.g. `kp.recipes.distill`'s hidden-state distillation). Its
        extra layers stay out of the task, so they are never saved or exported with it."""
        return self

    def empty_predictions(self) -> np.ndarray:
        """What `predict` returns for zero inputs: a `(0, ...)` array of the output's shape."""
        # The graph's own output tensor: `output_shape` is not always available on a Task.
        output = keras.tree.flatten(self.outputs)[0]
        return np.zeros((0, *output.shape[1:]), "float32")

    # === The shared path ===

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, sample_weight=None, validation_data=None,
            validation_split=None, shuffle: bool = True, **kwargs):
        if not self.compiled:
            self.compile()
        if self.distribution is not None and not hasattr(x, "element_spec"):
            check_global_batch_size(batch_size or 32, self.distribution)
        x, y, sample_weight = self._checked(x, y, sample_weight, with_targets=True)
        if validation_split:
            if validation_data is not None:
                raise ValueError("Pass either `validation_split` or `validation_data`, not both.")
            if not is_in_memory(x):
                raise ValueError("`validation_split` needs in-memory `x`; pass `validation_data` with a dataset.")
            (x, y, sample_weight), validation_data = split_validation(x, y, sample_weight, validation_split)
        batches = self.make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=True)
        if validation_data is not None:
            validation_data = self.make_batches(*self._checked(*_unpack(validation_data), with_targets=True),
                                                batch_size)
        kwargs["validation_data"] = validation_data
        self.size_schedule(batches, epochs, kwargs.get("steps_per_epoch"))
        if self.distribution is not None:
            batches = drop_uneven_batches(batches, self.distribution)
        add_checkpoint_callbacks(self, kwargs)
        batches = one_iterator_per_fit(batches, epochs, kwargs)
        # The batches are already shuffled; Keras cannot shuffle a dataset (and warns).
        with self.distribution_scope():
            model = self.training_model()
            # TensorFlow traces the first train step twice when the optimizer is built inside it
            # (Keras' default without a tf.distribute strategy); built here, it is traced once:
            # the first fit of a tiny classifier 8.7-11.2 s -> 4.2-5.6 s (`build_optimizer`).
            build_optimizer(model)
            return keras.Model.fit(model, batches, epochs=epochs, shuffle=False, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        if not self.compiled:
            self.compile()
        if kwargs.get("_use_cached_eval_dataset"):  # `fit`'s validation batches, already made
            return keras.Model.evaluate(self, x, y, **kwargs)
        x, y, sample_weight = self._checked(x, y, sample_weight, with_targets=True)
        return keras.Model.evaluate(self, self.make_batches(x, y, sample_weight, batch_size), **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        x, _, _ = self._checked(x, None, None, with_targets=False)
        if is_in_memory(x) and num_examples(x) == 0:
            return self.empty_predictions()
        batches, order = self.prediction_batches(x, batch_size)
        outputs = keras.Model.predict(self, batches, **kwargs)
        if order is None:
            return outputs
        from keras_ptft.data.bucketing import restore_order  # TensorFlow-backed: only when needed

        return restore_order(outputs, order)

    def prediction_batches(self, x, batch_size=None):
        """`predict`'s batches and the order they hold the examples in: `(batches, None)` when
        they keep the caller's order (the default: `make_batches`), or `(batches, order)` for a
        task that regroups them (e.g. by length); `predict` then puts the outputs back in order."""
        return self.make_batches(x, None, None, batch_size), None

    def size_schedule(self, batches, epochs: int, steps_per_epoch: int | None = None) -> None:
        """Sets the length of the optimizer's schedule when it was left open (`WarmupDecay`,
        `OneCycle` or any schedule with `resolve(total_steps)`), before the first step is traced."""
        model = self.training_model()
        schedule = getattr(getattr(model, "optimizer", None), "_learning_rate", None)
        if not hasattr(schedule, "resolve") or getattr(schedule, "total_steps", 0) is not None:
            return
        if steps_per_epoch is None:
            steps_per_epoch = known_length(batches)
        if steps_per_epoch:
            schedule.resolve(int(epochs * steps_per_epoch))
            model.train_function = None

    def set_run_options(self, checkpoint_dir: str | os.PathLike | None = None, monitor: str | None = None,
                        seed: int | None = None) -> None:
        """Options of this training run, not of the model (not in `get_config`): a `checkpoint_dir`
        that makes every later `fit` resumable (a folder holding another model's checkpoint is
        refused now, before any training), the metric `monitor` of its best model, and the `seed`."""
        if seed is not None and (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)):
            raise ValueError(f"`seed` must be an integer or None, received seed={seed!r}.")
        if checkpoint_dir is not None:
            check_checkpoint_dir(self, checkpoint_dir)
        self.checkpoint_dir, self.checkpoint_monitor = checkpoint_dir, monitor
        if seed is not None:
            self.seed = int(seed)

    def _checked(self, x, y, sample_weight, with_targets: bool):
        """`check_inputs`, then the rules of every task: `x` given, not empty (except to
        `predict`), as many labels and weights as examples."""
        if x is None:
            raise ValueError("`x` is required: the examples to train on, evaluate or predict.")
        x, y, sample_weight = self.check_inputs(x, y, sample_weight, with_targets=with_targets)
        if is_in_memory(x):
            if with_targets and num_examples(x) == 0:
                raise ValueError("`x` is empty: at least one example is needed.")
            check_same_length(x, y, "x", "y")
            check_same_length(x, sample_weight, "x", "sample_weight")
        return x, y, sample_weight


def _compile_in_scope(compile_method):
    """`compile` run inside the task's distribution; an optimizer made outside it (by a recipe, or
    by the task's own defaults before this call) is re-made inside from its config, because its
    variables (`iterations`, then the slots) must be placed like the model's."""

    @functools.wraps(compile_method)
    def compile(self, *args, **kwargs):
        if self.distribution is None:
            return compile_method(self, *args, **kwargs)
        with self.distribution_scope():
            if args and isinstance(args[0], keras.optimizers.Optimizer):
                args = (_remade(args[0]), *args[1:])
            elif isinstance(kwargs.get("optimizer"), keras.optimizers.Optimizer):
                kwargs["optimizer"] = _remade(kwargs["optimizer"])
            return compile_method(self, *args, **kwargs)

    return compile


def _remade(optimizer):
    return type(optimizer).from_config(optimizer.get_config())


TrainingMixin.compile = _compile_in_scope(TrainingMixin.compile)


class BucketingOption:
    """The `bucketing` run option of a task with length-bucketed batches (see `make_batches`).

    Mixed in before `TrainingMixin` / `Task`. `bucketing` is False (fixed padding to the
    preprocessor's `sequence_length`), a number of buckets (from the data's length quantiles,
    `keras_ptft.data.bucket_boundaries`) or a tuple of bucket lengths; `set_run_options` sets it
    like `seed`, so it is not in `get_config`.

    Example:
    ```python
    classifier.set_run_options(bucketing=False)  # fixed padding from now on
    ```
    """

    #: False, a number of buckets or a tuple of bucket lengths (`keras_ptft.data.check_bucketing`).
    bucketing = check_bucketing(True)

    def set_run_options(self, checkpoint_dir=None, monitor=None, seed=None, bucketing=None) -> None:
        """As `TrainingMixin.set_run_options`, plus `bucketing`: True, False, a number of buckets or
        a list of bucket lengths; None leaves it unchanged. A run option, not in `get_config`."""
        checked = None if bucketing is None else check_bucketing(bucketing)
        super().set_run_options(checkpoint_dir, monitor, seed)
        if checked is not None:
            # A tuple: Keras would wrap a list attribute in its tracking type.
            self.bucketing = tuple(checked) if isinstance(checked, list) else checked


class EncodedBucketing(BucketingOption):
    """Length bucketing for tasks that encode their examples into NumPy rows before `fit` and
    `predict` (a tagger's sentences, a QA model's context windows) instead of in a preprocessor.

    Mixed in before `Task`; the task has `sequence_length` and `seed`. With `bucketing` on,
    `make_batches` draws each batch from one length bucket (`keras_ptft.data.bucketed_arrays`:
    per-token labels and weights are cut with the pieces), and `token_outputs` runs the rows
    sorted by length. `output_pad_value` is what positions past a batch's cut get when the
    per-token outputs are padded back to `sequence_length`.

    Example:
    ```python
    tagger = kp.recipes.token_classifier(bert, ["O", "B-PER", "I-PER"], vocabulary=vocab)  # bucketing on
    x, _, _ = tagger.check_inputs([["Alice", "met", "Bob"]])
    tagger.token_outputs(x).shape  # (1, 128, 3): cut to an 8-wide bucket, padded back
    ```
    """

    #: The value per-token outputs get past a batch's cut (what the model gives padding).
    output_pad_value = 0.0

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        if not self.bucketing or hasattr(x, "element_spec"):
            return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)
        from keras_ptft.data.bucketing import bucketed_arrays  # TensorFlow-backed: only when needed

        return bucketed_arrays(x, y, sample_weight, batch_size=batch_size or 32, bucketing=self.bucketing,
                               max_length=self.sequence_length, shuffle=shuffle, seed=self.seed)

    def token_outputs(self, inputs: dict, batch_size: int | None = None) -> np.ndarray:
        """The model's per-token outputs `(rows, sequence_length, ...)` for encoded rows, in their order.

        With `bucketing` on, the rows run sorted by length, each batch cut to the shortest bucket
        that holds it (`keras_ptft.data.length_sorted_batches`), one model call per batch
        (`Model.predict` cannot concatenate batches of different lengths); the outputs are padded
        back with `output_pad_value` and returned in the caller's order.
        """
        if not self.bucketing or len(inputs["token_ids"]) == 0:
            return keras.Model.predict(self, inputs, batch_size=batch_size, verbose=0)
        from keras_ptft.data.bucketing import boundaries_for, length_sorted_batches, restore_order

        lengths = np.asarray(inputs["padding_mask"]).astype(bool).sum(axis=1)
        boundaries = boundaries_for(self.bucketing, lengths, self.sequence_length)
        batches, order = length_sorted_batches(inputs, batch_size or 32, boundaries)
        rows = []
        for batch in batches:
            outputs = keras.ops.convert_to_numpy(self.predict_on_batch(batch))
            padding = [(0, 0), (0, self.sequence_length - outputs.shape[1])] + [(0, 0)] * (outputs.ndim - 2)
            rows.append(np.pad(outputs, padding, constant_values=self.output_pad_value))
        return restore_order(np.concatenate(rows), order)


class Task(TrainingMixin, keras_hub.models.Task):
    """A keras-hub `Task` trained through the shared path (`TrainingMixin`)."""


def _unpack(data):
    """`validation_data` as `(x, y, sample_weight)`."""
    if hasattr(data, "element_spec") or isinstance(data, (list, np.ndarray)):  # a dataset, or texts alone
        return data, None, None
    if isinstance(data, tuple) and len(data) in (2, 3):
        return (*data, None) if len(data) == 2 else data
    raise ValueError(
        "`validation_data` must be a tuple `(x, y)` / `(x, y, sample_weight)` or a tf.data.Dataset, "
        f"received {type(data).__name__}."
    )


def one_iterator_per_fit(batches, epochs: int, fit_kwargs: dict):
    """`batches` repeated, with `steps_per_epoch` set to one pass, when it has a known length.

    Keras makes a new iterator of the dataset every epoch unless it is told `steps_per_epoch` of
    an endless dataset (`EpochIterator` then keeps one). Making an iterator instantiates every
    mapped function; over keras-hub preprocessors that measured 0.4-0.7 s (a masked-LM's 0.62 s
    against 0.001 s for the raw texts), paid again each epoch: most of the time of short epochs.
    The shuffle still reshuffles every pass (`reshuffle_each_iteration`), and generators (the
    denoising noise) are re-entered each pass. Datasets of unknown length (length buckets,
    filtered batches) and a caller's own `steps_per_epoch` are left as they are.
    """
    if epochs <= 1 or fit_kwargs.get("steps_per_epoch") is not None:
        return batches
    length = known_length(batches)
    if length is None:
        return batches
    fit_kwargs["steps_per_epoch"] = length
    return batches.repeat()


def known_length(batches) -> int | None:
    """The number of batches of a `tf.data.Dataset` when tf.data knows it, else None (infinite,
    unknown after a `filter`, or not a dataset)."""
    if not hasattr(batches, "cardinality"):
        return None
    cardinality = int(batches.cardinality())
    return cardinality if cardinality > 0 else None

