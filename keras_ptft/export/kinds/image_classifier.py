"""Export of a `keras_ptft.recipes.ImageClassifier`: SavedModel, TFLite and ONNX.

Every artifact takes uint8 images `(batch, height, width, channels)` (pixels are scaled inside the
model, as in Keras) and returns `probabilities` and `labels`; the SavedModel also `label_names`.
TFLite comes as float32, float16, dynamic-range int8, or full int8 calibrated on
`representative_data` images. The input stays uint8 and the output float probabilities in every
flavour, so an app never needs the quantization parameters.
"""

from __future__ import annotations

import base64
import binascii
import os

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, probability_parity, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature


def check_images(images, image_shape, argument: str) -> np.ndarray:
    """`images` as a uint8 batch of `image_shape` images (one image gets a batch axis), or a ValueError."""
    if isinstance(images, (str, bytes)) or not hasattr(images, "__len__") and not hasattr(images, "shape"):
        raise ValueError(f"`{argument}` must be a uint8 array of images {tuple(image_shape)}, "
                         f"received {type(images).__name__}.")
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"`{argument}` must be uint8 images (pixels 0-255), received dtype {images.dtype}.")
    if images.shape == tuple(image_shape):
        images = images[None]
    if images.ndim != 4 or images.shape[1:] != tuple(image_shape) or not len(images):
        raise ValueError(f"`{argument}` must have shape (batch, {', '.join(map(str, image_shape))}), "
                         f"received {images.shape}.")
    return images


def decode_image(item, image_shape, where: str) -> np.ndarray:
    """One request image (base64 PNG/JPEG or nested uint8 lists) as a uint8 `image_shape` array."""
    image_shape = tuple(image_shape)
    if isinstance(item, str):
        import tensorflow as tf

        data = item.split(",", 1)[1] if item.startswith("data:") else item
        try:
            encoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where} is not valid base64 (expected a base64 PNG or JPEG)") from None
        try:
            image = tf.io.decode_image(encoded, expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError(f"{where} is base64 but not a PNG or JPEG image") from None
        source = "decoded image"
    elif isinstance(item, list):
        try:
            image = np.array(item)
        except ValueError:  # ragged rows
            raise ValueError(f"{where} must be nested lists of equal length (height x width x channels)") from None
        if image.dtype.kind not in "iu" or (image.size and (image.min() < 0 or image.max() > 255)):
            raise ValueError(f"{where} must hold integers 0-255 (uint8 pixels)")
        image = image.astype(np.uint8)
        if image.ndim == 2 and image_shape[2] == 1:
            image = image[..., None]
        source = "nested list"
    else:
        raise ValueError(f"{where} must be a base64 PNG/JPEG string or nested lists of uint8, "
                         f"received {type(item).__name__}")
    if image.shape != image_shape:
        if image.ndim == 3 and image.shape[:2] == image_shape[:2]:
            raise ValueError(f"{where} has {image.shape[2]} channel(s); the model takes {image_shape[2]} "
                             f"(image shape {list(image_shape)})")
        raise ValueError(f"{where} ({source}) has shape {list(image.shape)}; the model takes {list(image_shape)}")
    return image


def image_saved_model_parity(classifier, saved_model_path: str | os.PathLike, images: np.ndarray) -> float:
    """Max absolute difference between the Keras classifier's and the SavedModel's probabilities.

    Example:
    ```python
    image_saved_model_parity(classifier, "saved_models/shapes/1", images[:32])
    ```
    """
    served = load_signature(os.fspath(saved_model_path))
    exported = served(images=tf.constant(np.asarray(images, "uint8")))["probabilities"].numpy()
    return float(np.max(np.abs(exported - classifier.predict(images, verbose=0))))


class ImageClassifierRunner(KindRunner):
    """Runs an image-classifier export (SavedModel, TFLite or ONNX) on uint8 images."""

    input_type = "image"
    input_fields = ("images", "image")

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        self.image_shape = tuple(manifest["raw_input"]["images"]["shape"][1:])
        if format == "saved_model":
            signature = load_signature(artifact)
            self._run = lambda images: {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}
            return
        if format == "onnx":
            from keras_ptft.export.formats.onnx import OnnxRunner

            runner = OnnxRunner(artifact)
        else:
            runner = tflite.TFLiteRunner(artifact)
        self._run = lambda images: runner(images=images)

    def predict(self, images) -> dict:
        images = check_images(images, self.image_shape, "images")
        outputs = self._run(images)
        labels = np.asarray(outputs["labels"]).astype(np.int64)
        return {"probabilities": np.asarray(outputs["probabilities"], np.float32), "labels": labels,
                "label_names": [self.label_names[i] for i in labels]}

    @classmethod
    def parse_items(cls, items, field, manifest) -> np.ndarray:
        shape = manifest["raw_input"]["images"]["shape"][1:]
        return np.stack([decode_image(item, shape, f"{field}[{i}]") for i, item in enumerate(items)])

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{"label": int(label), "label_name": name, "probabilities": [float(p) for p in probabilities]}
                for label, name, probabilities in zip(outputs["labels"], outputs["label_names"],
                                                      outputs["probabilities"])]

    @classmethod
    def health(cls, manifest) -> dict:
        return {"image_shape": manifest["raw_input"]["images"]["shape"][1:]}


