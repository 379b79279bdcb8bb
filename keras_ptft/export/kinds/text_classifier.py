"""Export of a `keras_ptft.recipes.TextClassifier`: raw strings → `probabilities` and `labels`.

Artifacts: SavedModel `NAME/1/` (tokenizer inside; `serving_default` takes `texts`,
`serving_tokens` the token ids), TFLite `tflite/model.tflite` (token ids in),
`tflite/model_text.tflite` (raw strings in: tensorflow-text's FastBertTokenizer inside, see
`text_ops.py`) and ONNX `onnx/model.onnx` (token ids in). The token-id artifacts are tokenized
with the exported `vocabulary.txt` and the manifest's preprocessing settings.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, probability_parity, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature, write_saved_model
from keras_ptft.export.kinds.common import class_outputs, class_predictions, token_runner
from keras_ptft.validation import check_texts
from keras_ptft.export.kinds.text_ops import FastBertPacker, check_fast_tokenizer_compatible

TOKEN_NAMES = ("token_ids", "segment_ids", "padding_mask")
TOKEN_NOTE = "Tokenize with vocabulary.txt and the manifest's preprocessing settings."
# Texts to compare on when the caller gives none: English, accented Latin and Chinese, short and
# long (longer than any test sequence length, so truncation is exercised too).
PROBE_TEXTS = [
    "a fine, moving film",
    "The plot is dull and the acting is worse!",
    "Un café crème, s'il vous plaît — très naïf.",
    "Über-schön: Ärger, Öl und Straße.",
    "这部电影很好看",
    "我不喜欢这个酒店, the room was dirty.",
    "it's not bad... actually it's (quite) good? 10/10",
    " ".join(["long"] * 300),
    "",
]


def text_model(kind, quantization=None, representative_data=None) -> bytes:
    """A TFLite model taking raw strings: the tokenizer runs inside via tensorflow-text ops.

    Run it with `ai_edge_litert.interpreter.InterpreterWithCustomOps` and
    `tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS` (see `TFLiteRunner`).
    """
    preprocessor = kind.preprocessor
    check_fast_tokenizer_compatible(preprocessor)
    if quantization == "int8":
        # TFLite's calibrator runs the float model without the tensorflow-text custom ops, so a
        # string-input graph cannot be calibrated.
        raise ValueError(
            "`quantization='int8'` (full integer) is not available for format 'tflite_text' "
            "(the calibrator cannot run the tokenizer op); use 'dynamic_int8' for it, or 'int8' "
            "with format 'tflite'."
        )
    packer = FastBertPacker(preprocessor.vocabulary, preprocessor.sequence_length, preprocessor.lowercase)

    def serve(texts):
        return kind.outputs_from_model(kind.model(packer(texts), training=False))

    function = tf.function(serve, input_signature=[kind.raw_input_spec()], autograph=False)
    return tflite.convert(function, kind.model, quantization, None, custom_ops=True)


def saved_model_parity(saved_model_path: str, classifier, texts) -> dict:
    """Runs a text classifier's SavedModel (plain `tf.saved_model.load`) and the Keras model on the same texts.

    Returns `{"max_abs_diff": float, "label_agreement": float, "examples": int}`.

    Example:
    ```python
    saved_model_parity("saved_models/sentiment/1", classifier, ["a fine film"])
    ```
    """
    serving = load_signature(os.fspath(saved_model_path))
    texts = check_texts(texts, "texts")
    exported = serving(texts=tf.constant(texts))["probabilities"].numpy()
    expected = classifier.predict(texts, verbose=0)
    return {"max_abs_diff": float(np.max(np.abs(exported - expected))),
            "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
            "examples": len(texts)}


class TextClassifierRunner(KindRunner):
    """Runs a text-classifier export (SavedModel, TFLite text or token ids, ONNX) on raw strings."""

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        if format == "saved_model":
            serving = load_signature(artifact)
            self._run = lambda texts: {k: v.numpy() for k, v in serving(texts=tf.constant(texts, tf.string)).items()}
        elif format == "tflite_text":
            runner = tflite.TFLiteRunner(artifact)
            self._run = lambda texts: runner(texts=np.array(texts, dtype=object))
        else:  # token ids in: the Keras tokenizer, rebuilt from the export's vocabulary and settings
            from keras_ptft.data.preprocessing import BertPreprocessor

            settings = manifest["preprocessing"]
            preprocessor = BertPreprocessor(os.path.join(path, manifest["vocabulary_file"]),
                                            sequence_length=settings["sequence_length"],
                                            lowercase=settings["lowercase"], strip_accents=settings["strip_accents"])
            runner = token_runner(format, artifact)
            self._run = lambda texts: runner(**{name: np.asarray(value, np.int32)
                                                for name, value in preprocessor(texts).items()})

    def predict(self, texts) -> dict:
        texts = check_texts(texts, "texts", allow_empty=True)
        if not texts:
            return {"probabilities": np.zeros((0, len(self.label_names)), np.float32),
                    "labels": np.zeros((0,), np.int64), "label_names": []}
        outputs = self._run(texts)
        labels = np.asarray(outputs["labels"]).astype(np.int64)
        return {"probabilities": np.asarray(outputs["probabilities"], np.float32), "labels": labels,
                "label_names": [self.label_names[i] for i in labels]}

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return class_predictions(outputs)


@register_kind
class TextClassifierKind(ExportKind):
    """`keras_ptft.recipes.TextClassifier`: raw strings → `probabilities` and `labels`.

    Args:
        model: the `TextClassifier` (with its preprocessor).

    Example:
    ```python
    kp.export.export(classifier, "saved_models/sentiment", formats=["saved_model", "tflite_text"])
    kp.export.Predictor("saved_models/sentiment").predict(["a fine film"])["label_names"]
    ```
    """

    name = "text_classifier"
    formats = ("saved_model", "tflite", "tflite_text", "onnx")
    # ONNX is left out of the default because its converter is an optional extra.
    default_formats = ("saved_model", "tflite", "tflite_text")
    runner = TextClassifierRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.recipes.text_classifier import TextClassifier

        return isinstance(model, TextClassifier)

    def __init__(self, model):
        super().__init__(model)
        if model.preprocessor is None:
            raise ValueError("`model` has no preprocessor; a text classifier needs one to export a raw-string "
                             "serving signature.")
        self.preprocessor = model.preprocessor
        self.label_names = model.label_names or [str(i) for i in range(model.num_classes)]

    # === Inputs and outputs, for the format writers ===

    def raw_input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name="texts")

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        length = self.preprocessor.sequence_length
        return {name: tf.TensorSpec([None, length], tf.int32, name=name) for name in TOKEN_NAMES}

    def onnx_input_specs(self) -> list[tf.TensorSpec]:
        return list(self.token_input_specs().values())

    def preprocess(self, raw):
        return self.preprocessor(raw)

    def outputs_from_model(self, probabilities):
        return class_outputs(probabilities)

    # === Artifacts ===

    def check_data(self, data, argument: str) -> list[str]:
        return check_texts(data, argument)

    def probe_data(self) -> list[str]:
        return PROBE_TEXTS

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "saved_model":
            return write_saved_model(self, target)
        if name == "onnx":
            from keras_ptft.export.formats.onnx import write_onnx

            # Always float32: `quantization` applies to the TFLite artifacts only.
            return {**write_onnx(self.model, target, input_specs=self.onnx_input_specs()), "tokenizer_note": TOKEN_NOTE}
        entry = {"signature": "serving_default", "quantization": quantization}
        if name == "tflite":
            blob = tflite.token_model(self, quantization, representative_data)
            entry["inputs"] = {spec_name: f"int32[batch, {spec.shape[1]}]"
                               for spec_name, spec in self.token_input_specs().items()}
            entry["tokenizer_note"] = TOKEN_NOTE
        else:
            blob = text_model(self, quantization, representative_data)
            entry["inputs"] = {"texts": "string[batch]"}
            entry["runtime"] = ("ai_edge_litert InterpreterWithCustomOps with "
                                "tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS")
            entry["tokenizer_note"] = ("FastBertTokenizer: equal to the Keras tokenizer on English, accented and "
                                       "Chinese text; may differ on non-ASCII spaces, invisible format characters "
                                       "and compatibility characters (NFKC).")
        tflite.write_tflite(target, blob)
        return entry

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
                "special_tokens": {name: int(getattr(self.preprocessor, f"{name}_token_id"))
                                   for name in ("pad", "unk", "cls", "sep", "mask")},
                "packing": "[CLS] tokens [SEP] [PAD]...; segment_ids 0; padding_mask 1 on tokens",
            },
            "raw_input": {"texts": "string[batch]"},
            "outputs": {"probabilities": f"float32[batch, {len(self.label_names)}]", "labels": "int64[batch]"},
        }

    def files(self) -> dict[str, str]:
        return {"vocabulary.txt": "\n".join(self.preprocessor.vocabulary) + "\n"}

    # === Parity ===

    def reference(self, texts) -> dict[str, np.ndarray]:
        """The Keras model's probabilities on raw texts."""
        # A direct call, not `predict`: `predict` builds a tf.data pipeline and retraces for
        # every new batch size, seconds per call for a handful of texts.
        features = self.preprocessor(list(texts))
        probabilities = np.asarray(keras.ops.convert_to_numpy(self.model(features, training=False)), np.float32)
        return {"probabilities": probabilities, "labels": probabilities.argmax(-1)}

    def parity(self, predict, data, batch_size) -> dict:
        return probability_parity(predict, self.reference, data, batch_size)
