"""`Predictor`: one class that loads any exported artifact and predicts from raw strings."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Sequence

import numpy as np

MANIFEST = "manifest.json"
# The artifact each format name stands for, relative to the export folder.
ARTIFACTS = {
    "saved_model": "1",
    "tflite": "tflite/model.tflite",
    "tflite_text": "tflite/model_text.tflite",
    "onnx": "onnx/model.onnx",
}
# Which artifact `Predictor` uses when `format` is not given, most faithful first.
PREFERENCE = ("saved_model", "tflite_text", "tflite")
PREFERENCE += ("onnx",)


def file_digests(path: str) -> dict[str, dict]:
    """{relative file: {"bytes": size, "sha256": digest}} for a file or every file of a folder."""
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    else:
        files = [
            (os.path.relpath(os.path.join(root, name), path), os.path.join(root, name))
            for root, _, names in os.walk(path)
            for name in sorted(names)
        ]
    digests = {}
    for relative, full in sorted(files):
        with open(full, "rb") as handle:
            digests[relative] = {"bytes": os.path.getsize(full), "sha256": hashlib.sha256(handle.read()).hexdigest()}
    return digests


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of an export folder, or a clear error when there is none or it is damaged."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"`path` {path!r} is not a folder; pass an export folder (it holds manifest.json).")
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise FileNotFoundError(
            f"{path!r} has no {MANIFEST}: it is not a keras_ptft export folder, or its export was interrupted."
        )
    try:
        with open(manifest_path) as handle:
            manifest = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{manifest_path!r} is corrupted (not valid JSON: {error}).") from None
    if not isinstance(manifest, dict) or "kind" not in manifest or "artifacts" not in manifest:
        raise ValueError(f"{manifest_path!r} is not a keras_ptft manifest (no 'kind' or 'artifacts').")
    return manifest


class Predictor:
    """Loads an export folder's SavedModel or TFLite artifact and predicts from raw strings.

    The artifact's files are checked against the sizes and SHA-256 digests in the manifest
    first, so a truncated or corrupted artifact gives a clear error instead of a crash or wrong
    output.

    Args:
        path: str. The export folder written by `keras_ptft.export.export`.
        format: str or None. `"saved_model"`, `"tflite_text"`, `"tflite"` or `"onnx"`; None
            picks the first present in that order.

    Example:
    ```python
    predictor = Predictor("saved_models/sentiment")
    predictor.predict(["a fine film"])   # {"probabilities": ..., "labels": ..., "label_names": [...]}
    ```
    """

    def __init__(self, path: str | os.PathLike, format: str | None = None):
        self.path = os.fspath(path)
        self.manifest = read_manifest(self.path)
        available = [name for name in PREFERENCE if name in self.manifest["artifacts"]]
        if format is None:
            if not available:
                raise ValueError(f"{self.path!r} holds no artifact Predictor can run; its manifest lists "
                                 f"{sorted(self.manifest['artifacts'])}.")
            format = available[0]
        if format not in available:
            raise ValueError(f"`format` must be one of the artifacts in {self.path!r}: {available}; received {format!r}.")
        kind_runner = _kind_runner(self.manifest["kind"])
        if kind_runner is None and self.manifest["kind"] != "text_classifier":
            raise ValueError(f"Predictor cannot run a {self.manifest['kind']!r} export.")
        self.format = format
        self.label_names = list(self.manifest.get("label_names") or [])
        artifact = os.path.join(self.path, ARTIFACTS[format])
        self._check_files(artifact, self.manifest["artifacts"][format])
        # Causal LMs, masked LMs and image models run through their own runner (see _kind_runner).
        self._kind_runner = None if kind_runner is None else kind_runner(self.path, self.manifest, format, artifact)
        if self._kind_runner is None:
            self._run = getattr(self, f"_load_{format}")(artifact)

    def _check_files(self, artifact: str, entry: dict) -> None:
        if not os.path.exists(artifact):
            raise FileNotFoundError(f"The {self.format!r} artifact {artifact!r} listed in the manifest is missing.")
        expected = entry.get("files", {})
        found = file_digests(artifact)
        for name, digest in expected.items():
            if name not in found:
                raise FileNotFoundError(f"The {self.format!r} artifact lacks its file {name!r}.")
            if found[name] != digest:
                problem = "truncated" if found[name]["bytes"] < digest["bytes"] else "corrupted"
                raise ValueError(
                    f"The {self.format!r} artifact's file {name!r} is {problem}: {found[name]['bytes']} bytes, "
                    f"sha256 {found[name]['sha256'][:12]}…, expected {digest['bytes']} bytes, "
                    f"sha256 {digest['sha256'][:12]}…."
                )

    def _load_saved_model(self, folder):
        import tensorflow as tf
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

        serving = tf.saved_model.load(folder).signatures["serving_default"]

        def run(texts):
            outputs = serving(texts=tf.constant(texts, dtype=tf.string))
            return {"probabilities": outputs["probabilities"].numpy(), "labels": outputs["labels"].numpy()}

        return run

    def _load_tflite_text(self, file):
        from keras_ptft.export.tflite import TFLiteRunner

        runner = TFLiteRunner(file)

        def run(texts):
            outputs = runner(texts=np.array(texts, dtype=object))
            return {"probabilities": outputs["probabilities"], "labels": outputs["labels"]}

        return run

    def _token_preprocessor(self):
        """The Keras model's tokenizer, rebuilt from the export's vocabulary and settings, for the
        token-id artifacts (TFLite token ids, ONNX: neither has a WordPiece op)."""
        from keras_ptft.data.preprocessing import BertPreprocessor

        settings = self.manifest["preprocessing"]
        return BertPreprocessor(
            os.path.join(self.path, self.manifest["vocabulary_file"]),
            sequence_length=settings["sequence_length"],
            lowercase=settings["lowercase"],
            strip_accents=settings["strip_accents"],
        )

    def _load_tflite(self, file):
        from keras_ptft.export.tflite import TFLiteRunner

        runner = TFLiteRunner(file)
        preprocessor = self._token_preprocessor()

        def run(texts):
            features = preprocessor(texts)
            outputs = runner(**{name: np.asarray(value, np.int32) for name, value in features.items()})
            return {"probabilities": outputs["probabilities"], "labels": outputs["labels"]}

        return run

    def _load_onnx(self, file):
        from keras_ptft.export.onnx import OnnxRunner

        runner = OnnxRunner(file)
        preprocessor = self._token_preprocessor()

        def run(texts):
            features = preprocessor(texts)
            return runner(**{name: np.asarray(value) for name, value in features.items()})

        return run

    def predict(self, texts: str | Sequence[str], **options) -> dict:
        """Class probabilities, label ids and label names for one text or a list of texts.

        Other kinds of export return their own outputs: a causal LM `texts` (prompt +
        continuation), `token_ids` and `padding_mask`; a masked LM the `top_k` `tokens` and
        `probabilities` per [MASK]; an image classifier takes uint8 images `(batch, height,
        width, channels)` and returns `probabilities`, `labels`, `label_names`; an image
        segmenter returns per-pixel `probabilities` `(batch, height, width, classes)` and label
        masks `labels` `(batch, height, width)` (class names: `self.label_names`).

        Args:
            texts: str or list of str (uint8 array for image models).
            **options: causal LMs only: `max_length` (int), stop generating earlier than the
                export's `max_length`.

        Returns:
            A dict: `"probabilities"` (float32 array `(batch, classes)`), `"labels"` (int array
            `(batch,)`), `"label_names"` (list of str).
        """
        if options and self.manifest["kind"] != "causal_lm" or set(options) - {"max_length"}:
            raise ValueError(f"`predict` options {sorted(options)} do not apply to a {self.manifest['kind']!r} "
                             "export (only causal LMs take `max_length`).")
        if self._kind_runner is not None:
            return self._kind_runner.predict(texts, **options)
        texts = _check_texts(texts)
        if not texts:
            classes = len(self.label_names)
            return {"probabilities": np.zeros((0, classes), np.float32), "labels": np.zeros((0,), np.int64),
                    "label_names": []}
        outputs = self._run(texts)
        labels = np.asarray(outputs["labels"]).astype(np.int64)
        return {
            "probabilities": np.asarray(outputs["probabilities"], np.float32),
            "labels": labels,
            "label_names": [self.label_names[i] for i in labels],
        }


def _kind_runner(kind: str):
    """The runner class of export kinds other than text classifiers, or None."""
    if kind == "causal_lm":
        from keras_ptft.export.causal_lm import CausalLMRunner

        return CausalLMRunner
    if kind == "masked_lm":
        from keras_ptft.export.masked_lm import MaskedLMRunner

        return MaskedLMRunner
    if kind == "image_classifier":
        from keras_ptft.export.image_kind import ImageClassifierRunner

        return ImageClassifierRunner
    if kind == "image_segmenter":
        from keras_ptft.export.segmenter_kind import ImageSegmenterRunner

        return ImageSegmenterRunner
    return None


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, np.ndarray) and texts.ndim == 1 and texts.dtype.kind in "UO":
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise ValueError(f"`texts` must be a str or a list of str, received {type(texts).__name__}.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(
                f"`texts` must be a str or a list of str, received {type(text).__name__} {text!r:.60} at index {index}."
            )
    return list(texts)
