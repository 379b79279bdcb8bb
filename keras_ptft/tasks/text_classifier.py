"""Text classification: raw strings in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from keras_ptft.data.bucketing import (
    boundaries_for,
    bucketed_batches,
    check_bucketing,
    example_lengths,
    length_sorted_batches,
    preprocessed_examples,
)
from keras_ptft.tasks.base import BucketingOption, Task
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.validation import check_labels, check_num_classes, check_text_dataset, check_text_pairs, check_texts

_LABEL_CHECK = "keras_ptft label check: label outside [0, num_classes)"


@keras.saving.register_keras_serializable(package="keras_ptft")
class SparseMacroF1(keras.metrics.F1Score):
    """Macro-averaged F1 for integer labels and probability outputs (argmax decides the class).

    Keras' `F1Score` wants one-hot labels; this one takes the integer labels the classifier is
    trained on.
    """

    def __init__(self, num_classes: int, name: str = "macro_f1", **kwargs):
        kwargs.pop("average", None)
        kwargs.pop("threshold", None)
        super().__init__(average="macro", threshold=None, name=name, **kwargs)
        self.num_classes = num_classes

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = keras.ops.one_hot(keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,)), self.num_classes)
        return super().update_state(y_true, y_pred, sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}

DEFAULT_BATCH_SIZE = 32


class LengthBucketing(BucketingOption):
    """Length-bucketed batches with dynamic padding for a text task with one text per example.

    Mixed in before `Task`. With `bucketing` on (the default), `fit` / `evaluate` batch the
    examples by length bucket, each batch cut to its bucket's length (boundaries from the data's
    own length quantiles, `keras_ptft.data.bucket_boundaries`), and `predict` sorts the texts by
    length and hands the results back in the caller's order, so short texts cost what short texts
    cost. `bucketing=False` restores fixed padding to the preprocessor's `sequence_length`.

    Bucketed: lists / arrays of strings, text pairs (a tuple of two lists, bucketed on the pair's
    packed length) and finite `tf.data.Dataset`s of strings (with labels). Kept at fixed padding:
    datasets of text pairs, preprocessed feature dicts and tensors, and `predict` on a dataset
    (its order is the caller's). A batched dataset is rebatched to its first batch's size.
    Each call preprocesses its examples once and caches them in memory (one pass measures the
    lengths), so a dataset must be finite; an infinite one keeps fixed padding.

    Example:
    ```python
    classifier = kp.recipes.text_classifier(bert, 2, vocabulary=vocab)  # bucketing=True
    classifier.fit(["a fine film", "a dull film, long and slow and dull"], [1, 0])
    classifier.set_run_options(bucketing=False)  # fixed padding from now on
    ```
    """

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        if not self._bucketable(x):
            return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)
        if hasattr(x, "element_spec"):
            if y is not None or sample_weight is not None:
                raise ValueError("`y` and `sample_weight` must be None when `x` is a tf.data.Dataset.")
            batch_size = batch_size or _first_batch_size(x)
        # `preprocess_samples` (not the bare preprocessor) keeps the task's streaming label checks.
        examples = preprocessed_examples(x, self.preprocess_samples, y=y, sample_weight=sample_weight).cache()
        lengths = example_lengths(examples)
        boundaries = boundaries_for(self.bucketing, lengths, self.preprocessor.sequence_length)
        # Already preprocessed: `fit` hands these batches to `keras.Model.fit` as they are.
        return bucketed_batches(
            examples, batch_size or DEFAULT_BATCH_SIZE, boundaries, shuffle=shuffle, seed=self.seed, lengths=lengths
        )

    def prediction_batches(self, x, batch_size=None):
        if not self._bucketable(x) or hasattr(x, "element_spec"):
            return super().prediction_batches(x, batch_size)
        features = {key: keras.ops.convert_to_numpy(value) for key, value in self.preprocessor(x).items()}
        lengths = features["padding_mask"].astype(bool).sum(axis=1)
        boundaries = boundaries_for(self.bucketing, lengths, self.preprocessor.sequence_length)
        return length_sorted_batches(features, batch_size or DEFAULT_BATCH_SIZE, boundaries)

    def _bucketable(self, x) -> bool:
        """Bucketing is on and `x` is texts (one per example) or a finite dataset of them."""
        if not self.bucketing or getattr(self, "preprocessor", None) is None:
            return False
        if hasattr(x, "element_spec"):
            import tensorflow as tf

            spec = x.element_spec
            text_spec = spec[0] if isinstance(spec, tuple) else spec
            return (
                isinstance(text_spec, tf.TensorSpec) and text_spec.dtype == tf.string
                and int(x.cardinality()) != int(tf.data.INFINITE_CARDINALITY)
            )
        # `normalize_texts` made a list, or a tuple of two lists for text pairs (bucketed on the
        # pair's packed length, `[CLS] a [SEP] b [SEP]`).
        return isinstance(x, (list, tuple))


def _first_batch_size(dataset) -> int:
    """The batch size of a batched dataset of strings (its first batch's), else the default."""
    spec = dataset.element_spec
    if (spec[0] if isinstance(spec, tuple) else spec).shape.rank == 0:
        return DEFAULT_BATCH_SIZE
    first = next(iter(dataset.take(1)), None)
    if first is None:
        return DEFAULT_BATCH_SIZE
    return int((first[0] if isinstance(first, tuple) else first).shape[0])


@keras.saving.register_keras_serializable(package="keras_ptft")
class TextClassifier(LengthBucketing, Task):
    """A backbone's pooled output, dropout and a softmax layer; preprocessing attached.

    `fit`, `evaluate` and `predict` take raw strings (or pairs of strings as a tuple of two
    lists) and integer labels; calling the model directly takes the preprocessor's token dict.
    Build it with `keras_ptft.recipes.text_classifier`, which also compiles it.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with a `pooled_output`).
        num_classes: int. Number of classes, at least 2.
        preprocessor: `keras_ptft.data.BertPreprocessor` turning strings into the backbone inputs.
        dropout: float. Dropout rate before the classification layer.
        label_names: list of str or None. Human-readable class names, kept for export.
        pooling: str. `"cls"` feeds the backbone's `pooled_output` (BERT's [CLS] pooler) to the
            head; `"mean"` averages `sequence_output` over the real (non-padding) tokens, for
            checkpoints whose pooler was never trained (e.g. sentence-transformers' MiniLM).
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model
            (`keras_ptft.training.resumable_callbacks`). Not saved with the model.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets validation
            data, else `"loss"`.
        seed: int or None. Seed of the shuffling; None follows `keras.utils.set_random_seed`.
        bucketing: bool, int or list of int. Length-bucketed batches with dynamic padding
            (`LengthBucketing`): True (4 buckets from the data's length quantiles), a number of
            buckets, explicit bucket lengths, or False for fixed padding to `sequence_length`.
            Text pairs are bucketed on their packed length. Not saved with the model.

    Example:
    ```python
    classifier = TextClassifier(bert, num_classes=2, preprocessor=kp.data.BertPreprocessor(vocab))
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        preprocessor: keras.layers.Layer | None = None,
        dropout: float = 0.1,
        label_names: Sequence[str] | None = None,
        pooling: str = "cls",
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        seed: int | None = None,
        bucketing: bool | int | Sequence[int] = True,
        **kwargs,
    ):
        check_num_classes(num_classes)
        bucketing = check_bucketing(bucketing)
        check_pooling(pooling)
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(
                f"`label_names` must have `num_classes`={num_classes} entries, received {len(label_names)}."
            )
        # === Config === (set first: `Task.__init__` compiles, and `compile` reads them)
        self.num_classes = num_classes
        self.dropout = dropout
        self.label_names = list(label_names) if label_names is not None else None
        self.pooling = pooling
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        # Softmax runs in float32 even under mixed precision, for stable probabilities.
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation="softmax",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32",
            name="probabilities",
        )
        # === Functional Model ===
        if pooling == "mean":
            # Keras' masked global average skips padding, as sentence-transformers' mean pooling does.
            self.mean_pooling = keras.layers.GlobalAveragePooling1D(dtype="float32", name="mean_pooling")
        inputs = backbone.input
        outputs = self.classify(backbone(inputs), inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Training run === (not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)

    def classify(self, backbone_outputs: dict, padding_mask, training=None):
        """The head on the backbone's outputs: pooling, dropout and softmax. The model's own graph
        is built with it, and so is distillation's training model (which reads the backbone's
        hidden states on the same pass)."""
        if self.pooling == "mean":
            pooled = self.mean_pooling(backbone_outputs["sequence_output"],
                                       mask=keras.ops.cast(padding_mask, "bool"))
        else:
            pooled = backbone_outputs["pooled_output"]
        return self.output_dense(self.output_dropout(pooled, training=training))

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults: AdamW 5e-5 with warm-up then linear decay, gradient
        clipping at norm 1, cross-entropy, accuracy (and macro-F1 for more than two classes)."""
        if optimizer == "auto":
            optimizer = make_adamw(WarmupDecay(5e-5, warmup_ratio=0.1), clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy()
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            if self.num_classes > 2:
                metrics.append(SparseMacroF1(self.num_classes))
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    #: A run option (not in `get_config`): None, or a callable `(x, y) -> targets` that makes the
    #: targets of `fit` / `evaluate` from the checked inputs, e.g. a teacher's soft labels
    #: (`kp.recipes.distill`), so `fit` can take unlabeled texts. The compiled loss must read them.
    target_source = None

    def training_model(self) -> keras.Model:
        """The target source's training model when it has one (hidden-state distillation), else
        the classifier itself."""
        model = getattr(self.target_source, "training_model", None)
        if model is None:
            return self
        if self.checkpoint_dir is not None:
            # Keras' checkpoint callbacks save the model being trained: here the training model,
            # teacher and projections included, not this classifier.
            raise ValueError("`checkpoint_dir` cannot be used with hidden-state distillation; save the "
                             "student after `fit` instead.")
        return model

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        x = normalize_texts(x)
        if with_targets and self.target_source is not None:
            return x, self.target_source(x, y), sample_weight
        return x, check_labels(y, self.num_classes, "y"), sample_weight

    def fit(self, *args, **kwargs):
        try:
            return super().fit(*args, **kwargs)
        except Exception as error:  # the tf.data label check surfaces as a backend error
            if _LABEL_CHECK in str(error):
                raise ValueError(
                    f"The training labels must be integers in [0, num_classes={self.num_classes}); "
                    "the dataset holds one outside that range."
                ) from None
            raise

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if isinstance(y, tf.Tensor) and self.target_source is None:
            # Labels inside a tf.data pipeline can only be checked as they stream by; `fit` turns
            # a failed check into a ValueError.
            labels = tf.cast(y, "int64")
            checks = [
                tf.debugging.assert_non_negative(labels, message=_LABEL_CHECK),
                tf.debugging.assert_less(labels, tf.constant(self.num_classes, "int64"), message=_LABEL_CHECK),
            ]
            with tf.control_dependencies(checks):
                y = tf.identity(y)
        return super().preprocess_samples(x, y, sample_weight)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names})
        if self.pooling != "cls":  # only when set, so configs saved before `pooling` existed stay equal
            config["pooling"] = self.pooling
        return config


def normalize_texts(x):
    """Raw-string inputs in the form the text tasks take: a list for one text per example, a tuple
    of two lists for text pairs; datasets, tensors and feature dicts pass unchanged. Empty lists
    pass too (`fit` refuses them, `predict` returns no rows)."""
    if isinstance(x, tuple) and len(x) == 2 and all(isinstance(part, (list, tuple, np.ndarray)) for part in x):
        return check_text_pairs(x, "x", allow_empty=True)
    if hasattr(x, "element_spec"):
        check_text_dataset(x)
        return x
    if isinstance(x, dict) or (hasattr(x, "shape") and not isinstance(x, np.ndarray)):
        return x  # preprocessed features or a tensor: checked as they stream by
    return check_texts(x, "x", allow_empty=True)


def check_pooling(pooling) -> None:
    if pooling not in ("cls", "mean"):
        raise ValueError(f'`pooling` must be "cls" or "mean", received pooling={pooling!r}.')
