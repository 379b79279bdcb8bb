"""Text regression: raw strings in, one real number out (e.g. STS-B similarity, star ratings)."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.recipes import techniques
from keras_ptft.recipes.text_classifier import (
    _normalize_texts,
    add_checkpoint_callbacks,
    apply_techniques,
    resolve_backbone,
    size_schedule,
)
from keras_ptft.training.checkpoints import check_checkpoint_dir
from keras_ptft.training.shuffling import shuffle_in_memory_inputs
from keras_ptft.training.optimization import default_compile_kwargs


@keras.saving.register_keras_serializable(package="keras_ptft")
class TextRegressor(keras_hub.models.Task):
    """A backbone's pooled output, dropout and a linear unit; preprocessing attached.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with a `pooled_output`).
        preprocessor: `keras_ptft.data.BertPreprocessor`.
        dropout: float. Dropout rate before the output unit.

    Example:
    ```python
    regressor = TextRegressor(bert, preprocessor=kp.data.BertPreprocessor(vocab))
    ```
    """

    def __init__(self, backbone: keras.Model, preprocessor=None, dropout: float = 0.1, **kwargs):
        # === Config ===
        self.dropout = dropout
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            1, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02), dtype="float32", name="value"
        )
        # === Functional Model ===
        inputs = backbone.input
        outputs = self.output_dense(self.output_dropout(backbone(inputs)["pooled_output"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with AdamW 5e-5, mean squared error and mean absolute error."""
        if optimizer == "auto":
            optimizer = techniques.make_optimizer("adamw", 5e-5, clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.MeanSquaredError()
        if metrics == "auto":
            metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **{**default_compile_kwargs(), **kwargs})

    def fit(self, x=None, y=None, batch_size=None, epochs: int = 1, **kwargs):
        if isinstance(y, (list, tuple, np.ndarray)):
            y = np.asarray(y, "float32")
            if not np.all(np.isfinite(y)):
                raise ValueError("`y` must hold finite numbers for regression.")
        x = _normalize_texts(x)
        size_schedule(self, x, y, batch_size, epochs, kwargs.get("steps_per_epoch"))
        add_checkpoint_callbacks(self, kwargs)
        x, y, sample_weight, batch_size = shuffle_in_memory_inputs(
            x, y, kwargs.pop("sample_weight", None), batch_size, kwargs)
        return super().fit(x, y, batch_size=batch_size, sample_weight=sample_weight, epochs=epochs, **kwargs)

    def evaluate(self, x=None, y=None, batch_size=None, **kwargs):
        return super().evaluate(_normalize_texts(x), y, batch_size=batch_size, **kwargs)

    def predict(self, x, batch_size=None, **kwargs):
        return super().predict(_normalize_texts(x), batch_size=batch_size, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "dropout": self.dropout}


def text_regressor(
    backbone_or_path: keras.Model | str | os.PathLike,
    *,
    vocabulary: Sequence[str] | str | None = None,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    learning_rate: float = 5e-5,
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
    verbose: bool = True,
    **compile_kwargs,
) -> TextRegressor:
    """A compiled text regressor (mean squared error), ready for `fit()` on `(text, number)` data.

    Takes the same arguments as `keras_ptft.recipes.text_classifier` (optimizer, schedule,
    regularization, clipping, accumulation, EMA, precision, layer-wise decay, freezing, LoRA),
    minus the classification ones.

    Example:
    ```python
    regressor = kp.recipes.text_regressor("saved_models/my_bert")
    regressor.fit(["a fine film", "a dull film"], [4.5, 1.0], epochs=1)
    ```
    """
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, lowercase)
    if precision is not None:
        backbone = techniques.with_dtype_policy(backbone, precision)
    regressor = TextRegressor(backbone, preprocessor=preprocessor, dropout=dropout, compile=False)
    apply_techniques(
        regressor, backbone, compile_kwargs, optimizer=optimizer, learning_rate=learning_rate, schedule=schedule,
        warmup_ratio=warmup_ratio, total_steps=total_steps, weight_decay=weight_decay, clipnorm=clipnorm,
        clipvalue=clipvalue, gradient_accumulation_steps=gradient_accumulation_steps, use_ema=use_ema, l1=l1, l2=l2,
        layerwise_lr_decay=layerwise_lr_decay, freeze_backbone=freeze_backbone, freeze_layers=freeze_layers,
        lora_rank=lora_rank, verbose=verbose,
    )
    regressor.compile(**compile_kwargs)
    if checkpoint_dir is not None:
        check_checkpoint_dir(regressor, checkpoint_dir)  # refuse a foreign checkpoint now, not at fit
    regressor.checkpoint_dir, regressor.checkpoint_monitor = checkpoint_dir, monitor
    return regressor
