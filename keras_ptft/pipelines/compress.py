"""The compression table: a fine-tuned classifier against its distilled, pruned and int8 versions.

What `keras-ptft compress DIR` prints and `benchmarks/bench_compression.py` runs at full size.
Rows (each measured on the same labeled evaluation texts):

| row | how it is made |
|---|---|
| teacher | the fine-tuned classifier as loaded |
| distilled | `kp.recipes.distill` into `keep_layers(teacher.backbone, student_layers)` (every other block by default), trained on the training texts without their labels |
| pruned heads | `kp.recipes.prune_heads(teacher, head_fraction)`, importance on the first training texts, recovered for `epochs` on the training data |
| int8 | `kp.recipes.quantize` (Keras `int8` weights) |

Columns: accuracy, size of the weights (bytes of every variable; int8 kernels take one byte), parameter count, batch-1 latency in Keras
(`predict_on_batch` of one text, median) and in LiteRT (the TFLite export through
`kp.export.Predictor`, median; "n/a" with the reason when that model does not convert).
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from typing import Sequence

import keras
import numpy as np

from keras_ptft.export.export import export
from keras_ptft.export.predictor import Predictor
from keras_ptft.recipes.compression import keep_layers, prune_heads, quantize
from keras_ptft.recipes.distillation import distill


@dataclasses.dataclass
class CompressionRow:
    """One row of the compression table."""

    name: str
    accuracy: float
    size_bytes: int
    parameters: int
    keras_ms: float
    litert_ms: float | None
    note: str = ""


def compression_table(
    teacher_path: str | os.PathLike,
    train: tuple[Sequence[str], np.ndarray],
    evaluation: tuple[Sequence[str], np.ndarray],
    *,
    student_layers: int | None = None,
    head_fraction: float = 0.4,
    epochs: int = 1,
    batch_size: int = 32,
    latency_samples: int = 50,
    litert: bool = True,
    work_dir: str | os.PathLike | None = None,
) -> list[CompressionRow]:
    """Builds the distilled, pruned and int8 versions of a saved classifier and measures all four.

    Args:
        teacher_path: str. A fine-tuned classifier: a `.keras` file or a folder holding
            `model.keras` (what `keras-ptft finetune` writes).
        train: `(texts, labels)` to distill on (texts only) and to recover the pruned model on.
        evaluation: `(texts, labels)` the accuracy and latency are measured on.
        student_layers: int or None. Blocks of the distilled student; None: half the teacher's.
        head_fraction: float in [0, 1). Share of attention heads pruned.
        epochs: int. Epochs of distillation and of the pruned model's recovery.
        batch_size: int. Training batch size.
        latency_samples: int. Texts timed one at a time.
        litert: bool. Also export each model to TFLite and time it.
        work_dir: str or None. Where the models and exports are written (None: a temporary
            folder, removed at the end).

    Returns:
        The rows: teacher, distilled, pruned heads, int8.

    Example:
    ```python
    rows = compression_table("saved_models/classifier", (train_texts, train_labels), (dev_texts, dev_labels))
    print(format_table(rows))
    ```
    """
    model_file = _model_file(teacher_path)
    train_texts, train_labels = list(train[0]), np.asarray(train[1])
    eval_texts, eval_labels = list(evaluation[0]), np.asarray(evaluation[1])
    if not train_texts or not eval_texts:
        raise ValueError("`train` and `evaluation` must each hold at least one text.")
    with tempfile.TemporaryDirectory() as scratch:
        folder = os.fspath(work_dir) if work_dir is not None else scratch
        os.makedirs(folder, exist_ok=True)
        teacher = keras.saving.load_model(model_file)
        layers = student_layers or max(1, teacher.backbone.num_layers // 2)
        print(f"Distilling into {layers} of {teacher.backbone.num_layers} blocks ...", flush=True)
        student = distill(teacher, keep_layers(teacher.backbone, layers), preprocessor=teacher.preprocessor,
                          pooling=teacher.pooling, cache_dir=os.path.join(folder, "teacher_cache"))
        student.fit(train_texts, batch_size=batch_size, epochs=epochs, verbose=2)
        print(f"Pruning {head_fraction:.0%} of the heads ...", flush=True)
        pruned = prune_heads(teacher, head_fraction, probe_texts=train_texts[:256], probe_labels=train_labels[:256],
                             recovery_data=(train_texts, train_labels), recovery_epochs=epochs)
        int8 = quantize(keras.saving.load_model(model_file))
        models = [("teacher", teacher), (f"distilled ({layers} blocks)", student),
                  (f"pruned heads ({head_fraction:.0%})", pruned), ("int8 (Keras)", int8)]
        return [measure(name, model, eval_texts, eval_labels, folder, latency_samples, litert)
                for name, model in models]


def format_table(rows: Sequence[CompressionRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| model | accuracy | weights (MB) | parameters | Keras batch-1 ms | LiteRT batch-1 ms |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        litert = f"{row.litert_ms:.2f}" if row.litert_ms is not None else f"n/a ({row.note})" if row.note else "n/a"
        lines.append(f"| {row.name} | {row.accuracy:.4f} | {row.size_bytes / 1e6:.2f} | {row.parameters:,} | "
                     f"{row.keras_ms:.2f} | {litert} |")
    return "\n".join(lines)


def _model_file(path) -> str:
    path = os.fspath(path)
    candidate = os.path.join(path, "model.keras") if os.path.isdir(path) else path
    if not candidate.endswith(".keras") or not os.path.isfile(candidate):
        raise FileNotFoundError(f"{path!r} is neither a .keras file nor a folder holding model.keras "
                                "(a classifier saved by `keras-ptft finetune`).")
    return candidate


def _median_ms(fn, texts, samples: int) -> float:
    fn(texts[0])  # tracing / first-call cost is not latency
    times = []
    for text in (texts * (1 + samples // len(texts)))[:samples]:
        start = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(name: str, model: keras.Model, texts, labels, folder: str, samples: int = 50, litert: bool = True) -> CompressionRow:
    """One row: `model` saved to `folder`, scored on `(texts, labels)`, timed at batch 1."""
    slug = "".join(c if c.isalnum() else "_" for c in name)
    model_path = os.path.join(folder, f"{slug}.keras")
    model.save(model_path)
    probabilities = np.asarray(model.predict(texts, batch_size=64, verbose=0))
    accuracy = float(np.mean(probabilities.argmax(-1) == labels))
    # `predict_on_batch` tokenizes the raw string itself and skips `predict`'s tf.data pipeline.
    keras_ms = _median_ms(lambda text: model.predict_on_batch([text]), texts, samples)
    litert_ms, note = None, ""
    if litert:
        try:
            path = export(model, os.path.join(folder, f"{slug}_export"), formats=["tflite"], overwrite=True,
                          verify_data=texts[:32], min_label_agreement=0.0, tolerance=1.0, save_keras=False)
            predictor = Predictor(path, format="tflite")
            litert_ms = _median_ms(lambda text: predictor.predict([text]), texts, samples)
        except Exception as error:  # a model the converter refuses still gets its Keras row
            note = f"{type(error).__name__}: {str(error).splitlines()[0][:80]}" if str(error) else type(error).__name__
    # The weights' bytes, not the .keras file's: a trained model's file also holds its optimizer slots.
    size = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in model.weights)
    return CompressionRow(name, accuracy, size, int(model.count_params()), keras_ms, litert_ms, note)
