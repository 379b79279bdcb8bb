"""Semantic segmentation: uint8 images in, per-pixel class probabilities out."""

from __future__ import annotations

import os

import keras
import numpy as np
from keras import ops

from keras_ptft.tasks.base import Task
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.validation import check_images, check_num_classes


@keras.saving.register_keras_serializable(package="keras_ptft")
class CrossEntropyDiceLoss(keras.losses.Loss):
    """Pixel-wise cross-entropy plus `dice_weight` x soft Dice loss, for integer masks and
    probability outputs.

    Soft Dice per class `k` over the whole batch: `1 - (2 sum(p_k y_k) + 1) / (sum(p_k) + sum(y_k)
    + 1)`, averaged over classes. Cross-entropy trains every pixel; Dice keeps small classes (a
    shape covering 5% of the image) from being drowned by the background.

    Args:
        num_classes: int. Number of classes, background included.
        dice_weight: float. Weight of the Dice term.
    """

    def __init__(self, num_classes: int, dice_weight: float = 1.0, name: str = "cross_entropy_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.dice_weight = dice_weight

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        y_pred = ops.cast(y_pred, "float32")
        cross_entropy = ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, y_pred))
        one_hot = ops.one_hot(y_true, self.num_classes)
        axes = tuple(range(len(y_pred.shape) - 1))
        intersection = ops.sum(y_pred * one_hot, axis=axes)
        total = ops.sum(y_pred, axis=axes) + ops.sum(one_hot, axis=axes)
        dice = 1.0 - ops.mean((2.0 * intersection + 1.0) / (total + 1.0))
        # One scalar for the batch (Dice is not a per-pixel sum); broadcast so reduction keeps it.
        return cross_entropy + self.dice_weight * dice

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="keras_ptft")
class MeanDice(keras.metrics.Metric):
    """Mean Dice coefficient `2 TP / (2 TP + FP + FN)` over the classes present, from a confusion
    matrix accumulated over the whole evaluation (argmax of the probabilities decides the class).

    Keras has `MeanIoU` but no Dice metric; this mirrors `MeanIoU`'s conventions (classes absent
    from both truth and prediction are left out of the mean).

    Args:
        num_classes: int. Number of classes.
    """

    def __init__(self, num_classes: int, name: str = "mean_dice", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.confusion = self.add_variable(shape=(num_classes, num_classes), initializer="zeros", name="confusion",
                                           dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        pred = ops.reshape(ops.argmax(y_pred, axis=-1), (-1,))
        index = true * self.num_classes + ops.cast(pred, "int32")
        counts = ops.bincount(index, minlength=self.num_classes**2)
        self.confusion.assign_add(ops.reshape(ops.cast(counts, "float32"), (self.num_classes, self.num_classes)))

    def result(self):
        true_positive = ops.diagonal(self.confusion)
        denominator = ops.sum(self.confusion, axis=0) + ops.sum(self.confusion, axis=1)
        present = ops.cast(denominator > 0, "float32")
        dice = 2.0 * true_positive / ops.maximum(denominator, 1.0)
        return ops.sum(dice * present) / ops.maximum(ops.sum(present), 1.0)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes)))

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="keras_ptft")
class ImageSegmenter(Task):
    """A per-pixel classifier on a ViT's patch features.

    The patch tokens (the class token dropped) are laid back on their grid, a linear layer maps
    each to class logits, and bilinear upsampling by the patch size brings them to the input
    resolution before the softmax. `fit`/`evaluate` take uint8 images and integer masks
    `(batch, height, width)`; `predict` returns `(batch, height, width, num_classes)`.
    Build it with `keras_ptft.recipes.image_segmenter`, which also compiles it.

    Args:
        backbone: a `keras_ptft.models.ViT`.
        num_classes: int. Number of classes, background included, at least 2.
        checkpoint_dir: str or None. Makes `fit` resumable there. Not saved with the model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.

    Example:
    ```python
    segmenter = ImageSegmenter(kp.models.ViT.from_size("tiny"), num_classes=5)
    ```
    """

    def __init__(self, backbone: keras.Model, num_classes: int, checkpoint_dir: str | os.PathLike | None = None,
                 monitor: str | None = None, seed: int | None = None, **kwargs):
        check_num_classes(num_classes)
        # === Config ===
        self.num_classes = int(num_classes)
        self.image_shape = tuple(backbone.image_shape)
        # === Layers ===
        self.backbone = backbone
        self.rescaling = keras.layers.Rescaling(1.0 / 255, name="rescaling")
        self.pixel_logits = keras.layers.Dense(num_classes, name="pixel_logits")
        self.upsample = keras.layers.UpSampling2D(backbone.patch_size, interpolation="bilinear", name="upsample")
        self.softmax = keras.layers.Softmax(dtype="float32", name="probabilities")
        # === Functional Model ===
        images = keras.Input(shape=self.image_shape, name="images")
        tokens = backbone(self.rescaling(images))["sequence_output"]
        if backbone.pooling == "token":
            tokens = tokens[:, 1:]
        grid = ops.reshape(tokens, (-1, *backbone.grid_shape, backbone.hidden_dim))
        outputs = self.softmax(self.upsample(self.pixel_logits(grid)))
        super().__init__(inputs=images, outputs=outputs, **kwargs)
        # === Training run === (not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor, seed)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with AdamW 1e-3 (warm-up then linear decay), cross-entropy + Dice, mean IoU and
        mean Dice."""
        if optimizer == "auto":
            optimizer = make_adamw(WarmupDecay(1e-3, warmup_ratio=0.1), weight_decay=0.05, clipnorm=1.0)
        if loss == "auto":
            loss = CrossEntropyDiceLoss(self.num_classes)
        if metrics == "auto":
            metrics = [keras.metrics.MeanIoU(self.num_classes, sparse_y_pred=False, name="mean_iou"),
                       MeanDice(self.num_classes)]
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        check_images(x, self.image_shape, "x", allow_empty=True)
        if with_targets and not hasattr(x, "element_spec"):
            check_masks(y, np.shape(x), self.num_classes)
        return x, y, sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        """Batches of (float32 images, int32 masks), or float32 images alone for `predict`. No
        augmentation: flips and crops would have to move the masks too."""
        import tensorflow as tf

        if hasattr(x, "element_spec"):
            dataset = x.map(lambda images, *rest: (tf.cast(images, "float32"), *rest))
        else:
            parts = np.asarray(x, "float32") if y is None else (np.asarray(x, "float32"), np.asarray(y).astype("int32"))
            dataset = tf.data.Dataset.from_tensor_slices(parts)
            if shuffle:
                dataset = dataset.shuffle(len(x), seed=self.seed, reshuffle_each_iteration=True)
            dataset = dataset.batch(batch_size or 32)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes}


def check_masks(masks, image_batch_shape, num_classes: int) -> None:
    if masks is None:
        raise ValueError("`y` must hold one integer mask per image, received None.")
    masks = np.asarray(masks)
    if masks.shape != tuple(image_batch_shape[:3]):
        raise ValueError(
            f"`y` masks must have shape {tuple(image_batch_shape[:3])} (the images' batch, height and width), "
            f"received {masks.shape}."
        )
    if not np.issubdtype(masks.dtype, np.integer):
        raise ValueError(f"`y` masks must hold integer class ids, received dtype {masks.dtype}.")
    if masks.size and (masks.min() < 0 or masks.max() >= num_classes):
        raise ValueError(f"`y` masks must hold class ids in [0, num_classes={num_classes}), received "
                         f"{masks.min()} to {masks.max()}.")
