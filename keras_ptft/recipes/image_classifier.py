"""Image classification: uint8 images in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.data.images import image_augmenter
from keras_ptft.models.presets import load_backbone
from keras_ptft.models.vit import check_images
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay


@keras.saving.register_keras_serializable(package="keras_ptft")
class ImageClassifier(keras_hub.models.Task):
    """A ViT's pooled output, dropout and a softmax layer; augmentation during `fit` only.

    `fit`, `evaluate` and `predict` take uint8 images `(batch, height, width, channels)` and
    integer labels (or a `tf.data.Dataset` of such batches). Pixels are scaled by 1/255 inside the
    model. `fit` turns the labels one-hot (MixUp/CutMix mix them) and augments each training batch
    with Keras' preprocessing layers inside `tf.data`; `evaluate` and `predict` never augment.
    Build it with `keras_ptft.recipes.image_classifier`, which also compiles it.

    Args:
        backbone: a `keras_ptft.models.ViT`.
        num_classes: int. Number of classes, at least 2.
        dropout: float. Dropout rate before the classification layer.
        label_names: list of str or None. Names of the classes, kept for export.
        random_flip: bool. Random horizontal flips.
        crop_padding: int. Pad by this many pixels, then randomly crop back; 0 for none.
        rand_augment: bool. RandAugment (2 ops, magnitude 0.5).
        mixup_alpha: float. MixUp's Beta parameter; 0 for none.
        cutmix_alpha: float. CutMix's Beta parameter; 0 for none. With both, each batch gets one.
        label_smoothing: float. Label smoothing of the cross-entropy.
        seed: int or None. Seed of the augmentation and shuffling.

    Example:
    ```python
    classifier = ImageClassifier(kp.models.ViT.from_size("tiny"), num_classes=10)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        num_classes: int,
        dropout: float = 0.0,
        label_names: Sequence[str] | None = None,
        random_flip: bool = True,
        crop_padding: int = 0,
        rand_augment: bool = False,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        label_smoothing: float = 0.1,
        seed: int | None = None,
        **kwargs,
    ):
        check_num_classes(num_classes)
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(f"`label_names` must have `num_classes`={num_classes} entries, received {len(label_names)}.")
        # === Config === (set first: `Task.__init__` compiles, and `compile` reads them)
        self.num_classes = int(num_classes)
        self.dropout = dropout
        self.label_names = list(label_names) if label_names is not None else None
        self.random_flip = random_flip
        self.crop_padding = int(crop_padding)
        self.rand_augment = rand_augment
        self.mixup_alpha = float(mixup_alpha)
        self.cutmix_alpha = float(cutmix_alpha)
        self.label_smoothing = float(label_smoothing)
        self.seed = seed
        self.image_shape = tuple(backbone.image_shape)
        # === Layers ===
        self.backbone = backbone
        self.rescaling = keras.layers.Rescaling(1.0 / 255, name="rescaling")
        self.output_dropout = keras.layers.Dropout(dropout, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes, activation="softmax", kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype="float32", name="probabilities",
        )
        # === Functional Model ===
        # The graph takes float pixels in [0, 255]: augmentation produces floats, and `predict`
        # casts the uint8 images it checks.
        images = keras.Input(shape=self.image_shape, name="images")
        pooled = backbone(self.rescaling(images))["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=images, outputs=outputs, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults: AdamW 1e-3 with warm-up then linear decay, clipping
        at norm 1, label-smoothed cross-entropy, top-1 (and, above 5 classes, top-5) accuracy."""
        if optimizer == "auto":
            optimizer = make_adamw(WarmupDecay(1e-3, warmup_ratio=0.1), weight_decay=0.05, clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)
        if metrics == "auto":
            metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
            if self.num_classes > 5:
                metrics.append(keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy"))
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, validation_data=None, **kwargs):
        augment = image_augmenter(
            self.image_shape, self.num_classes, random_flip=self.random_flip, crop_padding=self.crop_padding,
            rand_augment=self.rand_augment, mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha,
            seed=self.seed,
        )
        dataset = self._dataset(x, y, batch_size, shuffle=True).map(augment)
        if validation_data is not None:
            validation_data = self._dataset(*_split(validation_data), batch_size, shuffle=False)
        resolve_schedule(self, dataset, epochs, kwargs.get("steps_per_epoch"))
        # `_dataset` already shuffled the examples; Keras cannot shuffle a Dataset (and warns).
        kwargs["shuffle"] = False
        return super().fit(dataset, epochs=epochs, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        if not _is_prepared(x):  # `fit` validates on batches `_dataset` already prepared
            x = self._dataset(x, y, batch_size, shuffle=False)
        return super().evaluate(x, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        check_images(x, self.image_shape, "x")
        if hasattr(x, "element_spec"):
            import tensorflow as tf

            x = x.map(lambda images, *rest: tf.cast(images, "float32"))
        else:
            x = np.asarray(x, "float32")
        return super().predict(x, batch_size=batch_size, **kwargs)

    def _dataset(self, x, y, batch_size, shuffle: bool):
        """A batched `tf.data.Dataset` of (float32 images, one-hot float32 labels)."""
        import tensorflow as tf

        check_images(x, self.image_shape, "x")
        if hasattr(x, "element_spec"):
            if y is not None:
                raise ValueError("`y` must be None when `x` is a tf.data.Dataset of (images, labels) batches.")
            dataset = x
        else:
            check_labels(y, self.num_classes, len(x))
            dataset = tf.data.Dataset.from_tensor_slices((np.asarray(x), np.asarray(y).astype("int32")))
            if shuffle:
                dataset = dataset.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size or 32)
        num_classes = self.num_classes
        dataset = dataset.map(
            lambda images, labels: (tf.cast(images, "float32"), tf.one_hot(tf.cast(labels, "int32"), num_classes))
        ).prefetch(tf.data.AUTOTUNE)
        return dataset

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names,
            "random_flip": self.random_flip, "crop_padding": self.crop_padding, "rand_augment": self.rand_augment,
            "mixup_alpha": self.mixup_alpha, "cutmix_alpha": self.cutmix_alpha,
            "label_smoothing": self.label_smoothing, "seed": self.seed,
        })
        return config


def image_classifier(
    backbone_or_path: keras.Model | str | os.PathLike,
    num_classes: int,
    *,
    label_names: Sequence[str] | None = None,
    learning_rate: float = 1e-3,
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.05,
    clipnorm: float | None = 1.0,
    dropout: float = 0.0,
    label_smoothing: float = 0.1,
    random_flip: bool = True,
    crop_padding: int | None = None,
    rand_augment: bool = False,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    seed: int | None = None,
    **compile_kwargs,
) -> ImageClassifier:
    """A compiled image classifier, ready for `fit()` on `(uint8 images, integer labels)`.

    The same machinery as `text_classifier`: AdamW (no decay on LayerNorm and biases), linear
    warm-up over the first 10% of steps then linear decay to 0 (its length taken from the first
    `fit()` unless `total_steps` is given), gradient clipping at global norm 1. The numbers follow
    ViT/MAE fine-tuning instead of BERT's: learning rate 1e-3 (a tiny ViT learns little at BERT's
    5e-5), weight decay 0.05, label smoothing 0.1. Augmentation defaults to flips and a 1/8-side
    pad-and-crop; RandAugment, MixUp and CutMix are opt-in, as they pay off only over long runs.

    Args:
        backbone_or_path: a `keras_ptft.models.ViT`, or the folder of one saved with
            `save_to_preset` (e.g. by `MaskedImageModeling`).
        num_classes: int. Number of classes, at least 2.
        label_names: list of str or None. Names of the classes.
        learning_rate: float. Peak learning rate.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        dropout: float. Dropout before the classification layer.
        label_smoothing: float. Label smoothing of the cross-entropy.
        random_flip: bool. Random horizontal flips during training.
        crop_padding: int or None. Pad-and-random-crop margin; None for 1/8 of the image height.
        rand_augment: bool. RandAugment during training.
        mixup_alpha: float. MixUp during training when > 0.
        cutmix_alpha: float. CutMix during training when > 0.
        seed: int or None. Seed of the augmentation and shuffling.
        **compile_kwargs: passed to `compile()`, overriding any default (e.g. `optimizer=`).

    Example:
    ```python
    data = kp.data.generate_shapes(256)
    classifier = kp.recipes.image_classifier(kp.models.ViT.from_size("tiny"), num_classes=4)
    classifier.fit(data.images, data.labels, epochs=1)
    classifier.predict(data.images[:2])
    ```
    """
    check_num_classes(num_classes)
    backbone = resolve_backbone(backbone_or_path)
    if crop_padding is None:
        crop_padding = backbone.image_shape[0] // 8
    classifier = ImageClassifier(
        backbone, num_classes, dropout=dropout, label_names=label_names, random_flip=random_flip,
        crop_padding=crop_padding, rand_augment=rand_augment, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
        label_smoothing=label_smoothing, seed=seed, compile=False,
    )
    if "optimizer" not in compile_kwargs:
        schedule = WarmupDecay(learning_rate, total_steps=total_steps, warmup_ratio=warmup_ratio)
        compile_kwargs["optimizer"] = make_adamw(schedule, weight_decay=weight_decay, clipnorm=clipnorm)
    classifier.compile(**compile_kwargs)
    return classifier


def resolve_backbone(backbone_or_path) -> keras.Model:
    """A backbone object, or the one saved in a folder."""
    if isinstance(backbone_or_path, (str, os.PathLike)):
        backbone = load_backbone(backbone_or_path)
    elif isinstance(backbone_or_path, keras.Model):
        backbone = backbone_or_path
    else:
        raise ValueError(
            "`backbone_or_path` must be a backbone model or the path of a saved backbone, "
            f"received {type(backbone_or_path).__name__}."
        )
    if not hasattr(backbone, "image_shape") or not hasattr(backbone, "patch_size"):
        raise ValueError(f"`backbone_or_path` must be an image backbone (a ViT), received {type(backbone).__name__}.")
    return backbone


def resolve_schedule(model: keras.Model, dataset, epochs: int, steps_per_epoch: int | None) -> None:
    """Sets the length of a warm-up/decay schedule left open, before the first step is traced."""
    schedule = getattr(getattr(model, "optimizer", None), "_learning_rate", None)
    if not isinstance(schedule, WarmupDecay) or schedule.total_steps is not None:
        return
    if steps_per_epoch is None:
        cardinality = int(dataset.cardinality())
        steps_per_epoch = cardinality if cardinality > 0 else None
    if steps_per_epoch:
        schedule.resolve(int(epochs * steps_per_epoch))
        model.train_function = None


def check_num_classes(num_classes) -> None:
    if not isinstance(num_classes, (int, np.integer)) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"`num_classes` must be an integer >= 2, received num_classes={num_classes!r}.")


def check_labels(y, num_classes: int, count: int) -> None:
    if y is None:
        raise ValueError("`y` must hold one integer label per image, received None.")
    labels = np.asarray(y)
    if labels.shape != (count,):
        raise ValueError(f"`y` must have shape ({count},), one label per image, received {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"`y` must hold integer class labels, received dtype {labels.dtype}.")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"`y` must hold labels in [0, num_classes={num_classes}), received labels from {labels.min()} to "
            f"{labels.max()}."
        )


def _split(validation_data):
    if isinstance(validation_data, tuple) and len(validation_data) == 2:
        return validation_data
    if hasattr(validation_data, "element_spec"):
        return validation_data, None
    raise ValueError("`validation_data` must be a tuple (images, labels) or a tf.data.Dataset.")


def _is_prepared(x) -> bool:
    """True for a dataset of (float32 images, one-hot labels) batches, as `_dataset` makes."""
    spec = getattr(x, "element_spec", None)
    return (isinstance(spec, tuple) and len(spec) == 2 and spec[0].dtype.name == "float32"
            and spec[1].shape.rank == 2)
