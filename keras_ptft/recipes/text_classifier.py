"""Text classification: raw strings in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.data.preprocessing import BertPreprocessor
from keras_ptft.recipes import techniques
from keras_ptft.models.presets import load_backbone, load_tokenizer
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training import schedules as schedules_lib
# add_checkpoint_callbacks is also imported from here by the other recipes.
from keras_ptft.training.checkpoints import add_checkpoint_callbacks, check_checkpoint_dir
from keras_ptft.training.shuffling import shuffle_in_memory_inputs
from keras_ptft.training.schedules import WarmupDecay


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


@keras.saving.register_keras_serializable(package="keras_ptft")
class TextClassifier(keras_hub.models.Task):
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
        **kwargs,
    ):
        _check_num_classes(num_classes)
        _check_pooling(pooling)
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
        inputs = backbone.input
        if pooling == "mean":
            # Keras' masked global average skips padding, as sentence-transformers' mean pooling does.
            self.mean_pooling = keras.layers.GlobalAveragePooling1D(dtype="float32", name="mean_pooling")
            sequence = backbone(inputs)["sequence_output"]
            pooled = self.mean_pooling(sequence, mask=keras.ops.cast(inputs["padding_mask"], "bool"))
        else:
            pooled = backbone(inputs)["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

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

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, **kwargs):
        x = _normalize_texts(x)
        _check_labels(y, self.num_classes)
        self._resolve_schedule(x, y, batch_size, epochs, kwargs.get("steps_per_epoch"))
        add_checkpoint_callbacks(self, kwargs)
        x, y, sample_weight, batch_size = shuffle_in_memory_inputs(
            x, y, kwargs.pop("sample_weight", None), batch_size, kwargs)
        try:
            return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, epochs=epochs, **kwargs)
        except Exception as error:  # the tf.data label check surfaces as a backend error
            if _LABEL_CHECK in str(error):
                raise ValueError(
                    f"The training labels must be integers in [0, num_classes={self.num_classes}); "
                    "the dataset holds one outside that range."
                ) from None
            raise

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        x = _normalize_texts(x)
        _check_labels(y, self.num_classes)
        return super().evaluate(x, y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        return super().predict(_normalize_texts(x), batch_size=batch_size, **kwargs)

    def preprocess_samples(self, x, y=None, sample_weight=None):
        import tensorflow as tf

        if isinstance(y, tf.Tensor):
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

    def _resolve_schedule(self, x, y, batch_size, epochs, steps_per_epoch):
        size_schedule(self, x, y, batch_size, epochs, steps_per_epoch)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names})
        if self.pooling != "cls":  # only when set, so configs saved before `pooling` existed stay equal
            config["pooling"] = self.pooling
        return config


def text_classifier(
    backbone_or_path: keras.Model | str | os.PathLike,
    num_classes: int,
    *,
    vocabulary: Sequence[str] | str | None = None,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    label_names: Sequence[str] | None = None,
    pooling: str = "cls",
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
    dropout: float = 0.1,
    lowercase: bool = True,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    schedule: str = "linear",
    loss: str = "cross_entropy",
    label_smoothing: float = 0.0,
    focal_gamma: float = 2.0,
    l1: float = 0.0,
    l2: float = 0.0,
    clipvalue: float | None = None,
    gradient_accumulation_steps: int | None = None,
    use_ema: bool = False,
    precision: str | None = None,
    layerwise_lr_decay: float | None = None,
    freeze_backbone: bool = False,
    freeze_layers: int = 0,
    lora_rank: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    verbose: bool = True,
    **compile_kwargs,
) -> TextClassifier:
    """A compiled text classifier, ready for `fit()` on `(text, label)` data.

    Defaults follow BERT fine-tuning practice: AdamW (weight decay 0.01, none on LayerNorm and
    biases), linear warm-up over the first 10% of steps then linear decay to 0, gradient clipping
    at global norm 1.0, dropout 0.1 before the softmax. The schedule's length is taken from the
    first `fit()` call (epochs x batches) unless `total_steps` is given.

    Args:
        backbone_or_path: a backbone object, or the folder of one saved with `save_to_preset`
            (e.g. by `MaskedLM`); the folder's tokenizer is used.
        num_classes: int. Number of classes, at least 2.
        vocabulary: list of str or str. Needed with a backbone object when no `preprocessor` is
            given.
        preprocessor: a `keras_ptft.data.BertPreprocessor`, instead of `vocabulary`.
        sequence_length: int or None. Token length texts are truncated/padded to; defaults to
            the backbone's `max_sequence_length`, capped at 128.
        label_names: list of str or None. Names of the classes.
        pooling: str. `"cls"` (the backbone's pooled [CLS] output) or `"mean"` (the mean of the
            token vectors over non-padding tokens; use it for sentence-transformers checkpoints
            such as all-MiniLM-L6-v2, whose pooler is untrained).
        learning_rate: float. Peak learning rate.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        dropout: float. Dropout before the classification layer.
        lowercase: bool. Used when building a preprocessor from `vocabulary`.
        optimizer: str or optimizer. `"sgd"`, `"momentum"`, `"adam"`, `"adamw"`, `"adagrad"`,
            `"adadelta"`, `"lion"`, or an optimizer object used as is.
        schedule: str. Decay after the warm-up: a `keras_ptft.schedules.WarmupDecay` decay
            (`"linear"`, `"cosine"`, `"polynomial"`, `"exponential"`, `"inverse_sqrt"`,
            `"constant"`) or `"one_cycle"`.
        loss: str. `"cross_entropy"`, `"focal"` or `"hinge"`.
        label_smoothing: float. Label smoothing of the cross-entropy and focal losses.
        focal_gamma: float. Focusing parameter of the focal loss.
        l1: float. L1 penalty on kernels and embeddings.
        l2: float. L2 penalty on kernels and embeddings.
        clipvalue: float or None. Clip each gradient element (instead of `clipnorm`).
        gradient_accumulation_steps: int or None. Batches whose gradients are averaged per update.
        use_ema: bool. Keep an exponential moving average of the weights (used after `fit`).
        precision: str or None. `"mixed_bfloat16"` for bfloat16 compute with float32 weights;
            None keeps the backbone's policy.
        layerwise_lr_decay: float or None. Each encoder block below the top learns this factor
            more slowly (e.g. 0.8).
        freeze_backbone: bool. Train the head only.
        freeze_layers: int. Freeze the embeddings and this many lowest encoder blocks.
        lora_rank: int or None. Train rank-`lora_rank` LoRA adapters (keras-hub `enable_lora`)
            and the head instead of the backbone.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model
            (`keras_ptft.training.resumable_callbacks`); run the same command again after a
            crash to continue.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets
            validation data, else `"loss"`.
        verbose: bool. Print the trainable-parameter count.
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    classifier = kp.recipes.text_classifier("saved_models/my_bert", num_classes=2)
    classifier.fit(["a fine film", "a dull film"], [1, 0], epochs=1)
    classifier.predict(["what a fine film"])
    ```
    """
    _check_num_classes(num_classes)
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase)
    if precision is not None:
        backbone = techniques.with_dtype_policy(backbone, precision)
    classifier = TextClassifier(
        backbone, num_classes, preprocessor=preprocessor, dropout=dropout, label_names=label_names,
        pooling=pooling, compile=False,
    )
    apply_techniques(
        classifier,
        backbone,
        compile_kwargs,
        optimizer=optimizer,
        learning_rate=learning_rate,
        schedule=schedule,
        warmup_ratio=warmup_ratio,
        total_steps=total_steps,
        weight_decay=weight_decay,
        clipnorm=clipnorm,
        clipvalue=clipvalue,
        gradient_accumulation_steps=gradient_accumulation_steps,
        use_ema=use_ema,
        l1=l1,
        l2=l2,
        layerwise_lr_decay=layerwise_lr_decay,
        freeze_backbone=freeze_backbone,
        freeze_layers=freeze_layers,
        lora_rank=lora_rank,
        verbose=verbose,
    )
    if "loss" not in compile_kwargs and (loss != "cross_entropy" or label_smoothing):
        compile_kwargs["loss"] = techniques.make_loss(loss, num_classes, label_smoothing, focal_gamma)
    elif loss not in techniques.CLASSIFICATION_LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; valid names: {list(techniques.CLASSIFICATION_LOSSES)}.")
    classifier.compile(**compile_kwargs)
    if checkpoint_dir is not None:
        check_checkpoint_dir(classifier, checkpoint_dir)  # refuse a foreign checkpoint now, not at fit
    classifier.checkpoint_dir, classifier.checkpoint_monitor = checkpoint_dir, monitor
    return classifier


def resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase):
    """The backbone (loaded when given a folder) and a matching preprocessor; shared by the
    text recipes."""
    strip_accents = None
    if isinstance(backbone_or_path, (str, os.PathLike)):
        backbone = load_backbone(backbone_or_path)
        tokenizer = load_tokenizer(backbone_or_path)
        if preprocessor is None and vocabulary is None:
            if tokenizer is None:
                raise FileNotFoundError(
                    f"{os.fspath(backbone_or_path)!r} holds a backbone but no tokenizer; pass "
                    "`vocabulary=` or `preprocessor=`."
                )
            vocabulary = tokenizer.get_vocabulary()
            lowercase, strip_accents = tokenizer.lowercase, tokenizer.strip_accents
    elif isinstance(backbone_or_path, keras.Model):
        backbone = backbone_or_path
    else:
        raise ValueError(
            "`backbone_or_path` must be a backbone model or the path of a saved backbone, "
            f"received {type(backbone_or_path).__name__}."
        )
    max_length = getattr(backbone, "max_sequence_length", None)
    if sequence_length is None:
        sequence_length = min(128, max_length or 128)
    elif max_length is not None and sequence_length > max_length:
        raise ValueError(
            f"`sequence_length`={sequence_length} is longer than the backbone's "
            f"max_sequence_length={max_length}."
        )
    if preprocessor is None:
        if vocabulary is None:
            raise ValueError("`recipe needs `vocabulary=` or `preprocessor=` with a backbone object.")
        preprocessor = BertPreprocessor(
            vocabulary, sequence_length=sequence_length, lowercase=lowercase, strip_accents=strip_accents
        )
    if preprocessor.vocabulary_size != backbone.vocabulary_size:
        raise ValueError(
            f"The preprocessor's vocabulary has {preprocessor.vocabulary_size} tokens but the "
            f"backbone's `vocabulary_size` is {backbone.vocabulary_size}; they must match."
        )
    return backbone, preprocessor


