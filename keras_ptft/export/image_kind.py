"""Export of a `keras_ptft.recipes.ImageClassifier` through `export()`: SavedModel and TFLite.

Both artifacts take uint8 images `(batch, height, width, channels)` (pixels are scaled inside the
model, as in Keras) and return `probabilities` and `labels`; the SavedModel also `label_names`.
TFLite comes as float32, float16, dynamic-range int8, or full int8 calibrated on
`representative_data` images. The input stays uint8 and the output float probabilities in every
flavour, so an app never needs the quantization parameters.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.kinds import ExportKind, register_kind


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

    def write_artifact(self, name, target, quantization, representative_data) -> dict | None:
        if name == "onnx":
            return None  # the generic writer: export/onnx.py handles image classifiers
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

        from keras_ptft.export.tflite import CALIBRATION_EXAMPLES, _convert

        function = tf.function(self.serve, input_signature=[self.raw_input_spec()], autograph=False)

        def calibration():
            for image in representative_data[:CALIBRATION_EXAMPLES]:
                yield {"images": image[None]}

        blob = _convert(function, self.model, quantization,
                        calibration if representative_data is not None else None, custom_ops=False)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(blob)
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

    def verify_artifacts(self, path, data, formats, batch_size) -> dict:
        from keras_ptft.export.predictor import Predictor

        batches = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
        expected = np.concatenate([self.reference(batch)["probabilities"] for batch in batches])
        results = {}
        for name in formats:
            predictor = Predictor(path, format=name)
            exported = np.concatenate([predictor.predict(batch)["probabilities"] for batch in batches])
            results[name] = {"max_abs_diff": float(np.abs(exported - expected).max()),
                             "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
                             "examples": len(data)}
        return results


class ImageClassifierRunner:
    """Runs an image-classifier export (SavedModel or TFLite) on uint8 images; used by `Predictor`."""

    def __init__(self, path: str, manifest: dict, format: str, artifact: str):
        self.image_shape = tuple(manifest["raw_input"]["images"]["shape"][1:])
        self.label_names = list(manifest["label_names"])
        if format == "saved_model":
            signature = tf.saved_model.load(artifact).signatures["serving_default"]
            self._run = lambda images: {k: v.numpy() for k, v in signature(images=tf.constant(images)).items()}
        elif format == "onnx":
            from keras_ptft.export.onnx import OnnxRunner

            runner = OnnxRunner(artifact)
            self._run = lambda images: runner(images=images)
        else:
            from keras_ptft.export.tflite import TFLiteRunner

            runner = TFLiteRunner(artifact)
            self._run = lambda images: runner(images=images)

    def predict(self, images) -> dict:
        images = check_images(images, self.image_shape, "images")
        outputs = self._run(images)
        labels = np.asarray(outputs["labels"]).astype(np.int64)
        return {"probabilities": np.asarray(outputs["probabilities"], np.float32), "labels": labels,
                "label_names": [self.label_names[i] for i in labels]}
