"""Image classification: uint8 images in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from keras_ptft.data.images import image_augmenter
from keras_ptft.tasks.base import Task
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.validation import check_images, check_labels, check_num_classes


@keras.saving.register_keras_serializable(package="keras_ptft")
class ImageClassifier(Task):
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
        checkpoint_dir: str or None. Makes `fit` resumable there (see `TextClassifier`). Not saved
            with the model.
        monitor: str or None. Metric of the best model.

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
        random_flip: bool = False,
        crop_padding: int = 0,
        rand_augment: bool = False,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
        label_smoothing: float = 0.1,
        seed: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
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
        # Keras' default Glorot-uniform head, not BERT's truncated normal 0.02: a backbone trained from
        # scratch learns only through the head's weights, and on a 2-layer ViT (MNIST, 1 epoch, same
        # seed and optimizer) the head's initial scale decided the accuracy: zeros 0.32, std 0.02 0.40,
        # 0.05 0.49, 0.1 0.68, Glorot (std 0.17 at width 64) 0.71 (benchmarks/bench_image_defaults.py).
        self.output_dense = keras.layers.Dense(
            num_classes, activation="softmax", kernel_initializer="glorot_uniform", dtype="float32",
            name="probabilities",
        )
        # === Functional Model ===
        # The graph takes float pixels in [0, 255]: augmentation produces floats, and `predict`
        # casts the uint8 images it checks.
        images = keras.Input(shape=self.image_shape, name="images")
        pooled = backbone(self.rescaling(images))["pooled_output"]
        outputs = self.output_dense(self.output_dropout(pooled))
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        # === Training run === (not in `get_config`; `seed` is, as it shapes the augmentation)
        self.set_run_options(checkpoint_dir, monitor)

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

    #: A run option (not in `get_config`), as `TextClassifier.target_source`: None, or a callable
    #: `(images, labels or None) -> targets` (a teacher's soft labels, `kp.recipes.distill`), so
    #: `fit` can take unlabeled images. The compiled loss must read them.
    target_source = None

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        check_images(x, self.image_shape, "x", allow_empty=True)
        if with_targets and not hasattr(x, "element_spec"):
            if self.target_source is not None:
                y = self.target_source(x, y)
            elif y is None:
                raise ValueError("`y` must hold one integer label per image, received None.")
            else:
                y = check_labels(y, self.num_classes, "y")
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported by `ImageClassifier`; MixUp/CutMix mix whole examples.")
        return x, y, sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        """Batches of (float32 images, one-hot labels) — or float32 images alone for `predict` —,
        augmented for `fit`."""
        import tensorflow as tf

        if hasattr(x, "element_spec"):
            if y is not None:
                raise ValueError("`y` must be None when `x` is a tf.data.Dataset of (images, labels) batches.")
            dataset = x
        else:
            dataset = tf.data.Dataset.from_tensor_slices(np.asarray(x) if y is None else (np.asarray(x), y))
            if shuffle:
                dataset = dataset.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size or 32)
        num_classes = self.num_classes
        if isinstance(dataset.element_spec, tuple):
            # A target source's rows (teacher probabilities + one-hot label) are already vectors.
            label_shape = dataset.element_spec[1].shape
            soft = label_shape.rank == 2 and label_shape[-1] == 2 * num_classes
            dataset = dataset.map(lambda images, labels, *rest: (
                tf.cast(images, "float32"),
                tf.cast(labels, "float32") if soft else tf.one_hot(tf.cast(labels, "int32"), num_classes)))
            if augment:
                dataset = dataset.map(image_augmenter(
                    self.image_shape, self.num_classes, random_flip=self.random_flip, crop_padding=self.crop_padding,
                    rand_augment=self.rand_augment, mixup_alpha=self.mixup_alpha, cutmix_alpha=self.cutmix_alpha,
                    seed=self.seed,
                ))
        else:
            dataset = dataset.map(lambda images: tf.cast(images, "float32"))
        return dataset.prefetch(tf.data.AUTOTUNE)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes, "dropout": self.dropout, "label_names": self.label_names,
            "random_flip": self.random_flip, "crop_padding": self.crop_padding, "rand_augment": self.rand_augment,
            "mixup_alpha": self.mixup_alpha, "cutmix_alpha": self.cutmix_alpha,
            "label_smoothing": self.label_smoothing, "seed": self.seed,
        })
        return config