def apply_techniques(
    model: keras.Model,
    backbone: keras.Model,
    compile_kwargs: dict,
    *,
    optimizer,
    learning_rate: float,
    schedule: str,
    warmup_ratio: float,
    total_steps: int | None,
    weight_decay: float | None,
    clipnorm: float | None,
    clipvalue: float | None,
    gradient_accumulation_steps: int | None,
    use_ema: bool,
    l1: float,
    l2: float,
    layerwise_lr_decay: float | None,
    freeze_backbone: bool,
    freeze_layers: int,
    lora_rank: int | None,
    verbose: bool,
) -> None:
    """The shared part of every fine-tuning recipe: freezing / LoRA, regularization and the
    optimizer with its schedule, written into `compile_kwargs["optimizer"]`."""
    if lora_rank is not None:
        if freeze_backbone or freeze_layers:
            raise ValueError("`lora_rank` already freezes the backbone; drop `freeze_backbone`/`freeze_layers`.")
        techniques.enable_lora(backbone, lora_rank)
    else:
        techniques.freeze(backbone, freeze_backbone=freeze_backbone, freeze_layers=freeze_layers)
    techniques.add_weight_regularization(model, l1=l1, l2=l2)
    if "optimizer" not in compile_kwargs:
        if isinstance(optimizer, keras.optimizers.Optimizer):
            built = optimizer
        else:
            if schedule == "one_cycle":
                rate = schedules_lib.OneCycle(learning_rate, total_steps=total_steps)
            elif schedule in schedules_lib.DECAYS:
                rate = WarmupDecay(learning_rate, total_steps=total_steps, warmup_ratio=warmup_ratio, decay=schedule)
            else:
                raise ValueError(
                    f"Unknown schedule {schedule!r}; valid names: {list(schedules_lib.DECAYS) + ['one_cycle']}."
                )
            built = techniques.make_optimizer(
                optimizer,
                rate,
                weight_decay=weight_decay,
                clipnorm=None if clipvalue is not None else clipnorm,
                clipvalue=clipvalue,
                gradient_accumulation_steps=gradient_accumulation_steps,
                use_ema=use_ema,
            )
        if layerwise_lr_decay is not None:
            techniques.layerwise_decay(built, backbone, layerwise_lr_decay)
        compile_kwargs["optimizer"] = built
    trainable, total = techniques.count_params(model)
    model.trainable_parameters = trainable
    if verbose:
        print(f"Trainable parameters: {trainable:,} of {total:,} ({100 * trainable / max(total, 1):.2f}%)")


