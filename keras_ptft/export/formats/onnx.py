"""ONNX artifacts via Keras' own exporter (`model.export(path, format="onnx")`), run with onnxruntime.

On the TensorFlow backend Keras converts with tf2onnx, which has no rule for TensorFlow's `Erfc`
op: the exact GELU of our transformer layers (`0.5 * x * erfc(-x / sqrt(2))`) then lands in the
ONNX graph as an unknown `Erfc` node, and onnxruntime refuses the file ("No Op registered for Erfc
with domain_version of 15"). `_register_erfc` teaches tf2onnx `erfc(x) = 1 - erf(x)` (ONNX has
`Erf` since opset 9), so Keras' exporter is used unchanged.

Text classifiers export their tokenized inputs (`token_ids`, `segment_ids`, `padding_mask`,
int32 `[batch, sequence_length]`), as TFLite flavour (a): ONNX has no WordPiece op, so the
tokenizer runs in Python (`Predictor`) or in the app, from the exported `vocabulary.txt`. Image
classifiers take uint8 `images` `[batch, height, width, channels]`, cast to float inside.
Outputs: `probabilities` (float32 `[batch, classes]`) and `labels` (int64 `[batch]`).
"""

from __future__ import annotations

import functools
import os
import tempfile

import keras
import numpy as np

from keras_ptft.export.base import kind_of

# Newest opset tf2onnx 1.17 fully supports; onnxruntime >= 1.16 runs it.
OPSET = 17


def write_onnx(model, file: str | os.PathLike, opset: int = OPSET, input_specs: list | None = None,
               output_name: str = "probabilities", argmax: bool = True) -> dict:
    """Writes `model` as one `.onnx` file with named inputs and `probabilities` / `labels` outputs.

    Args:
        model: a built Keras model whose export kind has ONNX inputs (`onnx_input_specs()`): a
            text or image classifier or an image segmenter.
        file: str. The `.onnx` file to write.
        opset: int. The ONNX opset.
        input_specs: list of `tf.TensorSpec` or None. The graph's inputs; None asks the model's
            export kind (`kind_of(model).onnx_input_specs()`). uint8 inputs are cast to float32
            inside the graph, so apps feed raw pixels.
        output_name: str. The name of the model's output in the file.
        argmax: bool. Add a `labels` output, the argmax of the output's last axis (classifiers).

    Returns:
        The manifest entry: inputs, outputs, opset and runtime.

    Example:
    ```python
    write_onnx(classifier, "saved_models/sentiment/onnx/model.onnx")
    OnnxRunner("saved_models/sentiment/onnx/model.onnx")(token_ids=ids, segment_ids=..., padding_mask=...)
    ```
    """
    import onnx
    from onnx import helper

    if input_specs is None:
        kind = kind_of(model)
        if not hasattr(kind, "onnx_input_specs"):
            raise ValueError(f"ONNX export is not available for a {kind.name!r} model.")
        input_specs = kind.onnx_input_specs()
    specs = list(input_specs)
    _register_erfc()
    file = os.fspath(file)
    os.makedirs(os.path.dirname(os.path.abspath(file)), exist_ok=True)
    names = [spec.name for spec in specs]

    # Keras' exporter traces `model.call`; a thin functional wrapper gives it named inputs (the
    # text classifier's call takes one dict) and, for images, the uint8 → float32 cast that the
    # SavedModel signature also does, so apps feed raw pixels.
    inputs = [keras.Input(shape=spec.shape[1:], dtype=spec.dtype.name, name=spec.name) for spec in specs]
    if len(inputs) == 1:
        image = inputs[0]
        outputs = model(keras.ops.cast(image, "float32") if specs[0].dtype.name == "uint8" else image,
                        training=False)
    else:
        outputs = model(dict(zip(names, inputs)), training=False)
    wrapper = keras.Model(inputs, outputs, name="onnx_export")

    with tempfile.TemporaryDirectory() as scratch:
        raw = os.path.join(scratch, "model.onnx")
        # One positional argument: the list of inputs (Keras' convention for multi-input models).
        signature = [specs] if len(specs) > 1 else specs
        wrapper.export(raw, format="onnx", input_signature=signature, opset_version=opset, verbose=False)
        graph_model = onnx.load(raw)
    graph = graph_model.graph
    if len(graph.output) != 1:
        raise ValueError(f"Expected the exported graph to have one output, found {len(graph.output)}.")
    # tf2onnx names the output after the traced tensor ("output_0"); rename it and add the argmax
    # so the file has the same named outputs as the SavedModel and TFLite artifacts.
    old = graph.output[0].name
    for node in graph.node:
        node.output[:] = [output_name if name == old else name for name in node.output]
        node.input[:] = [output_name if name == old else name for name in node.input]
    graph.output[0].name = output_name
    # A segmenter's probabilities are (batch, height, width, classes): one label per pixel.
    label_dims = ["batch", *[int(d) for d in wrapper.output.shape[1:-1]]]
    if argmax:
        graph.node.append(helper.make_node("ArgMax", [output_name], ["labels"], axis=-1, keepdims=0, name="labels"))
        graph.output.append(helper.make_tensor_value_info("labels", onnx.TensorProto.INT64, label_dims))
    for value in graph.input:  # tf2onnx names inputs "token_ids:0"; the TensorSpec names are cleaner.
        clean = value.name.split(":")[0]
        for node in graph.node:
            node.input[:] = [clean if name == value.name else name for name in node.input]
        value.name = clean
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, file)
    return {
        "inputs": {spec.name: f"{spec.dtype.name}[batch, {', '.join(str(d) for d in spec.shape[1:])}]"
                   for spec in specs},
        "outputs": {output_name: f"float32[{', '.join(map(str, label_dims))}, {'classes' if argmax else 'last'}]",
                    **({"labels": f"int64[{', '.join(map(str, label_dims))}]"} if argmax else {})},
        "opset": opset,
        "runtime": "onnxruntime (CPUExecutionProvider)",
    }