@register_kind
class ImageClassifierKind(ExportKind):
    """`keras_ptft.recipes.ImageClassifier`: uint8 images → `probabilities` and `labels`.

    Args:
        model: the `ImageClassifier`.

    Example:
    ```python
    kp.export.export(classifier, "saved_models/digits", quantization="int8", representative_data=images[:200])
    kp.export.Predictor("saved_models/digits", format="tflite").predict(images[:4])["labels"]
    ```
    """

    name = "image_classifier"
    formats = ("saved_model", "tflite", "onnx")
    default_formats = ("saved_model", "tflite")
    runner = ImageClassifierRunner
    # The SavedModel also returns each label's name (one string per image; a segmenter would
    # need one per pixel, so it leaves them to the manifest).
    named_labels = True

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.recipes.image_classifier import ImageClassifier

        return isinstance(model, ImageClassifier)

    def __init__(self, model):
        super().__init__(model)
        self.image_shape = tuple(int(d) for d in model.image_shape)
        self.label_names = model.label_names or [str(i) for i in range(model.num_classes)]

    def raw_input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None, *self.image_shape], tf.uint8, name="images")

    def onnx_input_specs(self) -> list[tf.TensorSpec]:
        return [self.raw_input_spec()]

    def outputs_from_model(self, probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"probabilities": probabilities, "labels": tf.argmax(probabilities, axis=-1)}

    def serve(self, images):
        return self.outputs_from_model(self.model(tf.cast(images, tf.float32), training=False))

    def probe_data(self) -> np.ndarray:
        # Without example images: seeded noise plus black, white and half-grey images. A weak
        # check of the numbers (pass real images as `verify_data`), but it runs every artifact.
        noise = np.random.default_rng(0).integers(0, 256, (13, *self.image_shape))
        flat = np.stack([np.full(self.image_shape, value) for value in (0, 128, 255)])
        return np.concatenate([noise, flat]).astype(np.uint8)

    def check_data(self, data, argument: str) -> np.ndarray:
        return check_images(data, self.image_shape, argument)

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "onnx":
            from keras_ptft.export.formats.onnx import write_onnx

            return write_onnx(self.model, target, input_specs=self.onnx_input_specs())
        if name == "saved_model":
            archive = keras.export.ExportArchive()
            archive.track(self.model)
            label_table = tf.constant(self.label_names)

            def serve(images):
                outputs = self.serve(images)
                if self.named_labels:
                    outputs["label_names"] = tf.gather(label_table, outputs["labels"])
                return outputs

            archive.add_endpoint("serving_default", serve, input_signature=[self.raw_input_spec()])
            archive.write_out(target, verbose=False)
            return {"signatures": {"serving_default": "images"}}

        function = tf.function(self.serve, input_signature=[self.raw_input_spec()], autograph=False)

        def calibration():
            for image in representative_data[: tflite.CALIBRATION_EXAMPLES]:
                yield {"images": image[None]}

        blob = tflite.convert(function, self.model, quantization,
                              calibration if representative_data is not None else None)
        tflite.write_tflite(target, blob)
        return {"signature": "serving_default", "quantization": quantization,
                "inputs": {"images": f"uint8[batch, {', '.join(map(str, self.image_shape))}]"}}

    def manifest(self) -> dict:
        return {
            "label_names": self.label_names,
            "raw_input": {"images": {"dtype": "uint8", "shape": [None, *self.image_shape]}},
            "outputs": {"probabilities": f"float32[batch, {len(self.label_names)}]", "labels": "int64[batch]"},
            "preprocessing": {"pixels": "uint8 0-255; scaled by 1/255 inside the model"},
        }

    def reference(self, images) -> dict[str, np.ndarray]:
        probabilities = self.model(tf.cast(images, tf.float32), training=False)
        probabilities = np.asarray(keras.ops.convert_to_numpy(probabilities), np.float32)
        return {"probabilities": probabilities, "labels": probabilities.argmax(-1)}

    def parity(self, predict, data, batch_size) -> dict:
        return probability_parity(predict, self.reference, data, batch_size)
