"""`export()`: one call writes a verified, self-describing export folder; the kind of model is
looked up in the kind registry (`export/base.py`), the artifacts are written by the kind."""

from __future__ import annotations

import datetime
import json
import os
import secrets
import shutil
import socket
import time
import warnings
from typing import Sequence

import keras

from keras_ptft.export.base import ARTIFACTS, FORMATS, MANIFEST, ExportCheckFailed, file_digests, \
    is_export_folder, kind_of, write_manifest
from keras_ptft.export.formats.tflite import QUANTIZATIONS
from keras_ptft.export.verify import verify
from keras_ptft.version import __version__

__all__ = ["export", "export_text_classifier", "export_image_classifier", "FORMATS", "QUANTIZATIONS",
           "ExportCheckFailed"]
TFLITE_FORMATS = ("tflite", "tflite_text")
STAGING_PREFIX = ".export-"
# Inside every staging folder: who is writing it, so a later export can tell a dead one from a live one.
STAGING_MARKER = ".keras_ptft_staging.json"
# A staging folder whose writer cannot be checked (another host) counts as stale after this long.
STALE_AFTER_S = 24 * 3600


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
    `path/model.keras`, `path/manifest.json` (kind, inputs, outputs, label names,
    preprocessing, sizes, digests of every file and parity figures) and `path/manifest.sha256`
    (the manifest's own digest). Everything is written to a staging folder
    beside `path` and moved into place last, so an interrupted export leaves no folder that looks
    complete; hidden staging folders left by a killed export are removed by the next export to
    the same parent. Folders and files follow the process umask. Each artifact is run against the Keras model; the export fails with
    `ExportCheckFailed` (and writes nothing) when a float artifact's probabilities differ by more
    than `tolerance`, or a quantized one agrees on fewer than `min_label_agreement` of the labels.

    Args:
        model: a built Keras model of a supported kind: a `keras_ptft.recipes.TextClassifier`,
            `keras_ptft.tasks.CausalLM`, `keras_ptft.tasks.MaskedLM`, `keras_ptft.tasks.Translator`,
            `keras_ptft.tasks.TokenClassifier`, `keras_ptft.tasks.QuestionAnswerer`,
            `keras_ptft.recipes.ImageClassifier` or `keras_ptft.recipes.ImageSegmenter`.
            A question answerer's data (`representative_data`, `verify_data`) are
            `(question, context)` pairs.
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
        overwrite: bool. Replace an earlier export at `path` (a folder holding our
            manifest.json). Any other non-empty folder is refused, never deleted.
        verify_data: list of str or None. Texts to check parity on; None uses
            `representative_data`, or a built-in probe set.
        tolerance: float. Largest allowed |Δ| of probabilities for float artifacts.
        min_label_agreement: float. Smallest allowed label agreement for quantized artifacts.
        save_keras: bool. Also save `model.keras`.
        **kind_options: settings of one kind of model: `max_length` (int, tokens generated up
            to, fixed at export; causal LMs and translators), `num_beams` (int, beam width of a
            translator's SavedModel `translate_beam` signature, 1 for none), `top_k` (int, predictions per [MASK]; masked LMs)
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
                         f"{type(model).__name__} that is not built.")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike folder, received {type(path).__name__}.")
    path = os.fspath(path)
    for name, value in (("tolerance", tolerance), ("min_label_agreement", min_label_agreement)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"`{name}` must be a number, received {type(value).__name__} {value!r}.")
    _check_target(path, overwrite)
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

    staging = _make_staging(path)
    try:
        manifest = {
            "kind": kind.name,
            "keras_ptft_version": __version__,
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **kind.manifest(),
            "artifacts": {},
        }
        for name, content in kind.files().items():
            if isinstance(content, bytes):  # a binary model file, e.g. a SentencePiece proto
                with open(os.path.join(staging, name), "wb") as handle:
                    handle.write(content)
            else:
                with open(os.path.join(staging, name), "w", encoding="utf-8") as handle:
                    handle.write(content)
        # The files a Predictor reads beside the artifacts (vocabulary, merges) are under digests too.
        manifest["files"] = {name: file_digests(os.path.join(staging, name))[name] for name in kind.files()}
        for name in formats:
            print(f"export: writing {name}" + (f" ({quantization})" if quantization and name in TFLITE_FORMATS else ""),
                  flush=True)
            target = os.path.join(staging, ARTIFACTS[name])
            entry = {"path": ARTIFACTS[name], **kind.write_artifact(name, target, quantization, representative_data)}
            entry["files"] = file_digests(target)
            entry["bytes"] = sum(item["bytes"] for item in entry["files"].values())
            manifest["artifacts"][name] = entry
        if save_keras:
            model.save(os.path.join(staging, "model.keras"))
            manifest["keras_model"] = "model.keras"
        write_manifest(staging, manifest)

        print("export: verifying against the Keras model", flush=True)
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
        write_manifest(staging, manifest)
        os.remove(os.path.join(staging, STAGING_MARKER))
        _move_into_place(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def export_text_classifier(classifier, path: str | os.PathLike, overwrite: bool = True) -> str:
    """Deprecated: `export(classifier, path, formats=["saved_model"], overwrite=overwrite)`.

    Returns `path/1` (the SavedModel) as before; the folder is now `export()`'s (verified, with
    digests), and `overwrite=True` replaces only an earlier export.
    """
    warnings.warn("`export_text_classifier` is deprecated; use `keras_ptft.export.export(classifier, path)`.",
                  DeprecationWarning, stacklevel=2)
    return os.path.join(export(classifier, path, formats=["saved_model"], overwrite=overwrite), ARTIFACTS["saved_model"])


def export_image_classifier(classifier, path: str | os.PathLike, overwrite: bool = True, onnx: bool = False,
                            tolerance: float = 1e-4) -> str:
    """Deprecated: `export(classifier, path, formats=["saved_model"] (+ ["onnx"]), ...)`; returns `path/1`."""
    warnings.warn("`export_image_classifier` is deprecated; use `keras_ptft.export.export(classifier, path)`.",
                  DeprecationWarning, stacklevel=2)
    formats = ["saved_model", "onnx"] if onnx else ["saved_model"]
    return os.path.join(export(classifier, path, formats=formats, overwrite=overwrite, tolerance=tolerance),
                        ARTIFACTS["saved_model"])


# === The target folder ===


def _check_target(path: str, overwrite: bool) -> None:
    """Refuses a target that is a file, lies under a file, or is a non-empty folder we may not replace."""
    absolute = os.path.abspath(path)
    if os.path.isfile(absolute):
        raise FileExistsError(f"`path` {path!r} is a file; pass a folder to export into.")
    component = absolute
    while not os.path.exists(component):  # the deepest existing component must be a folder
        component = os.path.dirname(component)
    if not os.path.isdir(component):
        raise NotADirectoryError(f"`path` {path!r} cannot be created: {component!r} is a file, not a folder.")
    if os.path.isdir(absolute) and os.listdir(absolute):
        if not overwrite:
            raise FileExistsError(f"`path` {path!r} exists and is not an empty folder; pass overwrite=True to "
                                  "replace an earlier export.")
        if not is_export_folder(absolute):
            names = sorted(os.listdir(absolute))
            shown = ", ".join(repr(name) for name in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise FileExistsError(f"`path` {path!r} is not a keras_ptft export (it has no {MANIFEST}; it holds "
                                  f"{shown}); overwrite=True replaces only an earlier export. Choose another "
                                  "folder or empty this one yourself.")


def _make_staging(path: str) -> str:
    """A new hidden staging folder beside `path` (after removing stale ones), with the umask's mode."""
    parent = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale_staging(parent)
        staging = os.path.join(parent, f"{STAGING_PREFIX}{os.path.basename(os.path.abspath(path))}-"
                                       f"{secrets.token_hex(4)}")
        os.mkdir(staging)  # mode 0o777 & ~umask, unlike tempfile.mkdtemp's 0o700
        with open(os.path.join(staging, STAGING_MARKER), "w", encoding="utf-8") as handle:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}, handle)
    except PermissionError:
        raise PermissionError(f"`path` {path!r} cannot be written: no permission to create folders in "
                              f"{parent!r}.") from None
    except OSError as error:
        raise OSError(f"`path` {path!r} cannot be written: {error.strerror or error}.") from None
    return staging


def _remove_stale_staging(parent: str) -> None:
    """Removes staging folders of exports that died: ours (marker file), and their writer is gone."""
    for name in os.listdir(parent):
        folder = os.path.join(parent, name)
        marker = os.path.join(folder, STAGING_MARKER)
        if not name.startswith(STAGING_PREFIX) or not os.path.isfile(marker):
            continue
        try:
            with open(marker, encoding="utf-8") as handle:
                writer = json.load(handle)
            if writer["host"] == socket.gethostname():
                stale = not _process_alive(int(writer["pid"]))
            else:
                stale = time.time() - float(writer["started"]) > STALE_AFTER_S
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: leave it alone rather than guess
        if stale:
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def _move_into_place(staging: str, path: str) -> None:
    """Renames the staging folder to `path`; an earlier export there is swapped out first, then deleted."""
    previous = None
    if os.path.exists(path):
        if os.listdir(path):
            previous = f"{staging}-previous"
            os.replace(path, previous)
        else:
            os.rmdir(path)
    os.replace(staging, path)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


def _check_formats(formats) -> list[str]:
    if isinstance(formats, str):
        formats = [formats]
    if not hasattr(formats, "__iter__"):
        raise ValueError(f"`formats` must be a non-empty list of {list(FORMATS)}, received {formats!r}.")
    formats = list(formats)
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"`formats` must be a non-empty list of {list(FORMATS)}, received {formats!r}.")
    return list(dict.fromkeys(formats))
