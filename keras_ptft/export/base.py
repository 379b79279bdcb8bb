"""The export base: `ExportKind` (how one kind of model is written), `KindRunner` (how its artifacts
run), the registry of kinds, and the folder layout, manifest and digests every kind shares.

Nothing here knows any kind of model. A kind module (`export/kinds/`) subclasses both classes and
calls `register_kind`, as `convert/huggingface.py: register_converter` registers a converter;
`export`, `verify`, `Predictor` and `serve` find a model's or an export folder's kind only through
`kind_of(model)` and `kind_named(manifest["kind"])`.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import Callable, Sequence

import numpy as np

MANIFEST = "manifest.json"
# The SHA-256 of manifest.json's bytes, kept beside it: label names, preprocessing settings and the
# artifact digests are all in the manifest, so its own body must be covered too.
MANIFEST_DIGEST = "manifest.sha256"
# The artifact each format name stands for, relative to the export folder.
ARTIFACTS = {
    "saved_model": "1",  # TensorFlow Serving loads NAME/<version>/
    "tflite": "tflite/model.tflite",
    "tflite_text": "tflite/model_text.tflite",
    "onnx": "onnx/model.onnx",
}
FORMATS = tuple(ARTIFACTS)
# Which artifact `Predictor` uses when `format` is not given, most faithful first.
PREFERENCE = ("saved_model", "tflite_text", "tflite", "onnx")


class ExportCheckFailed(ValueError):
    """An artifact's outputs differ from the Keras model's by more than the allowed margin."""


# === Digests and the manifest ===


def file_digests(path: str) -> dict[str, dict]:
    """{relative file: {"bytes": size, "sha256": digest}} for a file or every file of a folder."""
    if os.path.isfile(path):
        files = [(os.path.basename(path), path)]
    else:
        files = [(os.path.relpath(os.path.join(root, name), path), os.path.join(root, name))
                 for root, _, names in os.walk(path) for name in names]
    digests = {}
    for relative, full in sorted(files):
        with open(full, "rb") as handle:
            digests[relative] = {"bytes": os.path.getsize(full), "sha256": hashlib.sha256(handle.read()).hexdigest()}
    return digests


def check_digests(root: str, expected: dict[str, dict], what: str) -> None:
    """Raises FileNotFoundError / ValueError naming the first file under `root` that is missing or
    differs from its recorded size and SHA-256."""
    found = file_digests(root) if os.path.exists(root) else {}
    for name, digest in expected.items():
        if name not in found:
            raise FileNotFoundError(f"{what} lacks its file {name!r} (looked in {root!r}).")
        if found[name] != digest:
            problem = "truncated" if found[name]["bytes"] < digest["bytes"] else "changed or corrupted"
            raise ValueError(f"{what}'s file {name!r} is {problem}: {found[name]['bytes']} bytes, sha256 "
                             f"{found[name]['sha256'][:12]}…, expected {digest['bytes']} bytes, sha256 "
                             f"{digest['sha256'][:12]}…. Re-export the model.")


def write_manifest(folder: str, manifest: dict) -> None:
    """Writes manifest.json and the digest of its bytes (manifest.sha256)."""
    data = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8")
    with open(os.path.join(folder, MANIFEST), "wb") as handle:
        handle.write(data)
    with open(os.path.join(folder, MANIFEST_DIGEST), "w", encoding="ascii") as handle:
        handle.write(hashlib.sha256(data).hexdigest() + "\n")


def load_manifest(path: str | os.PathLike) -> dict:
    """The parsed manifest of an export folder, unchecked against its digest (see `read_manifest`)."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"`path` {path!r} is not a folder; pass an export folder (it holds {MANIFEST}).")
    manifest_path = os.path.join(path, MANIFEST)
    if not os.path.isfile(manifest_path):
        raise FileNotFoundError(f"{path!r} has no {MANIFEST}: it is not a keras_ptft export folder, or its "
                                "export was interrupted.")
    try:
        with open(manifest_path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{manifest_path!r} is corrupted (not valid JSON: {error}).") from None
    if not isinstance(manifest, dict) or "kind" not in manifest or "artifacts" not in manifest:
        raise ValueError(f"{manifest_path!r} is not a keras_ptft manifest (no 'kind' or 'artifacts').")
    return manifest


def read_manifest(path: str | os.PathLike) -> dict:
    """The manifest of an export folder, checked against manifest.sha256, or a clear error naming the file.

    Example:
    ```python
    read_manifest("saved_models/sentiment")["label_names"]   # ["negative", "positive"]
    ```
    """
    manifest = load_manifest(path)
    manifest_path = os.path.join(os.fspath(path), MANIFEST)
    digest_path = os.path.join(os.fspath(path), MANIFEST_DIGEST)
    if not os.path.isfile(digest_path):
        raise ValueError(f"{manifest_path!r} has no digest file {MANIFEST_DIGEST} beside it, so its label names and "
                         "settings cannot be trusted; re-export the model with this keras_ptft version.")
    with open(manifest_path, "rb") as handle:
        actual = hashlib.sha256(handle.read()).hexdigest()
    with open(digest_path, encoding="ascii", errors="replace") as handle:
        expected = handle.read().strip()
    if actual != expected:
        raise ValueError(f"{manifest_path!r} was changed after export (its sha256 {actual[:12]}… is not the "
                         f"{expected[:12]}… recorded in {MANIFEST_DIGEST}); re-export the model rather than "
                         "editing the manifest.")
    return manifest


def is_export_folder(path: str) -> bool:
    """True when `path` holds a keras_ptft manifest (intact or not): what `overwrite=True` may replace."""
    try:
        load_manifest(path)
    except (OSError, ValueError):
        return False
    return True


# === Kinds ===


class ExportKind:
    """How one kind of model is exported. A kind module subclasses it and calls `register_kind`.

    Class attributes:
        name: str. The kind's name, written into the manifest (`"text_classifier"` ...).
        formats: tuple of str. The formats this kind can write; `export()` rejects the others.
        default_formats: tuple of str. What `formats=None` writes.
        runner: the `KindRunner` subclass that runs this kind's artifacts.

    Args:
        model: the Keras model to export.

    Example:
    ```python
    @register_kind
    class MyKind(ExportKind):
        name = "my_model"
        formats = default_formats = ("saved_model",)
        runner = MyRunner

        @classmethod
        def matches(cls, model):
            return isinstance(model, MyModel)
    ```
    """

    name = "model"
    formats: tuple[str, ...] = ()
    default_formats: tuple[str, ...] = ()
    runner: type[KindRunner] | None = None

    def __init__(self, model):
        self.model = model

    @classmethod
    def matches(cls, model) -> bool:
        """Whether this kind exports `model`."""
        raise NotImplementedError

    def check_data(self, data, argument: str):
        """Validated example inputs (calibration or verification data), or a ValueError naming `argument`."""
        raise NotImplementedError

    def probe_data(self):
        """Inputs to verify on when the caller gives none."""
        raise NotImplementedError

    def manifest(self) -> dict:
        """Kind-specific manifest entries (label names, preprocessing settings ...)."""
        return {}

    def files(self) -> dict[str, str | bytes]:
        """Extra files written beside the artifacts, {file name: text, or bytes for a binary file};
        `Predictor` checks their digests."""
        return {}

    def write_artifact(self, name: str, target: str, quantization, representative_data) -> dict:
        """Writes artifact `name` at `target` and returns its manifest entry."""
        raise NotImplementedError

    def bind_manifest(self, manifest: dict) -> None:
        """Adopts settings fixed at export (read back by `verify`); most kinds have none."""

    def parity(self, predict: Callable, data, batch_size: int) -> dict:
        """Parity figures of one artifact, run through `predict` (a `Predictor.predict`), on `data`."""
        raise NotImplementedError

    def parity_failure(self, name: str, entry: dict, figures: dict, tolerance: float,
                       min_label_agreement: float) -> str | None:
        """Why artifact `name` fails its parity check, or None; the default reads `probability_parity`'s figures."""
        if entry.get("quantization"):
            if figures["label_agreement"] < min_label_agreement:
                return (f"{name} ({entry['quantization']}): label agreement {figures['label_agreement']:.4f} "
                        f"< min_label_agreement={min_label_agreement}")
        elif figures["max_abs_diff"] > tolerance:
            return f"{name}: max |Δ| {figures['max_abs_diff']:.3g} > tolerance={tolerance}"
        return None


class KindRunner:
    """Runs one kind's artifact for `Predictor`, and says how `serve` reads and answers its requests.

    Args:
        path: str. The export folder.
        manifest: dict. Its manifest.
        format: str. The artifact's format.
        artifact: str. The artifact's path (digests already checked).

    Class attributes:
        input_type: `"text"`, `"image"` or `"pair"`: what the CLI's `predict` reads (`--text`,
            `--image`, or `--question` with `--context`).
        input_fields: (plural, singular) JSON fields of a serve request's inputs.
        pair_fields: (plural, singular) fields of the second member of paired inputs (a question
            answerer's contexts), or `()`; the request's items are then `(input, partner)` pairs.
        option_fields: further request fields; `predict_options` those passed on to `predict`.
    """

    input_type = "text"
    input_fields = ("texts", "text")
    pair_fields: tuple[str, ...] = ()
    option_fields: tuple[str, ...] = ()
    predict_options: tuple[str, ...] = ()

    def __init__(self, path: str, manifest: dict, format: str, artifact: str):
        self.path, self.manifest, self.format, self.artifact = path, manifest, format, artifact
        self.label_names = list(manifest.get("label_names") or [])

    def predict(self, inputs, **options) -> dict:
        raise NotImplementedError

    @classmethod
    def parse_items(cls, items: list, field: str, manifest: dict):
        """A request's items → `predict` inputs, or a ValueError (answered 400); default: strings."""
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f'"{field}" must be a list of strings ("{cls.input_fields[1]}" a string)')
        return items

    @classmethod
    def check_options(cls, options: dict, manifest: dict) -> None:
        """Raises ValueError for a bad request option."""

    @classmethod
    def format_predictions(cls, inputs, outputs: dict, options: dict, label_names: Sequence[str]) -> list[dict]:
        """`predict` outputs → one JSON-ready dict per input."""
        raise NotImplementedError

    @classmethod
    def health(cls, manifest: dict) -> dict:
        """Kind-specific entries of serve's `/health` answer."""
        return {}


