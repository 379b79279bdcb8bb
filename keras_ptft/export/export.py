"""`export()`: one call writes a verified, self-describing export folder."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from typing import Sequence

import keras

from keras_ptft.export.kinds import kind_of
from keras_ptft.export.predictor import ARTIFACTS, MANIFEST, file_digests
from keras_ptft.export.tflite import QUANTIZATIONS
from keras_ptft.version import __version__

FORMATS = ("saved_model", "tflite", "tflite_text")
FORMATS += ("onnx",)  # token ids in, run with onnxruntime (export/onnx.py)
TFLITE_FORMATS = ("tflite", "tflite_text")


class ExportCheckFailed(ValueError):
    """An artifact's outputs differ from the Keras model's by more than the allowed margin."""


def export(
    model: keras.Model,
    path: str | os.PathLike,
    formats: Sequence[str] | None = None,
    quantization: str | None = None,
    representative_data: Sequence[str] | None = None,
    overwrite: bool = False,
    verify_data: Sequence[str] | None = None,
    tolerance: float = 1e-4,
    min_label_agreement: float = 0.99,
    save_keras: bool = True,
    **kind_options,
) -> str:
    """Exports `model` to `path/`: artifacts, vocabulary, a manifest, each artifact verified.

    Layout: `path/1/` (SavedModel, as TensorFlow Serving expects), `path/tflite/model.tflite`
    (token ids in), `path/tflite/model_text.tflite` (raw strings in), `path/vocabulary.txt`,
    `path/model.keras` and `path/manifest.json` (kind, inputs, outputs, label names,
    preprocessing, sizes, digests and parity figures). Everything is written to a staging folder
    beside `path` and moved into place last, so an interrupted export leaves no folder that looks
    complete. Each artifact is run against the Keras model; the export fails with
    `ExportCheckFailed` (and writes nothing) when a float artifact's probabilities differ by more
    than `tolerance`, or a quantized one agrees on fewer than `min_label_agreement` of the labels.

    Args:
        model: a built Keras model of a supported kind: a `keras_ptft.recipes.TextClassifier`,
            `keras_ptft.tasks.CausalLM`, `keras_ptft.tasks.MaskedLM`,
            `keras_ptft.recipes.ImageClassifier` or `keras_ptft.recipes.ImageSegmenter`.
        path: str. The export folder, e.g. `"saved_models/sentiment"`.
        formats: list of str or None. Any of `"saved_model"`, `"tflite"` (token ids, or uint8
            images, in), `"tflite_text"` (raw strings in, tokenizer inside; text classifiers
            only) and `"onnx"` (token ids or uint8 images in, float32; needs the `onnx` extra:
            tf2onnx, onnx, onnxruntime). None writes every format the model's kind supports
            except ONNX, whose converter is an optional dependency.
        quantization: str or None. For the TFLite artifacts: None (float32), `"float16"`,
            `"dynamic_int8"` (int8 weights) or `"int8"` (int8 weights and activations,
            calibrated on `representative_data`; format `"tflite"` only).
        representative_data: list of str or None. Texts to calibrate `"int8"` with; also the
            verification texts when `verify_data` is None.
        overwrite: bool. Replace a non-empty folder at `path`.
        verify_data: list of str or None. Texts to check parity on; None uses
            `representative_data`, or a built-in probe set.
        tolerance: float. Largest allowed |Δ| of probabilities for float artifacts.
        min_label_agreement: float. Smallest allowed label agreement for quantized artifacts.
        save_keras: bool. Also save `model.keras`.
        **kind_options: settings of one kind of model: `max_length` (int, tokens generated up
            to, fixed at export; causal LMs), `top_k` (int, predictions per [MASK]; masked LMs)
            and `label_names` (list of str, class names for the manifest; image segmenters).
            For image models, `representative_data` and `verify_data` are uint8 image arrays;
            a segmenter's label agreement is counted per pixel.

    Returns:
        The export folder's path.

    Example:
    ```python
    kp.export.export(classifier, "saved_models/sentiment", formats=["saved_model", "tflite_text"])
    kp.export.Predictor("saved_models/sentiment").predict(["a fine film"])
    ```
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(f"`quantization` must be one of {list(QUANTIZATIONS)}, received {quantization!r}.")
    if quantization == "int8" and representative_data is None:
        raise ValueError("`quantization='int8'` needs `representative_data`: typical inputs (a list of texts, "
                         "or uint8 images for image models) to calibrate the int8 activations on "
                         "(100-500 is plenty).")
    if keras.config.backend() != "tensorflow":
        raise RuntimeError("`export` runs on the TensorFlow backend; the current Keras backend is "
                           f"{keras.config.backend()!r}. Set KERAS_BACKEND=tensorflow.")
    if not isinstance(model, keras.Model) or not model.built or not model.weights:
        raise ValueError(f"`model` must be a built Keras model (call it or `fit` it first), received "
                         f"{type(model).__name__}{'' if isinstance(model, keras.Model) else ''} that is not built.")
    path = os.fspath(path)
    if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path) and not overwrite):
        raise FileExistsError(f"`path` {path!r} exists and is not an empty folder; pass overwrite=True to replace it.")
    kind = kind_of(model, **kind_options)
    formats = list(kind.default_formats) if formats is None else _check_formats(formats)
    unsupported = [name for name in formats if name not in kind.formats]
    if unsupported:
        raise ValueError(f"`formats` {unsupported} cannot be written for a {kind.name!r} model; it supports "
                         f"{list(kind.formats)}.")
    if representative_data is not None:
        representative_data = kind.check_data(representative_data, "representative_data")
    if verify_data is not None:
        verify_data = kind.check_data(verify_data, "verify_data")

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        manifest = {
            "kind": kind.name,
            "keras_ptft_version": __version__,
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **kind.manifest(),
            "artifacts": {},
        }
        for name, text in kind.files().items():
            with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                handle.write(text)
        for name in formats:
            print(f"export: writing {name}" + (f" ({quantization})" if quantization and name in TFLITE_FORMATS else ""),
                  flush=True)
            manifest["artifacts"][name] = _write(name, kind, staging, quantization, representative_data)
        if save_keras:
            model.save(os.path.join(staging, "model.keras"))
            manifest["keras_model"] = "model.keras"
        _write_manifest(staging, manifest)

        print("export: verifying against the Keras model", flush=True)
        from keras_ptft.export.verify import verify

        parity = verify(staging, model, verify_data if verify_data is not None else representative_data,
                        formats=formats, **kind_options)
        failures = []
        for name, figures in parity.items():
            entry = manifest["artifacts"][name]
            entry["parity"] = figures
            failure = kind.parity_failure(name, entry, figures, tolerance, min_label_agreement)
            if failure:
                failures.append(failure)
            print(f"export: {name}: " + ", ".join(f"{key} {value:.4g}" for key, value in figures.items()), flush=True)
        if failures:
            raise ExportCheckFailed("The export does not match the Keras model: " + "; ".join(failures))
        manifest["checks"] = {"tolerance": tolerance, "min_label_agreement": min_label_agreement}
        _write_manifest(staging, manifest)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def _write(name, kind, staging, quantization, representative_data) -> dict:
    from keras_ptft.export import tflite
    from keras_ptft.export.saved_model import write_saved_model

    target = os.path.join(staging, ARTIFACTS[name])
    entry = kind.write_artifact(name, target, quantization, representative_data)
    if entry is not None:
        entry.setdefault("path", ARTIFACTS[name])
    elif name == "saved_model":
        entry = write_saved_model(kind, target)
        entry["path"] = ARTIFACTS[name]
    elif name == "onnx":
        from keras_ptft.export.onnx import write_onnx

        # Always float32: `quantization` applies to the TFLite artifacts only.
        entry = {"path": ARTIFACTS[name], **write_onnx(kind.model, target)}
        if kind.name == "text_classifier":
            entry["tokenizer_note"] = "Tokenize with vocabulary.txt and the manifest's preprocessing settings."
    else:
        if name == "tflite":
            blob = tflite.token_model(kind, quantization, representative_data)
            inputs = {spec_name: f"int32[batch, {spec.shape[1]}]" for spec_name, spec in kind.token_input_specs().items()}
        else:
            blob = tflite.text_model(kind, quantization, representative_data)
            inputs = {"texts": "string[batch]"}
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(blob)
        entry = {"path": ARTIFACTS[name], "signature": "serving_default", "inputs": inputs,
                 "quantization": quantization}
        if name == "tflite_text":
            entry["runtime"] = ("ai_edge_litert InterpreterWithCustomOps with "
                                "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS")
            entry["tokenizer_note"] = ("FastBertTokenizer: equal to the Keras tokenizer on English, accented and "
                                       "Chinese text; may differ on non-ASCII spaces, invisible format characters "
                                       "and compatibility characters (NFKC).")
        else:
            entry["tokenizer_note"] = "Tokenize with vocabulary.txt and the manifest's preprocessing settings."
    files = file_digests(target)
    entry["files"] = files
    entry["bytes"] = sum(item["bytes"] for item in files.values())
    return entry


def _write_manifest(folder, manifest) -> None:
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2, ensure_ascii=False)


def _check_formats(formats) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    formats = list(formats)
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"`formats` must be a non-empty list of {list(FORMATS)}, received {formats!r}.")
    return list(dict.fromkeys(formats))


def _check_texts(texts, argument) -> list[str]:
    if isinstance(texts, str) or not hasattr(texts, "__iter__"):
        raise ValueError(f"`{argument}` must be a list of str, received {type(texts).__name__}.")
    texts = list(texts)
    if not texts or not all(isinstance(text, str) for text in texts):
        raise ValueError(f"`{argument}` must be a non-empty list of str.")
    return texts
