"""TFLite/LiteRT artifacts: conversion (float32, float16, dynamic-range or full int8) and running."""

from __future__ import annotations

import os
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf


QUANTIZATIONS = (None, "float16", "dynamic_int8", "int8")
# How many representative examples calibrate full-int8 activations; TFLite's guide suggests 100-500.
CALIBRATION_EXAMPLES = 200


def token_model(kind, quantization=None, representative_data=None) -> bytes:
    """A TFLite model taking an `ExportKind`'s tokenized inputs (`kind.token_input_specs()`).

    An app tokenizes with its own tokenizer and the exported vocabulary; calibration data (raw
    inputs) is tokenized with `kind.preprocess`.
    """
    specs = kind.token_input_specs()
    names = list(specs)

    def serve(*inputs):
        features = dict(zip(names, inputs))
        return kind.outputs_from_model(kind.model(features, training=False))

    function = tf.function(serve, input_signature=[specs[name] for name in names], autograph=False)

    def calibration():
        for example in list(representative_data)[:CALIBRATION_EXAMPLES]:
            features = kind.preprocess(tf.constant([example]))
            yield {name: np.asarray(features[name], np.int32) for name in names}

    return convert(function, kind.model, quantization, calibration if representative_data is not None else None)


def write_tflite(file: str, blob: bytes) -> None:
    """Writes a converted model's bytes, creating the `tflite/` folder."""
    os.makedirs(os.path.dirname(file), exist_ok=True)
    with open(file, "wb") as handle:
        handle.write(blob)


def convert(function, model, quantization, calibration: Callable[[], Iterable] | None = None,
            custom_ops: bool = False) -> bytes:
    """Converts a `tf.function` (no arguments left to trace) to TFLite bytes.

    Args:
        function: a `tf.function` with an input signature, returning a dict of named outputs.
        model: the Keras model (or layer) whose variables the function reads.
        quantization: None, `"float16"`, `"dynamic_int8"` or `"int8"` (needs `calibration`).
        calibration: a generator function yielding input dicts, for `"int8"`.
        custom_ops: allow custom ops (the tensorflow-text tokenizer ops).
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = function.get_concrete_function()
    # Freeze the Keras weights into constants first. Converted with live resource variables, the
    # model reads Keras variables that TFLite never initializes (READ_VARIABLE fails, or silently
    # yields NaN); frozen, there is nothing left to initialize.
    frozen = convert_variables_to_constants_v2(concrete)
    output_names = sorted(concrete.structured_outputs)
    input_specs = concrete.structured_input_signature[0]

    # Freezing flattens the outputs to a list; re-wrap so the TFLite signature keeps the names.
    def named(*inputs):
        return dict(zip(output_names, frozen(*inputs)))

    named = tf.function(named, input_signature=list(input_specs), autograph=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([named.get_concrete_function()], model)
    converter.experimental_enable_resource_variables = True
    if custom_ops:
        converter.allow_custom_ops = True
    if quantization == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "dynamic_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantization == "int8":
        # Weights and activations in int8 where TFLite has int8 kernels; inputs/outputs stay
        # int32 ids and float probabilities so the signature does not change.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration is None:
            raise ValueError("`quantization='int8'` needs calibration data (`representative_data`).")
        converter.representative_dataset = calibration
        return _int8_with_float_sentinels(converter)
    return converter.convert()


# A calibrated int8 scale above this means the tensor's range is set by a sentinel, not by data.
SENTINEL_SCALE = 1e3


def _int8_with_float_sentinels(converter) -> bytes:
    """Full int8, except the tensors whose range is set by a sentinel value, kept in float.

    Keras' masked softmax writes -1e9 at padded positions (`keras.layers.Softmax`), so the
    calibrated int8 range of the attention scores is [-1e9, max]: scale ~4e6, every real score
    rounds to the zero point and attention becomes uniform over the real tokens. That, not the
    calibration size nor LayerNorm/GELU/softmax kernels, is what cost full int8 ~12 points of label
    agreement on SST-2 (benchmarks/bench_export.py; the TFLite quantization debugger shows the
    `SelectV2` before each `Softmax` with scale 3.9e6). The fix is TFLite's selective quantization:
    find those tensors in a first int8 conversion and keep them, and the ops reading them, in float.
    """
    from ai_edge_litert import interpreter as litert

    first = converter.convert()
    interpreter = litert.Interpreter(model_content=first)
    tensors = interpreter.get_tensor_details()
    sentinels = {tensor["index"] for tensor in tensors
                 if tensor["dtype"] == np.int8 and tensor["quantization"][0] > SENTINEL_SCALE}
    if not sentinels:
        return first
    # Denylist by output tensor name: the op producing a sentinel tensor and every op reading one.
    nodes = set()
    for op in interpreter._get_ops_details():  # no public API lists ops with their tensors
        if sentinels & set(op["outputs"]) or sentinels & set(op["inputs"]):
            nodes.update(tensors[index]["name"] for index in op["outputs"])
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=sorted(nodes))
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options)
    return debugger.get_nondebug_quantized_model()


class TFLiteRunner:
    """Runs a `.tflite` file's `serving_default` signature, with the tensorflow-text ops linked in.

    Args:
        path: str. The `.tflite` file.

    Example:
    ```python
    runner = TFLiteRunner("saved_models/sentiment/tflite/model_text.tflite")
    runner(texts=np.array(["a fine film"]))["probabilities"]
    ```
    """

    def __init__(self, path: str | os.PathLike):
        from ai_edge_litert import interpreter as litert
        from tensorflow_text import tflite_registrar

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No TFLite file at {path!r}.")
        try:
            self.interpreter = litert.InterpreterWithCustomOps(
                custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS, model_path=path, num_threads=1
            )
            self.runner = self.interpreter.get_signature_runner("serving_default")
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"{path!r} is not a readable TFLite model (corrupted or truncated?): {error}") from None
        self.input_names = list(self.interpreter.get_signature_list()["serving_default"]["inputs"])

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        return self.runner(**inputs)