KINDS: dict[str, type[ExportKind]] = {}


def register_kind(kind: type[ExportKind]) -> type[ExportKind]:
    """Registers an `ExportKind` under its `name` (usable as a class decorator). `kind_of` tries
    kinds in reverse registration order, so a later, more specific kind wins."""
    KINDS[kind.name] = kind
    return kind


def kind_of(model, **options) -> ExportKind:
    """The `ExportKind` instance for `model`, or a ValueError naming the supported kinds.

    `options` are kind-specific export settings (`max_length` for causal LMs, `top_k` for masked
    LMs); an option the model's kind does not take is an error.
    """
    for kind in reversed(list(KINDS.values())):
        if kind.matches(model):
            accepted = inspect.signature(kind.__init__).parameters
            unknown = sorted(set(options) - set(accepted))
            if unknown:
                raise ValueError(f"Export options {unknown} do not apply to a {kind.name!r} model; it takes "
                                 f"{sorted(set(accepted) - {'self', 'model'}) or 'none'}.")
            return kind(model, **options)
    raise ValueError(f"`model` of type {type(model).__name__} has no exporter; supported kinds: {list(KINDS)}.")


def kind_named(name: str) -> type[ExportKind]:
    """The registered `ExportKind` class called `name` (a manifest's `kind`), or a ValueError."""
    if name not in KINDS:
        raise ValueError(f"No export kind {name!r} is registered (known: {list(KINDS)}); the folder was written by "
                         "a newer keras_ptft or another tool.")
    return KINDS[name]


# === Shared parity figures ===


def probability_parity(predict: Callable, reference: Callable, data, batch_size: int) -> dict:
    """Max |Δ| of `probabilities` and the argmax agreement (per example, or per pixel for per-pixel
    outputs) between an artifact's `predict` and the Keras model's `reference`, batch by batch."""
    batches = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
    expected = np.concatenate([reference(batch)["probabilities"] for batch in batches])
    exported = np.concatenate([predict(batch)["probabilities"] for batch in batches])
    return {"max_abs_diff": float(np.max(np.abs(exported - expected))),
            "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
            "examples": len(data)}