def size_schedule(model, x, y, batch_size, epochs, steps_per_epoch) -> None:
    """Sets the length of a warm-up/decay schedule whose length was left open, before the
    first training step is traced."""
    schedule = getattr(getattr(model, "optimizer", None), "_learning_rate", None)
    # Any schedule with an open length (`WarmupDecay`, `OneCycle`) is sized here.
    if not hasattr(schedule, "resolve") or getattr(schedule, "total_steps", 0) is not None:
        return
    if steps_per_epoch is None:
        steps_per_epoch = _count_batches(x, y, batch_size)
    if steps_per_epoch:
        schedule.resolve(int(epochs * steps_per_epoch))
        model.train_function = None


def _check_num_classes(num_classes) -> None:
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2, received num_classes={num_classes!r}.")


def _check_pooling(pooling) -> None:
    if pooling not in ("cls", "mean"):
        raise ValueError(f'`pooling` must be "cls" or "mean", received pooling={pooling!r}.')


def _check_labels(y, num_classes: int) -> None:
    if y is None or _is_tensor(y):
        return
    labels = np.asarray(y)
    if labels.size == 0:
        return
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.issubdtype(labels.dtype, np.floating) or not np.all(labels == np.round(labels)):
            raise ValueError(f"`y` must hold integer class labels, received dtype {labels.dtype}.")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise ValueError(
            f"`y` must hold labels in [0, num_classes={num_classes}), received labels from {low} to {high}."
        )


def _normalize_texts(x):
    """Checks raw-string inputs and gives them the form keras-hub's pipeline expects: a list for
    one text per example, a tuple of two lists for text pairs."""
    if isinstance(x, str):
        return [x]
    if isinstance(x, tuple) and len(x) == 2 and all(isinstance(part, (list, tuple, np.ndarray)) for part in x):
        return tuple(_normalize_texts(list(part)) for part in x)
    if isinstance(x, (list, tuple, np.ndarray)):
        x = list(x)
        _check_strings(x, "x")
    return x


def _check_strings(x, argument: str) -> None:
    for item in x:
        if not isinstance(item, (str, bytes, np.str_, np.bytes_)):
            raise ValueError(
                f"`{argument}` must be raw strings, received an element of type {type(item).__name__}: {item!r}."
            )


def _is_tensor(value) -> bool:
    return hasattr(value, "shape") and not isinstance(value, np.ndarray) and not isinstance(value, (list, tuple))


def _count_batches(x, y, batch_size) -> int | None:
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality > 0 else None
    if x is None:
        return None
    length = len(x[0]) if isinstance(x, tuple) else len(x)
    return int(np.ceil(length / (batch_size or 32)))
