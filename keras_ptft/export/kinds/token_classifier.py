"""Export of a `keras_ptft.tasks.TokenClassifier` (NER): raw sentences in, entities out.

Artifacts:
- SavedModel `NAME/1/`, signature `serving_default`: `texts` string[batch] → the entities of each
  text, computed in the graph as `TokenClassifier.predict` computes them: the words and word
  pieces with their offsets (`WordPieceOffsets.tokenize`), `[CLS] pieces [SEP]` rows cut at a word
  boundary, the tag of each word read at its first piece, and entities cut by seqeval's chunk
  rules (`chunk_bounds`). Outputs, padded per batch: `entity_texts`, `entity_labels` (string),
  `entity_starts`, `entity_ends` (int32 character offsets, -1 padding), `entity_count`; per word
  `word_starts`, `word_ends` (character offsets), `word_labels` (`"O"` for a word cut by
  truncation, `""` padding), `word_count`; and the per-piece tag `probabilities`. Signature
  `serving_tokens`: the model's own inputs → `probabilities`, `labels`.
- TFLite `tflite/model.tflite` and ONNX `onnx/model.onnx` (token ids in): `token_ids`,
  `segment_ids`, `padding_mask` int32[batch, sequence_length] → per-piece `probabilities` and
  `labels`. `Predictor` tokenizes and decodes the entities in Python from `vocabulary.txt`. There
  is no string-input TFLite model: the word offsets need tf-text's `regex_split_with_offsets`,
  which TFLite cannot run, and FastBertTokenizer (the text classifier's `tflite_text`) reports no
  word boundaries.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature
from keras_ptft.export.kinds.common import class_outputs, softmax, token_runner
from keras_ptft.export.kinds.text_ops import char_offsets, pack_single_segment, word_pieces
from keras_ptft.validation import check_texts

TOKEN_NAMES = ("token_ids", "segment_ids", "padding_mask")
TOKEN_NOTE = ("Tokenize with vocabulary.txt and the manifest's preprocessing settings (BERT basic splitting "
              "with character offsets, WordPiece), `[CLS] pieces [SEP]` cut at a word boundary.")
PROBE_TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris.",
    "John Smith works for Acme Corp. in New York City, USA",
    "Café crème in Zürich with Zoë.",
    "这部电影很好看 said Li Wei",
    " ".join(["long"] * 300),
    "",
]


def offsets_tokenizer_from(path: str, manifest: dict):
    """The `WordPieceOffsets` of an export folder (its vocabulary file and preprocessing settings)."""
    from keras_ptft.data.token_alignment import WordPieceOffsets

    settings = manifest["preprocessing"]
    return WordPieceOffsets(os.path.join(path, manifest["vocabulary_file"]), lowercase=settings["lowercase"],
                            strip_accents=settings["strip_accents"])


def refuse_int8(kind_name: str, quantization) -> None:
    if quantization == "int8":
        raise ValueError(f"`quantization='int8'` (full integer) is not available for a {kind_name!r} export "
                         "(its calibration would need the tokenizer inside TFLite); use 'dynamic_int8' or 'float16'.")


class WordPieceKind(ExportKind):
    """What the token-classifier and question-answering kinds share: a `WordPieceOffsets`
    tokenizer (the model's `tokenizer`), `vocabulary.txt`, and token-ids-in TFLite/ONNX files."""

    formats = ("saved_model", "tflite", "onnx")
    # ONNX is left out of the default because its converter is an optional extra.
    default_formats = ("saved_model", "tflite")
    onnx_output = ("probabilities", True)  # (name, add the argmax `labels`)

    def __init__(self, model):
        super().__init__(model)
        self.tokenizer = model.tokenizer
        self.sequence_length = int(model.sequence_length)
        self.special = {name: self.tokenizer.token_to_id[name] for name in ("[CLS]", "[SEP]", "[PAD]")}

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        return {name: tf.TensorSpec([None, self.sequence_length], tf.int32, name=name) for name in TOKEN_NAMES}

    def files(self) -> dict[str, str]:
        return {"vocabulary.txt": "\n".join(self.tokenizer.vocabulary) + "\n"}

    def preprocessing(self) -> dict:
        return {"tokenizer": "wordpiece", "sequence_length": self.sequence_length,
                "lowercase": bool(self.tokenizer.lowercase), "strip_accents": bool(self.tokenizer.strip_accents),
                "special_tokens": {name.strip("[]").lower(): int(value) for name, value in self.special.items()}}

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "saved_model":
            return self.write_saved_model(target)
        inputs = {spec_name: f"int32[batch, {self.sequence_length}]" for spec_name in TOKEN_NAMES}
        if name == "onnx":
            from keras_ptft.export.formats.onnx import write_onnx

            output_name, argmax = self.onnx_output
            model = keras.Model(self.model.input, self.outputs_layer()(self.model.output))
            return {**write_onnx(model, target, input_specs=list(self.token_input_specs().values()),
                                 output_name=output_name, argmax=argmax), "tokenizer_note": TOKEN_NOTE}
        refuse_int8(self.name, quantization)
        tflite.write_tflite(target, tflite.token_model(self, quantization, None))
        return {"signature": "serving_default", "quantization": quantization, "inputs": inputs,
                "tokenizer_note": TOKEN_NOTE}

    def write_saved_model(self, folder: str) -> dict:
        model, raw_spec = self.model, self.raw_input_spec()
        archive = keras.export.ExportArchive()
        archive.track(model)

        def serve_tokens(features):
            return self.outputs_from_model(model(features, training=False))

        archive.add_endpoint("serving_default", self.serve_raw, input_signature=raw_spec)
        archive.add_endpoint("serving_tokens", serve_tokens, input_signature=[self.token_input_specs()])
        archive.write_out(folder, verbose=False)
        return {"signatures": {"serving_default": [spec.name for spec in raw_spec],
                               "serving_tokens": list(TOKEN_NAMES)}}


class TokenClassifierRunner(KindRunner):
    """Runs a token-classifier export on raw sentences: per text its entities."""

    predict_options = ("return_probabilities",)

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        self.sequence_length = manifest["preprocessing"]["sequence_length"]
        if format == "saved_model":
            self.signature = load_signature(artifact)
        else:
            self.tokenizer = offsets_tokenizer_from(path, manifest)
            self.runner = token_runner(format, artifact)

    def predict(self, texts, return_probabilities: bool = False):
        """Per text a list of `{"text", "label", "start", "end"}` (character offsets), as
        `TokenClassifier.predict`; with `return_probabilities`, `{"entities": ..., "probabilities":
        per-piece float32 (batch, sequence_length, tags)}`."""
        texts = check_texts(texts, "texts", allow_empty=True)
        if not texts:
            entities, probabilities = [], np.zeros((0, self.sequence_length, len(self.label_names)), np.float32)
        elif self.format == "saved_model":
            outputs = {name: value.numpy() for name, value in self.signature(texts=tf.constant(texts, tf.string)).items()}
            probabilities = outputs["probabilities"]
            entities = [[{"text": outputs["entity_texts"][row, k].decode("utf-8"),
                          "label": outputs["entity_labels"][row, k].decode("utf-8"),
                          "start": int(outputs["entity_starts"][row, k]), "end": int(outputs["entity_ends"][row, k])}
                         for k in range(int(outputs["entity_count"][row]))] for row in range(len(texts))]
        else:
            from keras_ptft.tasks.token_classifier import encode_texts, entities_from_logits

            tokenized, encoded = encode_texts(self.tokenizer, texts, self.sequence_length)
            probabilities = self.runner(**{name: encoded[name] for name in TOKEN_NAMES})["probabilities"]
            entities = entities_from_logits(texts, tokenized, encoded["first_piece"], probabilities, self.label_names)
        if return_probabilities:
            return {"entities": entities, "probabilities": np.asarray(probabilities, np.float32)}
        return entities

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{"entities": entities} for entities in outputs]


