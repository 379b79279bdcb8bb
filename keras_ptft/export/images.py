"""SavedModel export of an image classifier whose serving signature takes uint8 images."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_ptft.version import __version__

SERVING_VERSION = "1"  # TensorFlow Serving loads NAME/<version>/


def export_image_classifier(classifier, path: str | os.PathLike, overwrite: bool = True, onnx: bool = False,
                            tolerance: float = 1e-4) -> str:
    """Writes `path/1/` (a SavedModel), `path/manifest.json` and, with `onnx=True`, `path/onnx/model.onnx`.

    The `serving_default` signature takes `images`, a uint8 tensor `(batch, height, width,
    channels)`, and returns `probabilities` (float32), `labels` (int64) and `label_names` (string).
    Loading needs TensorFlow only. The folder is staged beside its destination and moved into place
    at the end, so an interrupted export never looks complete.

    Args:
        classifier: a `keras_ptft.recipes.ImageClassifier`.
        path: str. The export folder, e.g. `"saved_models/shapes"`.
        overwrite: bool. Replace an existing folder at `path`.
        onnx: bool. Also write an ONNX file (uint8 `images` in, `probabilities` and `labels` out),
            checked with onnxruntime against Keras on seeded random images; needs the `onnx` extra.
        tolerance: float. Largest allowed |Δ| of the ONNX file's probabilities; above it the
            export fails with `ExportCheckFailed` and writes nothing.

    Returns:
        The path of the SavedModel (`path/1`).

    Example:
    ```python
    export_image_classifier(classifier, "saved_models/shapes")
    served = tf.saved_model.load("saved_models/shapes/1").signatures["serving_default"]
    served(images=tf.constant(uint8_images))["probabilities"]
    ```
    """
    import tensorflow as tf

    if keras.config.backend() != "tensorflow":
        raise RuntimeError(
            "SavedModel export runs on the TensorFlow backend; the current Keras backend is "
            f"{keras.config.backend()!r}. Set KERAS_BACKEND=tensorflow."
        )
    path = os.fspath(path)
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"`path` {path!r} exists and is not empty; pass overwrite=True to replace it.")
    label_names = classifier.label_names or [str(i) for i in range(classifier.num_classes)]
    archive = keras.export.ExportArchive()
    archive.track(classifier)
    label_table = tf.constant(label_names)

    def serve(images):
        probabilities = classifier(tf.cast(images, "float32"), training=False)
        labels = tf.argmax(probabilities, axis=-1)
        return {"probabilities": probabilities, "labels": labels, "label_names": tf.gather(label_table, labels)}

    shape = [None, *classifier.image_shape]
    archive.add_endpoint("serving_default", serve, input_signature=[tf.TensorSpec(shape, tf.uint8, name="images")])
    manifest = {
        "kind": "image_classifier",
        "keras_ptft_version": __version__,
        "inputs": {"images": {"dtype": "uint8", "shape": shape}},
        "outputs": {"probabilities": ["batch", classifier.num_classes], "labels": ["batch"], "label_names": ["batch"]},
        "label_names": label_names,
        "backbone": classifier.backbone.get_config(),
    }
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(os.path.join(staging, SERVING_VERSION), verbose=False)
        if onnx:
            manifest["onnx"] = _write_checked_onnx(classifier, staging, tolerance)
        with open(os.path.join(staging, "manifest.json"), "w") as handle:
            json.dump(manifest, handle, indent=2, default=str)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(path, SERVING_VERSION)


def image_saved_model_parity(classifier, saved_model_path: str | os.PathLike, images: np.ndarray) -> float:
    """Max absolute difference between the Keras classifier's and the SavedModel's probabilities.

    Example:
    ```python
    image_saved_model_parity(classifier, "saved_models/shapes/1", images[:32])
    ```
    """
    import tensorflow as tf

    served = tf.saved_model.load(os.fspath(saved_model_path)).signatures["serving_default"]
    exported = served(images=tf.constant(np.asarray(images, "uint8")))["probabilities"].numpy()
    return float(np.max(np.abs(exported - classifier.predict(images, verbose=0))))


def _write_checked_onnx(classifier, staging: str, tolerance: float) -> dict:
    from keras_ptft.export.export import ExportCheckFailed
    from keras_ptft.export.onnx import onnx_parity, write_onnx

    relative = os.path.join("onnx", "model.onnx")
    entry = {"path": relative, **write_onnx(classifier, os.path.join(staging, relative))}
    # Uniform noise covers the whole uint8 range, which real images may not; 16 keep it fast.
    images = np.random.default_rng(0).integers(0, 256, (16, *classifier.image_shape)).astype("uint8")
    entry["parity"] = onnx_parity(os.path.join(staging, relative), classifier, images)
    entry["bytes"] = os.path.getsize(os.path.join(staging, relative))
    if entry["parity"]["max_abs_diff"] > tolerance:
        raise ExportCheckFailed(f"onnx: max |Δ| {entry['parity']['max_abs_diff']:.3g} > tolerance={tolerance}")
    return entry