class OnnxRunner:
    """Runs an `.onnx` file with onnxruntime; inputs and outputs by name.

    Args:
        path: str. The `.onnx` file.
        threads: int. Intra-op threads (1 makes batch-1 latency comparable with TFLite's).

    Example:
    ```python
    runner = OnnxRunner("saved_models/sentiment/onnx/model.onnx")
    runner(token_ids=ids, segment_ids=segments, padding_mask=mask)["probabilities"]
    ```
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1):
        import onnxruntime

        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No ONNX file at {path!r}.")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types (Fail, InvalidGraph ...)
            raise ValueError(f"{path!r} is not a readable ONNX model (corrupted or truncated?): {error}") from None
        self.input_names = [value.name for value in self.session.get_inputs()]
        self.output_names = [value.name for value in self.session.get_outputs()]
        self._dtypes = {value.name: _NUMPY_TYPES[value.type] for value in self.session.get_inputs()}

    def __call__(self, **inputs) -> dict[str, np.ndarray]:
        missing = sorted(set(self.input_names) - set(inputs))
        if missing:
            raise ValueError(f"Missing ONNX inputs {missing}; the model takes {self.input_names}.")
        feeds = {name: np.asarray(inputs[name], self._dtypes[name]) for name in self.input_names}
        return dict(zip(self.output_names, self.session.run(self.output_names, feeds)))


_NUMPY_TYPES = {"tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(uint8)": np.uint8,
                "tensor(float)": np.float32}


def onnx_parity(file: str | os.PathLike, model, inputs) -> dict:
    """Runs the `.onnx` file and the Keras model on the same model inputs (token dict or uint8 images).

    Returns `{"max_abs_diff": float, "label_agreement": float, "examples": int}`.

    Example:
    ```python
    onnx_parity("saved_models/shapes/onnx/model.onnx", classifier, uint8_images)
    ```
    """
    runner = OnnxRunner(file)
    if isinstance(inputs, dict):
        exported = runner(**inputs)["probabilities"]
        expected = model(inputs, training=False)
    else:
        exported = runner(images=inputs)["probabilities"]
        expected = model(keras.ops.cast(np.asarray(inputs), "float32"), training=False)
    expected = np.asarray(keras.ops.convert_to_numpy(expected), np.float32)
    return {
        "max_abs_diff": float(np.max(np.abs(exported - expected))),
        "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
        "examples": int(len(expected)),
    }


@functools.lru_cache(maxsize=None)
def _register_erfc() -> None:
    """Registers a tf2onnx conversion for TensorFlow's `Erfc` (see the module docstring)."""
    from tf2onnx import utils
    from tf2onnx.handler import tf_op

    @tf_op("Erfc")
    class Erfc:  # noqa: F841  (registered by the decorator)
        @classmethod
        def version_9(cls, ctx, node, **kwargs):
            dtype = ctx.get_dtype(node.input[0])
            one = ctx.make_const(utils.make_name("erfc_one"), np.array(1, utils.map_onnx_to_numpy_type(dtype)))
            shapes, dtypes, output = node.output_shapes, node.output_dtypes, node.output[0]
            ctx.remove_node(node.name)
            erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name, shapes=shapes, dtypes=dtypes)
            ctx.make_node("Sub", [one.output[0], erf.output[0]], outputs=[output], name=node.name,
                          shapes=shapes, dtypes=dtypes)
