"""Text regression: raw strings in, one real number out (e.g. STS-B similarity, star ratings)."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.recipes import techniques
from keras_ptft.recipes.techniques import apply_techniques
from keras_ptft.recipes.text_classifier import resolve_backbone
from keras_ptft.tasks.text_regressor import TextRegressor
from keras_ptft.training.optimization import resolve_learning_rate


def text_regressor(
    backbone_or_path: keras.Model | str | os.PathLike,
    *,
    vocabulary: Sequence[str] | str | None = None,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    learning_rate: float | str = "auto",
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
    dropout: float = 0.1,
    lowercase: bool = True,
    optimizer: str | keras.optimizers.Optimizer = "adamw",
    schedule: str = "linear",
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
    seed: int | None = None,
    bucketing: bool | int | Sequence[int] = True,
    distribution=None,
    verbose: bool = True,
    **compile_kwargs,
) -> TextRegressor:
    """A compiled text regressor (mean squared error), ready for `fit()` on `(text, number)` data.

    Takes the same arguments as `keras_ptft.recipes.text_classifier` (optimizer, schedule,
    regularization, clipping, accumulation, EMA, precision, layer-wise decay, freezing, LoRA),
    minus the classification ones, plus `bucketing` (length-bucketed batches, as there) and
    `distribution` (passed to the task);
    `learning_rate="auto"` follows the same rule by width.

    Example:
    ```python
    regressor = kp.recipes.text_regressor("saved_models/my_bert")
    regressor.fit(["a fine film", "a dull film"], [4.5, 1.0], epochs=1)
    ```
    """
    check_bucketing(bucketing)  # refused before any model is built
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase)
    learning_rate = resolve_learning_rate(learning_rate, backbone)
    if precision is not None:
        backbone = techniques.with_dtype_policy(backbone, precision)
    regressor = TextRegressor(backbone, preprocessor=preprocessor, dropout=dropout, compile=False,
                              distribution=distribution)
    apply_techniques(
        regressor, regressor.backbone, compile_kwargs, optimizer=optimizer, learning_rate=learning_rate, schedule=schedule,
        warmup_ratio=warmup_ratio, total_steps=total_steps, weight_decay=weight_decay, clipnorm=clipnorm,
        clipvalue=clipvalue, gradient_accumulation_steps=gradient_accumulation_steps, use_ema=use_ema, l1=l1, l2=l2,
        layerwise_lr_decay=layerwise_lr_decay, freeze_backbone=freeze_backbone, freeze_layers=freeze_layers,
        lora_rank=lora_rank, verbose=verbose,
    )
    regressor.compile(**compile_kwargs)
    regressor.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)  # after the techniques, as in text_classifier
    return regressor
