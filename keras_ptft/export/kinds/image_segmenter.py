"""Export of a `keras_ptft.recipes.ImageSegmenter` through `export()`: SavedModel, TFLite, ONNX.

Every artifact takes uint8 images `(batch, height, width, channels)` (pixels are scaled inside
the model, as in Keras) and returns per-pixel `probabilities` `(batch, height, width, classes)`
and `labels` `(batch, height, width)` (int64, the argmax): a label mask per image. The class names
live in the manifest (`label_names`), not in the graph. TFLite comes as float32, float16,
dynamic-range int8, or full int8 calibrated on `representative_data` images; the input stays
uint8 and the probabilities float in every flavour.

`verify` reports, per artifact, the max |Δ| of the probabilities and the pixel label agreement
(the fraction of pixels whose argmax class equals the Keras model's); `export` holds them to
`tolerance` (float artifacts) and `min_label_agreement` (quantized ones), as for classifiers.
"""

from __future__ import annotations

import base64
from typing import Sequence

import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, register_kind
from keras_ptft.export.kinds.image_classifier import ImageClassifierKind, ImageClassifierRunner, check_images


class ImageSegmenterRunner(ImageClassifierRunner):
    """Runs an image-segmenter export (SavedModel, TFLite or ONNX) on uint8 images."""

    option_fields = ("mask_format", "return_probabilities")

    def predict(self, images) -> dict:
        images = check_images(images, self.image_shape, "images")
        outputs = self._run(images)
        return {"probabilities": np.asarray(outputs["probabilities"], np.float32),
                "labels": np.asarray(outputs["labels"]).astype(np.int64)}

    @classmethod
    def check_options(cls, options, manifest) -> None:
        if options.get("mask_format", "list") not in ("list", "png"):
            raise ValueError(f'"mask_format" must be "list" or "png", received {options["mask_format"]!r}')
        if not isinstance(options.get("return_probabilities", False), bool):
            raise ValueError('"return_probabilities" must be true or false, received '
                             f'{options["return_probabilities"]!r}')

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        """Per image: the label `mask` (nested lists, or a base64 PNG with `mask_format="png"`),
        `pixel_counts` per class and, with `return_probabilities`, the per-pixel probabilities."""
        predictions = []
        for row, counts in enumerate(pixel_counts(outputs["labels"], label_names)):
            mask = outputs["labels"][row]
            prediction = {"mask": base64.b64encode(encode_mask_png(mask)).decode("ascii")
                          if options.get("mask_format") == "png" else mask.tolist(),
                          "pixel_counts": counts}
            if options.get("return_probabilities"):
                prediction["probabilities"] = outputs["probabilities"][row].tolist()
            predictions.append(prediction)
        return predictions


@register_kind
class ImageSegmenterKind(ImageClassifierKind):
    """`keras_ptft.recipes.ImageSegmenter`: uint8 images → per-pixel `probabilities` and `labels`.

    Everything but the output shapes is the image classifier's (`ImageClassifierKind`): the same
    uint8 signature, TFLite quantization flavours and parity check, which compares every pixel.

    Args:
        model: the `ImageSegmenter`.
        label_names: list of str or None. Names of the classes (background included) for the
            manifest; None uses the model's `label_names` if it has them, else "0", "1", ...

    Example:
    ```python
    kp.export.export(segmenter, "saved_models/shapes_seg", label_names=["background", *data.class_names])
    kp.export.Predictor("saved_models/shapes_seg").predict(images[:4])["labels"]   # (4, H, W) masks
    ```
    """

    name = "image_segmenter"
    named_labels = False
    runner = ImageSegmenterRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.recipes.image_segmenter import ImageSegmenter

        return isinstance(model, ImageSegmenter)

    def __init__(self, model, label_names: Sequence[str] | None = None):
        ExportKind.__init__(self, model)  # ImageClassifierKind's reads `model.label_names`, which segmenters lack
        label_names = label_names if label_names is not None else getattr(model, "label_names", None)
        if label_names is None:
            label_names = [str(i) for i in range(model.num_classes)]
        if isinstance(label_names, str) or not all(isinstance(name, str) for name in label_names) \
                or len(label_names) != model.num_classes:
            raise ValueError(f"`label_names` must be a list of {model.num_classes} str (one per class, "
                             f"background included), received {label_names!r}.")
        self.label_names = list(label_names)
        self.image_shape = tuple(int(d) for d in model.image_shape)

    def manifest(self) -> dict:
        height, width = self.image_shape[:2]
        return {
            "label_names": self.label_names,
            "raw_input": {"images": {"dtype": "uint8", "shape": [None, *self.image_shape]}},
            "outputs": {"probabilities": f"float32[batch, {height}, {width}, {len(self.label_names)}]",
                        "labels": f"int64[batch, {height}, {width}]"},
            "preprocessing": {"pixels": "uint8 0-255; scaled by 1/255 inside the model"},
            "parity_note": "label_agreement is per pixel: the fraction of pixels with the Keras model's class",
        }


    def parity_failure(self, name, entry, figures, tolerance, min_label_agreement) -> str | None:
        failure = super().parity_failure(name, entry, figures, tolerance, min_label_agreement)
        if failure and entry.get("quantization"):
            # Boundary pixels sit near ties between two classes, so quantization flips more of
            # them than it flips whole-image labels; say so, and what to do.
            failure = failure.replace("label agreement", "pixel label agreement") + (
                " (quantization flips pixels whose classes are nearly tied, mostly on shape boundaries; use "
                "quantization='float16' or 'dynamic_int8', or lower min_label_agreement to accept it)")
        return failure


def pixel_counts(labels: np.ndarray, label_names: Sequence[str]) -> list[dict[str, int]]:
    """{class name: pixels} per label mask of a `(batch, height, width)` batch, every class listed.

    Example:
    ```python
    pixel_counts(predictor.predict(images)["labels"], predictor.label_names)
    # [{"background": 180, "circle": 76}, ...]
    ```
    """
    labels = np.asarray(labels)
    counts = [np.bincount(mask.reshape(-1), minlength=len(label_names)) for mask in labels]
    return [{name: int(count) for name, count in zip(label_names, row)} for row in counts]


def encode_mask_png(mask: np.ndarray) -> bytes:
    """A label mask `(height, width)` as a grayscale PNG whose pixel values are the class ids."""
    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise ValueError(f"A PNG mask holds class ids 0-255, received {mask.min()} to {mask.max()}.")
    return tf.io.encode_png(mask.astype(np.uint8)[..., None]).numpy()