@register_kind
class TokenClassifierKind(WordPieceKind):
    """`keras_ptft.tasks.TokenClassifier`: raw sentences → entities with character offsets.

    Args:
        model: the `TokenClassifier`.

    Example:
    ```python
    kp.export.export(tagger, "saved_models/ner")
    kp.export.Predictor("saved_models/ner").predict(["Angela Merkel spoke"])
    # [[{"text": "Angela Merkel", "label": "PER", "start": 0, "end": 13}]]
    ```
    """

    name = "token_classifier"
    runner = TokenClassifierRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.tasks.token_classifier import TokenClassifier

        return isinstance(model, TokenClassifier)

    def __init__(self, model):
        super().__init__(model)
        self.label_names = list(model.label_names)

    def raw_input_spec(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec([None], tf.string, name="texts")]

    def outputs_from_model(self, logits) -> dict:
        return class_outputs(tf.nn.softmax(tf.cast(logits, tf.float32)))

    def outputs_layer(self):
        return keras.layers.Softmax(dtype="float32")

    def serve_raw(self, texts):
        """The entities of raw texts, in TensorFlow ops (see the module docstring)."""
        from keras_ptft.tasks.token_classifier import chunk_bounds, tag_tables, word_tag_ids

        length = self.sequence_length
        word_starts, word_ends, ids, _, _ = word_pieces(self.tokenizer, texts)
        counts = tf.cast(ids.row_lengths(axis=2).to_tensor(0), tf.int32)
        # At least one word column, as `encode_tagged_words` has, so batches of empty texts work too.
        width = tf.maximum(tf.shape(counts)[1], 1)
        counts = tf.pad(counts, [[0, 0], [0, 1]])[:, :width]
        exists = tf.sequence_mask(word_starts.row_lengths(), width)
        ends_at = tf.cumsum(counts, axis=1)  # pieces up to and including each word
        fits = tf.logical_and(exists, ends_at <= length - 2)  # a word is kept whole or not at all
        first_piece = tf.where(fits, 1 + ends_at - counts, -1)
        kept = tf.reduce_max(tf.where(fits, ends_at, 0), axis=1)
        features = pack_single_segment(ids.merge_dims(1, 2), kept, length, self.special["[CLS]"],
                                       self.special["[SEP]"], self.special["[PAD]"])
        logits = tf.cast(self.model(features, training=False), tf.float32)
        tags = tf.cast(word_tag_ids(logits, first_piece), tf.int32)
        starts, ends = chunk_bounds(tags, *tag_tables(self.label_names))

        names = tf.constant(self.label_names)
        types = tf.constant([name[2:] for name in self.label_names])
        word_labels = tf.where(exists, tf.where(tags >= 0, tf.gather(names, tf.maximum(tags, 0)), "O"), "")
        byte_starts = tf.pad(word_starts.to_tensor(-1), [[0, 0], [0, 1]], constant_values=-1)[:, :width]
        byte_ends = tf.pad(word_ends.to_tensor(-1), [[0, 0], [0, 1]], constant_values=-1)[:, :width]
        columns = tf.broadcast_to(tf.range(width)[None, :], tf.shape(tags))
        # The k-th entity start of a row pairs with its k-th end (see `chunk_bounds`).
        first = tf.ragged.boolean_mask(columns, starts).to_tensor(-1)
        last = tf.ragged.boolean_mask(columns, ends).to_tensor(-1)
        found = first >= 0
        entity_start = tf.where(found, tf.gather(byte_starts, tf.maximum(first, 0), batch_dims=1), -1)
        entity_end = tf.where(found, tf.gather(byte_ends, tf.maximum(last, 0), batch_dims=1), -1)
        start_tags = tf.gather(tags, tf.maximum(first, 0), batch_dims=1)
        rows = tf.broadcast_to(texts[:, None], tf.shape(first))
        entity_texts = tf.strings.substr(rows, tf.maximum(entity_start, 0), tf.maximum(entity_end - entity_start, 0))
        return {
            "entity_texts": tf.where(found, entity_texts, ""),
            "entity_labels": tf.where(found, tf.gather(types, tf.maximum(start_tags, 0)), ""),
            "entity_starts": char_offsets(texts, entity_start),
            "entity_ends": char_offsets(texts, entity_end),
            "entity_count": tf.reduce_sum(tf.cast(starts, tf.int32), axis=1),
            "word_starts": char_offsets(texts, byte_starts),
            "word_ends": char_offsets(texts, byte_ends),
            "word_labels": word_labels,
            "word_count": tf.cast(word_starts.row_lengths(), tf.int32),
            "probabilities": tf.nn.softmax(logits),
        }

    def check_data(self, data, argument: str) -> list[str]:
        return check_texts(data, argument, allow_empty=False)

    def probe_data(self) -> list[str]:
        return PROBE_TEXTS

    def manifest(self) -> dict:
        return {
            "label_names": self.label_names,
            "scheme": self.model.scheme,
            "vocabulary_file": "vocabulary.txt",
            "preprocessing": {**self.preprocessing(),
                              "packing": "[CLS] pieces [SEP] [PAD]...; words that do not fit whole are tagged O"},
            "raw_input": {"texts": "string[batch]"},
            "outputs": {"entity_texts": "string[batch, entities]", "entity_labels": "string[batch, entities]",
                        "entity_starts": "int32[batch, entities] (characters)",
                        "entity_ends": "int32[batch, entities] (characters)", "entity_count": "int32[batch]",
                        "word_labels": "string[batch, words]", "word_starts": "int32[batch, words]",
                        "word_ends": "int32[batch, words]", "word_count": "int32[batch]",
                        "probabilities": f"float32[batch, {self.sequence_length}, {len(self.label_names)}]"},
        }

    # === Parity ===

    def reference(self, texts) -> dict:
        """The Keras model's entities and per-piece probabilities on raw texts (a direct call, not
        `predict`, which retraces per batch size)."""
        from keras_ptft.tasks.token_classifier import encode_texts, entities_from_logits

        tokenized, encoded = encode_texts(self.tokenizer, texts, self.sequence_length)
        logits = keras.ops.convert_to_numpy(self.model({name: encoded[name] for name in TOKEN_NAMES}, training=False))
        return {"entities": entities_from_logits(texts, tokenized, encoded["first_piece"], logits, self.label_names),
                "probabilities": softmax(np.asarray(logits, np.float64)).astype(np.float32),
                "padding_mask": encoded["padding_mask"]}

    def parity(self, predict, data, batch_size) -> dict:
        """Max |Δ| of the per-piece probabilities, piece-tag agreement on real pieces, and the
        entity F1 of the artifact's entities against the Keras model's (exact span and label)."""
        diff, agree, pieces, matched, found, expected = 0.0, 0, 0, 0, 0, 0
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            reference, outputs = self.reference(batch), predict(batch, return_probabilities=True)
            mask = reference["padding_mask"].astype(bool)
            diff = max(diff, float(np.abs(outputs["probabilities"] - reference["probabilities"]).max()))
            agree += int((outputs["probabilities"].argmax(-1) == reference["probabilities"].argmax(-1))[mask].sum())
            pieces += int(mask.sum())
            for ours, theirs in zip(outputs["entities"], reference["entities"]):
                ours, theirs = {tuple(sorted(e.items())) for e in ours}, {tuple(sorted(e.items())) for e in theirs}
                matched, found, expected = matched + len(ours & theirs), found + len(ours), expected + len(theirs)
        return {"max_abs_diff": diff, "label_agreement": agree / max(pieces, 1),
                "entity_f1": entity_agreement_f1(matched, found, expected), "examples": len(data)}


def entity_agreement_f1(matched: int, found: int, expected: int) -> float:
    """F1 of `found` predicted items of which `matched` are among `expected` reference items (1.0 when both are empty)."""
    if found == expected == 0:
        return 1.0
    return 2 * matched / (found + expected)
