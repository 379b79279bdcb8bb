"""Semantic segmentation: uint8 images in, per-pixel class probabilities out."""

from __future__ import annotations

import os

import keras

from keras_ptft.recipes.image_classifier import resolve_backbone
from keras_ptft.tasks.image_segmenter import CrossEntropyDiceLoss, ImageSegmenter, MeanDice, check_masks  # noqa: F401
from keras_ptft.recipes.techniques import apply_techniques
from keras_ptft.validation import check_num_classes


def image_segmenter(
    backbone_or_path: keras.Model | str | os.PathLike,
    num_classes: int,
    *,
    learning_rate: float = 1e-3,
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.05,
    clipnorm: float | None = 1.0,
    precision: str | None = None,
    freeze_backbone: bool = False,
    freeze_layers: int = 0,
    lora_rank: int | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    distribution=None,
    verbose: bool = True,
    **compile_kwargs,
) -> ImageSegmenter:
    """A compiled segmenter, ready for `fit()` on `(uint8 images, integer masks)`.

    Same optimizer and schedule as `image_classifier`; loss cross-entropy + Dice; metrics mean IoU
    and mean Dice. No augmentation: flips and crops would have to move the masks too.

    Args:
        backbone_or_path: a `keras_ptft.models.ViT`, or a checkpoint folder (saved here or a Hugging
            Face ViT folder, `keras_ptft.convert.load_checkpoint`).
        num_classes: int. Number of classes, background included, at least 2.
        learning_rate: float. Peak learning rate.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        precision: str or None. `"mixed_bfloat16"` for bfloat16 compute with float32 weights.
        freeze_backbone: bool. Train the head only.
        freeze_layers: int. Freeze the patch embedding and this many lowest encoder blocks.
        lora_rank: int or None. Train rank-`lora_rank` LoRA adapters and the head instead of the
            backbone.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task.
        verbose: bool. Print the trainable-parameter count.
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    data = kp.data.generate_shapes(256)
    segmenter = kp.recipes.image_segmenter(kp.models.ViT.from_size("tiny"), num_classes=5)
    segmenter.fit(data.images, data.masks, epochs=1)
    ```
    """
    check_num_classes(num_classes)
    segmenter = ImageSegmenter(resolve_backbone(backbone_or_path, precision), num_classes, compile=False,
                               distribution=distribution)
    apply_techniques(
        segmenter, segmenter.backbone, compile_kwargs, learning_rate=learning_rate, warmup_ratio=warmup_ratio,
        total_steps=total_steps, weight_decay=weight_decay, clipnorm=clipnorm, freeze_backbone=freeze_backbone,
        freeze_layers=freeze_layers, lora_rank=lora_rank, verbose=verbose,
    )
    segmenter.compile(**compile_kwargs)
    segmenter.set_run_options(checkpoint_dir, monitor, seed)
    return segmenter
