"""Small helpers shared by the kinds (input rules live in `keras_ptft.validation`)."""

from __future__ import annotations

import numpy as np


def token_ids(tokenizer, text: str) -> list[int]:
    """The ids of one text from a keras-hub tokenizer (a tensor on TensorFlow, a list elsewhere)."""
    ids = tokenizer(text)
    return np.asarray(ids.numpy() if hasattr(ids, "numpy") else ids).reshape(-1).astype(int).tolist()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def class_outputs(probabilities) -> dict:
    """A classifier's named graph outputs: float32 `probabilities` and their argmax `labels`."""
    import tensorflow as tf

    probabilities = tf.cast(probabilities, tf.float32)
    return {"probabilities": probabilities, "labels": tf.argmax(probabilities, axis=-1)}


def class_predictions(outputs: dict) -> list[dict]:
    """A classifier's `predict` outputs as one JSON-ready dict per input (serve, the CLI)."""
    return [{"label": int(label), "label_name": name, "probabilities": [float(p) for p in probabilities]}
            for label, name, probabilities in zip(outputs["labels"], outputs["label_names"], outputs["probabilities"])]


def token_runner(format: str, artifact: str):
    """The runner of a token-ids-in artifact (`"onnx"` or `"tflite"`): called with int32 inputs by name."""
    if format == "onnx":
        from keras_ptft.export.formats.onnx import OnnxRunner

        return OnnxRunner(artifact)
    from keras_ptft.export.formats.tflite import TFLiteRunner

    return TFLiteRunner(artifact)
