"""Export of a `keras_ptft.tasks.QuestionAnswerer` (extractive QA): (question, context) in, answer out.

Artifacts:
- SavedModel `NAME/1/`, signature `serving_default`: `questions`, `contexts` string[batch] → per
  pair `answer_texts` (string, `""` for no answer), `answer_starts`, `answer_ends` (int32
  character offsets into the context, 0 for no answer), `scores` (float32, the best span's margin
  over the no-answer score), `has_answer` (bool), `windows` and `question_pieces` (int32). All of
  `QuestionAnswerer.predict` runs in the graph: the word pieces with their offsets, the doc-stride
  windows (`[CLS] question [SEP] window [SEP]`, consecutive windows sharing `doc_stride` context
  pieces), the best span of each window within `max_answer_length`, the best span over an
  example's windows against its lowest no-answer score, and the `null_threshold` fixed at export.
  A question that leaves no room for the context, or a `doc_stride` not smaller than that room,
  gives `windows` 0 and no answer; `Predictor` refuses such pairs with a ValueError naming the
  example. Signature `serving_tokens`: the model's own inputs → `logits`.
- TFLite `tflite/model.tflite` and ONNX `onnx/model.onnx` (token ids of windows in): `token_ids`,
  `segment_ids`, `padding_mask` int32[windows, sequence_length] → start/end `logits`
  float32[windows, sequence_length, 2]; `Predictor` windows the pairs and picks the spans in
  Python (`keras_ptft.data.encode_qa`), from `vocabulary.txt`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import KindRunner, register_kind
from keras_ptft.export.formats.saved_model import load_signature
from keras_ptft.export.kinds.common import token_runner
from keras_ptft.export.kinds.text_ops import char_offsets, word_pieces
from keras_ptft.export.kinds.token_classifier import TOKEN_NAMES, WordPieceKind, offsets_tokenizer_from

_LONG = " ".join(["the river flows past the old mill and the town"] * 12)
PROBE_PAIRS = [
    ("Who met Macron?", "Angela Merkel met Emmanuel Macron in Paris."),
    ("Where is the café?", "The café crème is served in Zürich, near the lake."),
    ("What flows?", _LONG + " Rollo built the mill."),
    ("这是什么?", "这部电影很好看"),
]


def check_pairs(pairs, argument: str) -> list[tuple[str, str]]:
    """`(question, context)` pairs as a list of tuples, or a ValueError naming `argument` and the index."""
    from keras_ptft.data.qa_preprocessing import check_qa_pairs

    if isinstance(pairs, (list, tuple)) and len(pairs) == 0:
        return []
    try:
        questions, contexts = check_qa_pairs(pairs)
    except ValueError as error:
        raise ValueError(f"`{argument}`: {error}") from None
    return list(zip(questions, contexts))


def json_score(score: float) -> float | None:
    """A score for JSON: None for -inf (no span found), which JSON cannot hold."""
    return float(score) if math.isfinite(score) else None


class QuestionAnswererRunner(KindRunner):
    """Runs a question-answering export on `(question, context)` pairs: per pair its answer."""

    input_type = "pair"
    input_fields = ("questions", "question")
    pair_fields = ("contexts", "context")

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        settings = manifest["preprocessing"]
        self.sequence_length, self.doc_stride = settings["sequence_length"], settings["doc_stride"]
        self.max_answer_length, self.null_threshold = manifest["max_answer_length"], manifest["null_threshold"]
        if format == "saved_model":
            self.signature = load_signature(artifact)
        else:
            self.tokenizer = offsets_tokenizer_from(path, manifest)
            self.runner = token_runner(format, artifact)

    def predict(self, pairs) -> list[dict]:
        """Per pair `{"text", "start", "end", "score"}` as `QuestionAnswerer.predict` returns it
        (`text == ""`, `start == end == 0` for no answer; `score` the margin over no-answer)."""
        from keras_ptft.data.qa_preprocessing import encode_qa, window_room

        pairs = check_pairs(pairs, "pairs")
        if not pairs:
            return []
        questions, contexts = (list(part) for part in zip(*pairs))
        if self.format != "saved_model":
            from keras_ptft.tasks.question_answerer import answers_from_logits, final_answers

            encoded = encode_qa(self.tokenizer, questions, contexts, self.sequence_length, self.doc_stride)
            logits = self.runner(**{name: encoded[name] for name in TOKEN_NAMES})["logits"]
            return final_answers(answers_from_logits(contexts, encoded, logits, self.max_answer_length),
                                 self.null_threshold)
        outputs = {name: value.numpy() for name, value in
                   self.signature(questions=tf.constant(questions), contexts=tf.constant(contexts)).items()}
        for index, windows in enumerate(outputs["windows"]):
            if windows == 0:  # the same refusal as `encode_qa`
                window_room(index, int(outputs["question_pieces"][index]), self.sequence_length, self.doc_stride)
        return [{"text": outputs["answer_texts"][i].decode("utf-8"), "start": int(outputs["answer_starts"][i]),
                 "end": int(outputs["answer_ends"][i]), "score": float(outputs["scores"][i])}
                for i in range(len(pairs))]

    @classmethod
    def parse_items(cls, items, field, manifest) -> list[tuple[str, str]]:
        for index, (question, context) in enumerate(items):
            for name, value in (("questions", question), ("contexts", context)):
                if not isinstance(value, str) or not value.strip():
                    raise ValueError(f'"{name}"[{index}] must be a non-empty string, received {value!r:.80}')
        return [tuple(item) for item in items]

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{**answer, "score": json_score(answer["score"])} for answer in outputs]

    @classmethod
    def health(cls, manifest: dict) -> dict:
        return {"inputs": ["questions", "contexts"], "sequence_length": manifest["preprocessing"]["sequence_length"],
                "doc_stride": manifest["preprocessing"]["doc_stride"], "null_threshold": manifest["null_threshold"]}


@register_kind
class QuestionAnswererKind(WordPieceKind):
    """`keras_ptft.tasks.QuestionAnswerer`: `(question, context)` pairs → answer spans.

    Args:
        model: the `QuestionAnswerer` (its `null_threshold` is fixed at export).

    Example:
    ```python
    kp.export.export(qa, "saved_models/qa")
    kp.export.Predictor("saved_models/qa").predict([("Who came?", "Rollo came.")])
    # [{"text": "Rollo", "start": 0, "end": 5, "score": 3.2}]
    ```
    """

    name = "question_answerer"
    runner = QuestionAnswererRunner
    onnx_output = ("logits", False)

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.tasks.question_answerer import QuestionAnswerer

        return isinstance(model, QuestionAnswerer)

    def __init__(self, model):
        super().__init__(model)
        self.doc_stride, self.max_answer_length = int(model.doc_stride), int(model.max_answer_length)
        self.null_threshold = model.null_threshold

    def raw_input_spec(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec([None], tf.string, name="questions"), tf.TensorSpec([None], tf.string, name="contexts")]

    def outputs_from_model(self, logits) -> dict:
        return {"logits": tf.cast(logits, tf.float32)}

    def outputs_layer(self):
        return keras.layers.Identity(dtype="float32")

    def serve_raw(self, questions, contexts):
        """The answers of raw pairs, in TensorFlow ops (see the module docstring)."""
        from keras_ptft.tasks.question_answerer import PADDING_LOGIT, best_spans

        length, cls_id, sep_id, pad_id = (self.sequence_length, self.special["[CLS]"], self.special["[SEP]"],
                                          self.special["[PAD]"])
        _, _, question_ids, _, _ = word_pieces(self.tokenizer, questions)
        _, _, context_ids, piece_starts, piece_ends = word_pieces(self.tokenizer, contexts)
        question_ids, context_ids = question_ids.merge_dims(1, 2), context_ids.merge_dims(1, 2)
        piece_starts, piece_ends = piece_starts.merge_dims(1, 2), piece_ends.merge_dims(1, 2)
        question_length = tf.cast(question_ids.row_lengths(), tf.int32)
        context_length = tf.cast(context_ids.row_lengths(), tf.int32)
        room = length - 3 - question_length
        step = room - self.doc_stride
        usable = step >= 1  # room >= 1 and doc_stride < room, as `window_room` demands
        room, step = tf.maximum(room, 1), tf.maximum(step, 1)
        # Windows start at 0, step, 2 * step ... until one reaches the end of the context.
        count = 1 + tf.maximum(0, (context_length - room + step - 1) // step)
        count = tf.where(usable, count, 0)
        example = tf.repeat(tf.range(tf.shape(questions)[0]), count)
        offset = tf.gather(step, example) * tf.ragged.range(count).flat_values

        def dense(ragged, fill):  # at least one column, so gathers never index an empty axis
            return tf.pad(tf.cast(ragged.to_tensor(fill), tf.int32), [[0, 0], [0, 1]], constant_values=fill)

        def take(table, positions):
            limit = tf.shape(table)[1] - 1
            return tf.gather(tf.gather(table, example), tf.clip_by_value(positions, 0, limit), batch_dims=1)

        q = tf.gather(question_length, example)[:, None]
        window = tf.minimum(tf.gather(room, example), tf.gather(context_length, example) - offset)[:, None]
        positions = tf.range(length, dtype=tf.int32)[None, :]
        context_position = offset[:, None] + positions - q - 2
        in_question = tf.logical_and(positions >= 1, positions <= q)
        in_context = tf.logical_and(positions >= q + 2, positions < q + 2 + window)
        token_ids = tf.fill(tf.shape(in_context), pad_id)
        token_ids = tf.where(positions == 0, cls_id, token_ids)
        question_position = tf.broadcast_to(positions - 1, tf.shape(in_context))
        token_ids = tf.where(in_question, take(dense(question_ids, pad_id), question_position), token_ids)
        token_ids = tf.where(positions == q + 1, sep_id, token_ids)
        token_ids = tf.where(in_context, take(dense(context_ids, pad_id), context_position), token_ids)
        token_ids = tf.where(positions == q + 2 + window, sep_id, token_ids)
        padding_mask = positions <= q + 2 + window
        segment_ids = tf.logical_and(positions >= q + 2, padding_mask)
        logits = self.model({"token_ids": token_ids, "segment_ids": tf.cast(segment_ids, tf.int32),
                             "padding_mask": tf.cast(padding_mask, tf.int32)}, training=False)
        start, end, span_score, null_score = best_spans(logits, in_context, self.max_answer_length)

        # The best span over each example's windows (the first on a tie), as `pick_answers`.
        examples = tf.shape(questions)[0]
        starts_in_context = tf.gather(in_context, start, batch_dims=1)
        valid = tf.logical_and(starts_in_context, span_score > PADDING_LOGIT)
        score = tf.where(valid, span_score, -np.inf)
        best = tf.math.unsorted_segment_max(score, example, examples)
        null = tf.math.unsorted_segment_min(null_score, example, examples)
        windows = tf.shape(example)[0]
        is_best = tf.logical_and(valid, score == tf.gather(best, example))
        chosen = tf.math.unsorted_segment_min(tf.where(is_best, tf.range(windows), windows), example, examples)
        has_span = chosen < windows
        chosen = tf.clip_by_value(chosen, 0, tf.maximum(windows - 1, 0))

        def at_chosen(values):  # a per-window value of each example's chosen window
            return tf.gather(tf.pad(values, [[0, 1]]), chosen)

        byte_start = at_chosen(take(dense(piece_starts, -1), tf.gather(context_position, start, batch_dims=1)))
        byte_end = at_chosen(take(dense(piece_ends, -1), tf.gather(context_position, end, batch_dims=1)))
        byte_start, byte_end = tf.where(has_span, byte_start, 0), tf.where(has_span, byte_end, 0)
        text = tf.strings.substr(contexts, byte_start, tf.maximum(byte_end - byte_start, 0))
        margin = tf.where(has_span, best, -np.inf) - null
        answered = tf.logical_and(has_span, tf.strings.length(text) > 0)
        if self.null_threshold is not None:
            answered = tf.logical_and(answered, margin > self.null_threshold)
        has_windows = count > 0
        return {
            "answer_texts": tf.where(answered, text, ""),
            "answer_starts": tf.where(answered, char_offsets(contexts, byte_start[:, None])[:, 0], 0),
            "answer_ends": tf.where(answered, char_offsets(contexts, byte_end[:, None])[:, 0], 0),
            "scores": tf.where(has_windows, margin, -np.inf),
            "has_answer": answered,
            "windows": count,
            "question_pieces": question_length,
        }

    def check_data(self, data, argument: str) -> list[tuple[str, str]]:
        pairs = check_pairs(data, argument)
        if not pairs:
            raise ValueError(f"`{argument}` must hold at least one (question, context) pair.")
        self.model.encode(pairs)  # a question too long for the window fails here, before any artifact is written
        return pairs

    def probe_data(self) -> list[tuple[str, str]]:
        fits = []
        for pair in PROBE_PAIRS:  # only those this export's windows can hold
            try:
                self.model.encode([pair])
                fits.append(pair)
            except ValueError:
                pass
        return fits

    def manifest(self) -> dict:
        return {
            "vocabulary_file": "vocabulary.txt",
            "max_answer_length": self.max_answer_length,
            "null_threshold": self.null_threshold,
            "preprocessing": {**self.preprocessing(), "doc_stride": self.doc_stride,
                              "packing": "[CLS] question [SEP] window [SEP] [PAD]...; segment_ids 1 from the window "
                                         "on; windows share doc_stride context pieces"},
            "raw_input": {"questions": "string[batch]", "contexts": "string[batch]"},
            "outputs": {"answer_texts": "string[batch]", "answer_starts": "int32[batch] (characters)",
                        "answer_ends": "int32[batch] (characters)", "scores": "float32[batch]",
                        "has_answer": "bool[batch]", "windows": "int32[batch]", "question_pieces": "int32[batch]"},
        }

    # === Parity ===

    def reference(self, pairs) -> list[dict]:
        """The Keras model's answers (a direct call on the windows, not `predict`)."""
        from keras_ptft.tasks.question_answerer import answers_from_logits, final_answers

        encoded = self.model.encode(pairs)
        logits = keras.ops.convert_to_numpy(self.model({name: encoded[name] for name in TOKEN_NAMES}, training=False))
        return final_answers(answers_from_logits([c for _, c in pairs], encoded, logits, self.max_answer_length),
                             self.null_threshold)

    def parity(self, predict, data, batch_size) -> dict:
        """Span agreement (same text, start and end) and max |Δ| of the scores against Keras."""
        diff, agree = 0.0, 0
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            for ours, theirs in zip(predict(batch), self.reference(batch)):
                agree += int(all(ours[key] == theirs[key] for key in ("text", "start", "end")))
                if ours["score"] != theirs["score"]:  # equal infinities have no difference
                    diff = max(diff, abs(ours["score"] - theirs["score"]))
        return {"max_abs_diff": float(diff), "span_agreement": agree / max(len(data), 1), "examples": len(data)}

    def parity_failure(self, name, entry, figures, tolerance, min_label_agreement) -> str | None:
        if figures["span_agreement"] < min_label_agreement:
            return f"{name}: span agreement {figures['span_agreement']:.4f} < min_label_agreement={min_label_agreement}"
        if not entry.get("quantization") and figures["max_abs_diff"] > tolerance:
            return f"{name}: max |Δ| of the scores {figures['max_abs_diff']:.3g} > tolerance={tolerance}"
        return None
