"""Image classification: uint8 images in, class probabilities out."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.convert.resolve import resolve_checkpoint
from keras_ptft.recipes import techniques
from keras_ptft.recipes.techniques import apply_techniques
from keras_ptft.tasks.image_classifier import ImageClassifier
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
    precision: str | None = None,
    freeze_backbone: bool = False,
    freeze_layers: int = 0,
    lora_rank: int | None = None,
    seed: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    distribution=None,
    verbose: bool = True,
    **compile_kwargs,
) -> ImageClassifier:
    """A compiled image classifier, ready for `fit()` on `(uint8 images, integer labels)`.

    The same machinery as `text_classifier`: AdamW (no decay on LayerNorm and biases), linear
    warm-up over the first 10% of steps then linear decay to 0 (its length taken from the first
    `fit()` unless `total_steps` is given), gradient clipping at global norm 1. The numbers follow
    ViT/MAE fine-tuning instead of BERT's: learning rate 1e-3 (a tiny ViT learns little at BERT's
    5e-5), weight decay 0.05, label smoothing 0.1. All augmentation is opt-in (flips, pad-and-crop,
    RandAugment, MixUp, CutMix): a flip is wrong for digits and text, and augmentation pays off only
    over long runs. The head starts at Keras' Glorot scale, not BERT's 0.02: a backbone trained from
    scratch learns through the head's weights. Measured (benchmarks/bench_image_defaults.py, 2-layer
    ViT, 2 epochs): MNIST 0.816 and CIFAR-10 0.268 test accuracy, against 0.719 and 0.183 for a plain
    Keras head with Adam 1e-3 on the same ViT (flips + 1/8 pad-and-crop: 0.597 and 0.233).

    Args:
        backbone_or_path: a `keras_ptft.models.ViT`, or a checkpoint folder
            (`keras_ptft.convert.load_checkpoint`): one saved with `save_to_preset` (e.g. by
            `MaskedImageModeling`) or a Hugging Face ViT folder.
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
        precision: str or None. `"mixed_bfloat16"` for bfloat16 compute with float32 weights;
            None keeps the backbone's policy (as in `text_classifier`).
        freeze_backbone: bool. Train the head only.
        freeze_layers: int. Freeze the patch embedding, positions, class token and this many lowest
            encoder blocks.
        lora_rank: int or None. Train rank-`lora_rank` LoRA adapters (keras-hub `enable_lora`)
            and the head instead of the backbone.
        seed: int or None. Seed of the augmentation and shuffling.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model; `"val_loss"` with validation data, else
            `"loss"`.
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
        verbose: bool. Print the trainable-parameter count.
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
    backbone = resolve_backbone(backbone_or_path, precision)
    if crop_padding is None:
        crop_padding = backbone.image_shape[0] // 8
    classifier = ImageClassifier(
        backbone, num_classes, dropout=dropout, label_names=label_names, random_flip=random_flip,
        crop_padding=crop_padding, rand_augment=rand_augment, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha,
        label_smoothing=label_smoothing, seed=seed, compile=False, distribution=distribution,
    )
    # The task's backbone: under a distribution it is a copy placed on the devices.
    apply_techniques(
        classifier, classifier.backbone, compile_kwargs, learning_rate=learning_rate, warmup_ratio=warmup_ratio,
        total_steps=total_steps, weight_decay=weight_decay, clipnorm=clipnorm, freeze_backbone=freeze_backbone,
        freeze_layers=freeze_layers, lora_rank=lora_rank, verbose=verbose,
    )
    classifier.compile(**compile_kwargs)
    classifier.set_run_options(checkpoint_dir, monitor)  # after LoRA: a foreign checkpoint is refused now
    return classifier


def resolve_backbone(backbone_or_path, precision: str | None = None) -> keras.Model:
    """A ViT object, or the one in any checkpoint folder (saved here, or a Hugging Face ViT folder,
    `keras_ptft.convert.load_checkpoint`), under `precision` when given; shared with the
    segmentation recipe."""
    checkpoint = resolve_checkpoint(backbone_or_path, expected="an image backbone (a ViT)")
    if not hasattr(checkpoint.backbone, "image_shape") or not hasattr(checkpoint.backbone, "patch_size"):
        raise checkpoint.wrong_model("an image backbone (a ViT)")
    if precision is not None:
        return techniques.with_dtype_policy(checkpoint.backbone, precision)
    return checkpoint.backbone
