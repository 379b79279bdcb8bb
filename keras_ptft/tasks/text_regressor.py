"""Text regression: raw strings in, one real number out (e.g. STS-B similarity, star ratings)."""

from __future__ import annotations

import os

import keras
import numpy as np

from keras_ptft.tasks.base import Task
from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.tasks.text_classifier import LengthBucketing, normalize_texts
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.validation import is_in_memory


@keras.saving.register_keras_serializable(package="keras_ptft")
class TextRegressor(LengthBucketing, Task):
    """A backbone's pooled output, dropout and a linear unit; preprocessing attached.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with a `pooled_output`).
        preprocessor: `keras_ptft.data.BertPreprocessor`.
        dropout: float. Dropout rate before the output unit.
        checkpoint_dir: str or None. Makes `fit` resumable there (see `TextClassifier`).
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        bucketing: bool, int or list of int. Length-bucketed batches with dynamic padding (see
            `TextClassifier`); False for fixed padding. Text pairs are bucketed on their packed
            length.

    Example:
    ```python
    regressor = TextRegressor(bert, preprocessor=kp.data.BertPreprocessor(vocab))
    ```
    """

    def __init__(self, backbone: keras.Model, preprocessor=None, dropout: float = 0.1,
                 checkpoint_dir: str | os.PathLike | None = None, monitor: str | None = None,
                 seed: int | None = None, bucketing: bool | int | list[int] = True, **kwargs):
        bucketing = check_bucketing(bucketing)
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
        # === Training run === (not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with AdamW 5e-5, mean squared error and mean absolute error."""
        if optimizer == "auto":
            optimizer = make_adamw(5e-5, clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.MeanSquaredError()
        if metrics == "auto":
            metrics = [keras.metrics.MeanAbsoluteError(name="mae")]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **{**default_compile_kwargs(), **kwargs})

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        if is_in_memory(y):
            y = np.asarray(y, "float32")
            if not np.all(np.isfinite(y)):
                raise ValueError("`y` must hold finite numbers for regression.")
        return normalize_texts(x), y, sample_weight

    def get_config(self) -> dict:
        return {**super().get_config(), "dropout": self.dropout}
