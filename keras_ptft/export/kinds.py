"""What each kind of model exports: its inputs, outputs and serving functions.

`export()` asks `kind_of(model)` for the `ExportKind` that handles a model and then only talks to
that object, so a new model family (causal LMs, image classifiers) plugs in by subclassing
`ExportKind` and calling `register_kind`, without touching the format writers.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class ExportKind:
    """How one kind of model is exported. Subclasses fill in the methods below.

    Args:
        model: the Keras model to export.

    Example:
    ```python
    kind = kind_of(classifier)      # a TextClassifierKind
    kind.token_input_specs()        # {"token_ids": TensorSpec([None, 128], int32), ...}
    ```
    """

    name = "model"

    def __init__(self, model):
        self.model = model

    @classmethod
    def matches(cls, model) -> bool:
        raise NotImplementedError

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        """The model's own (tokenized) inputs, for token-id artifacts (TFLite flavour a, ONNX)."""
        raise NotImplementedError

    def outputs_from_model(self, model_outputs) -> dict[str, tf.Tensor]:
        """Named serving outputs from the Keras model's raw outputs."""
        raise NotImplementedError

    def preprocess(self, raw: tf.Tensor) -> dict[str, tf.Tensor]:
        """Raw inputs (a string batch) → model inputs, inside a TensorFlow graph."""
        raise NotImplementedError

    def raw_input_spec(self) -> tf.TensorSpec:
        raise NotImplementedError

    def reference(self, raw_inputs) -> dict[str, np.ndarray]:
        """The Keras model's named outputs on raw inputs, for parity checks."""
        raise NotImplementedError

    def manifest(self) -> dict:
        """Kind-specific manifest entries (label names, preprocessing settings ...)."""
        return {}

    def files(self) -> dict[str, str]:
        """Extra files written beside the artifacts: {file name: text}."""
        return {}

    # --- Hooks for kinds whose artifacts are not "raw text in, probabilities out" ---
    # The defaults keep the text-classifier behaviour; causal LMs, masked LMs and image models
    # (export/causal_lm.py, export/masked_lm.py, export/image_kind.py, export/segmenter_kind.py)
    # override them.

    # The formats this kind can write; `export()` rejects the others by name.
    formats: tuple[str, ...] = ("saved_model", "tflite", "tflite_text", "onnx")
    # What `formats=None` writes: ONNX is left out because its converter is an optional extra.
    default_formats: tuple[str, ...] = ("saved_model", "tflite", "tflite_text")

    def probe_data(self):
        """Inputs to verify on when the caller gives none."""
        from keras_ptft.export.verify import PROBE_TEXTS

        return PROBE_TEXTS

    def check_data(self, data, argument: str):
        """Validated example inputs (calibration or verification data), or a ValueError naming `argument`."""
        from keras_ptft.export.export import _check_texts

        return _check_texts(data, argument)

    def write_artifact(self, name: str, target: str, quantization, representative_data) -> dict | None:
        """Writes artifact `name` at `target` and returns its manifest entry; None uses the generic writers."""
        return None

    def verify_artifacts(self, path: str, data, formats, batch_size: int) -> dict | None:
        """Parity figures per format for `verify()`; None uses the generic probability comparison."""
        return None

    def parity_failure(self, name: str, entry: dict, figures: dict, tolerance: float,
                       min_label_agreement: float) -> str | None:
        """Why artifact `name` fails its parity check, or None when it passes."""
        if entry.get("quantization"):
            if figures["label_agreement"] < min_label_agreement:
                return (f"{name} ({entry['quantization']}): label agreement {figures['label_agreement']:.4f} "
                        f"< min_label_agreement={min_label_agreement}")
        elif figures["max_abs_diff"] > tolerance:
            return f"{name}: max |Δ| {figures['max_abs_diff']:.3g} > tolerance={tolerance}"
        return None


class TextClassifierKind(ExportKind):
    """`keras_ptft.recipes.TextClassifier`: raw strings → `probabilities` and `labels`."""

    name = "text_classifier"

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.recipes.text_classifier import TextClassifier

        return isinstance(model, TextClassifier)

    def __init__(self, model):
        super().__init__(model)
        if model.preprocessor is None:
            raise ValueError(
                "`model` has no preprocessor; a text classifier needs one to export a raw-string "
                "serving signature."
            )
        self.preprocessor = model.preprocessor
        self.label_names = model.label_names or [str(i) for i in range(model.num_classes)]

    def raw_input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name="texts")

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        length = self.preprocessor.sequence_length
        return {
            name: tf.TensorSpec([None, length], tf.int32, name=name)
            for name in ("token_ids", "segment_ids", "padding_mask")
        }

    def preprocess(self, raw):
        return self.preprocessor(raw)

    def outputs_from_model(self, probabilities):
        probabilities = tf.cast(probabilities, tf.float32)
        return {"probabilities": probabilities, "labels": tf.argmax(probabilities, axis=-1)}

    def reference(self, raw_inputs) -> dict[str, np.ndarray]:
        # A direct call, not `predict`: `predict` builds a tf.data pipeline and retraces for
        # every new batch size, seconds per call for a handful of texts.
        features = self.preprocessor(list(raw_inputs))
        probabilities = np.asarray(keras.ops.convert_to_numpy(self.model(features, training=False)), np.float32)
        return {"probabilities": probabilities, "labels": probabilities.argmax(-1)}

    def manifest(self) -> dict:
        return {
            "label_names": self.label_names,
            "vocabulary_file": "vocabulary.txt",
            "preprocessing": {
                "tokenizer": "wordpiece",
                "sequence_length": int(self.preprocessor.sequence_length),
                "lowercase": bool(self.preprocessor.lowercase),
                "strip_accents": bool(self.preprocessor.strip_accents),
                "split_on_cjk": True,
                "special_tokens": {
                    name: int(getattr(self.preprocessor, f"{name}_token_id"))
                    for name in ("pad", "unk", "cls", "sep", "mask")
                },
                "packing": "[CLS] tokens [SEP] [PAD]...; segment_ids 0; padding_mask 1 on tokens",
            },
            "raw_input": {"texts": "string[batch]"},
            "outputs": {
                "probabilities": f"float32[batch, {len(self.label_names)}]",
                "labels": "int64[batch]",
            },
        }

    def files(self) -> dict[str, str]:
        return {"vocabulary.txt": "\n".join(self.preprocessor.vocabulary) + "\n"}


KINDS: list[type[ExportKind]] = [TextClassifierKind]


def register_kind(kind: type[ExportKind]) -> type[ExportKind]:
    """Adds an `ExportKind` (first match wins; later registrations are tried first)."""
    KINDS.insert(0, kind)
    return kind


def kind_of(model, **options) -> ExportKind:
    """The `ExportKind` instance for `model`, or a ValueError naming the supported kinds.

    `options` are kind-specific export settings (`max_length` for causal LMs, `top_k` for masked
    LMs); an option the model's kind does not take is an error.
    """
    import inspect

    for kind in KINDS:
        if kind.matches(model):
            accepted = inspect.signature(kind.__init__).parameters
            unknown = sorted(set(options) - set(accepted))
            if unknown:
                raise ValueError(f"Export options {unknown} do not apply to a {kind.name!r} model; it takes "
                                 f"{sorted(set(accepted) - {'self', 'model'}) or 'none'}.")
            return kind(model, **options)
    raise ValueError(
        f"`model` of type {type(model).__name__} has no exporter; supported kinds: "
        f"{[kind.name for kind in KINDS]}."
    )
