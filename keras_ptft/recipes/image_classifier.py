"""Image classification: uint8 images in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.models.presets import load_backbone
from keras_ptft.tasks.image_classifier import ImageClassifier
from keras_ptft.training.optimization import make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.validation import check_num_classes


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
    random_flip: bool = False,
    crop_padding: int | None = 0,
    rand_augment: bool = False,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    **compile_kwargs,
) -> ImageClassifier:
    """A compiled image classifier, ready for `fit()` on `(uint8 images, integer labels)`.

    The same machinery as `text_classifier`: AdamW (no decay on LayerNorm and biases), linear
    warm-up over the first 10% of steps then linear decay to 0 (its length taken from the first
    `fit()` unless `total_steps` is given), gradient clipping at global norm 1. The numbers follow
    ViT/MAE fine-tuning instead of BERT's: learning rate 1e-3 (a tiny ViT learns little at BERT's
    5e-5), weight decay 0.05, label smoothing 0.1. All augmentation is opt-in (flips, pad-and-crop,
    RandAugment, MixUp, CutMix): a flip is wrong for digits and text, and augmentation pays off only
    over long runs. Measured (benchmarks/bench_image_defaults.py, 2-layer ViT, 2 epochs): flips +
    1/8 pad-and-crop, the former default, gave MNIST 0.339 and CIFAR-10 0.226 test accuracy; without
    them 0.639 and 0.262.

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
        random_flip: bool. Random horizontal flips during training (off by default: a flip is wrong
            for digits, text and other handed images).
        crop_padding: int or None. Pad-and-random-crop margin (0, the default, for none; None for 1/8
            of the image height).
        rand_augment: bool. RandAugment during training.
        mixup_alpha: float. MixUp during training when > 0.
        cutmix_alpha: float. CutMix during training when > 0.
        seed: int or None. Seed of the augmentation and shuffling.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model; `"val_loss"` with validation data, else
            `"loss"`.
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
    classifier.set_run_options(checkpoint_dir, monitor)
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
