"""The older image-classifier export entry point, kept as a thin wrapper over `export()`."""

from __future__ import annotations

import os

import numpy as np

from keras_ptft.export.saved_model import SERVING_VERSION


def export_image_classifier(classifier, path: str | os.PathLike, overwrite: bool = True, onnx: bool = False,
                            tolerance: float = 1e-4) -> str:
    """Exports an image classifier's SavedModel (and ONNX file) and returns the SavedModel's path.

    Deprecated: call `keras_ptft.export.export(classifier, path, formats=[...])`, which this
    function now is: `export(classifier, path, formats=["saved_model"] + (["onnx"] if onnx else []),
    overwrite=overwrite, tolerance=tolerance)`. The folder is `export()`'s: `path/1/` (the
    SavedModel: uint8 `images` in; `probabilities`, `labels`, `label_names` out), `path/onnx/model.onnx`,
    `path/model.keras` and `path/manifest.json` (inputs under `raw_input`, parity figures per
    artifact under `artifacts`). Every artifact is verified against the Keras model.

    Args:
        classifier: a `keras_ptft.recipes.ImageClassifier`.
        path: str. The export folder, e.g. `"saved_models/shapes"`.
        overwrite: bool. Replace an existing folder at `path`.
        onnx: bool. Also write the ONNX file (needs the `onnx` extra).
        tolerance: float. Largest allowed |Δ| of the probabilities; above it the export fails with
            `ExportCheckFailed` and writes nothing.

    Returns:
        The path of the SavedModel (`path/1`).

    Example:
    ```python
    export_image_classifier(classifier, "saved_models/shapes")   # prefer kp.export.export(...)
    served = tf.saved_model.load("saved_models/shapes/1").signatures["serving_default"]
    served(images=tf.constant(uint8_images))["probabilities"]
    ```
    """
    from keras_ptft.export.export import export
    from keras_ptft.export.image_kind import ImageClassifierKind

    if not ImageClassifierKind.matches(classifier):
        raise ValueError(f"`classifier` must be a keras_ptft.recipes.ImageClassifier, received "
                         f"{type(classifier).__name__}; `keras_ptft.export.export` handles the other kinds.")
    formats = ["saved_model", "onnx"] if onnx else ["saved_model"]
    path = export(classifier, path, formats=formats, overwrite=overwrite, tolerance=tolerance)
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
