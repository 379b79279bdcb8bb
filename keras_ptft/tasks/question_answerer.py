"""Extractive question answering: the answer is a span of the context, or there is none."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from keras_ptft.data.qa_preprocessing import check_answers, check_doc_stride, check_qa_pairs, encode_qa
from keras_ptft.tasks.metrics import best_null_threshold, squad_scores
from keras_ptft.tasks.base import EncodedBucketing, Task
from keras_ptft.tasks.token_classifier import MODEL_INPUTS, check_sequence_length, offsets_tokenizer
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay

# The logit of padding positions (see `PaddingLogitMask`).
PADDING_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_ptft")
def span_loss(y_true, y_pred):
    """Mean of the start and end cross-entropies: `y_true` `(batch, 2)` positions, `y_pred`
    `(batch, sequence_length, 2)` start and end logits."""
    y_true = keras.ops.cast(y_true, "int32")
    start = keras.losses.sparse_categorical_crossentropy(y_true[:, 0], y_pred[:, :, 0], from_logits=True)
    end = keras.losses.sparse_categorical_crossentropy(y_true[:, 1], y_pred[:, :, 1], from_logits=True)
    return (start + end) / 2


def best_spans(logits, context_mask, max_answer_length: int):
    """The best answer span of each window and its no-answer score (graph-friendly).

    A span `(i, j)` scores `start_logit[i] + end_logit[j]`; it must lie in the context
    (`context_mask`) with `i <= j < i + max_answer_length`. The no-answer score is the
    `[CLS]` span's, `start_logit[0] + end_logit[0]`.

    Args:
        logits: float tensor `(windows, sequence_length, 2)`: start and end logits.
        context_mask: bool or int tensor `(windows, sequence_length)`: 1 on context pieces.
        max_answer_length: int. The most pieces an answer may have.

    Returns:
        `(start, end, span_score, null_score)`: int32 positions and float32 scores, each
        `(windows,)`. A window without context pieces gets span score -inf-like (-1e9 * 2).
    """
    ops = keras.ops
    logits = ops.cast(logits, "float32")
    start_logits, end_logits = logits[:, :, 0], logits[:, :, 1]
    length = ops.shape(logits)[1]
    positions = ops.arange(length)
    offset = positions[None, :] - positions[:, None]  # j - i
    allowed = ops.logical_and(offset >= 0, offset < max_answer_length)
    context = ops.cast(context_mask, "bool")
    allowed = ops.logical_and(allowed[None], ops.logical_and(context[:, :, None], context[:, None, :]))
    scores = ops.where(allowed, start_logits[:, :, None] + end_logits[:, None, :], 2 * PADDING_LOGIT)
    flat = ops.reshape(scores, (ops.shape(scores)[0], -1))
    best = ops.cast(ops.argmax(flat, axis=-1), "int32")
    span_score = ops.max(flat, axis=-1)
    null_score = start_logits[:, 0] + end_logits[:, 0]
    return best // length, best % length, span_score, null_score


def pick_answers(contexts, encoded: dict, start, end, span_score, null_score) -> list[dict]:
    """Per example, the best span over its windows as `{"text", "start", "end", "margin"}`:
    character offsets into its context, and the span's score minus the example's lowest
    no-answer score over its windows (as Hugging Face's SQuAD 2.0 post-processing)."""
    answers = [None] * len(contexts)
    null = np.full(len(contexts), np.inf)
    for row, index in enumerate(encoded["example"]):
        null[index] = min(null[index], float(null_score[row]))
        offsets = encoded["offsets"][row]
        if offsets[start[row], 0] < 0 or float(span_score[row]) <= PADDING_LOGIT:
            continue  # a window without context
        if answers[index] is None or float(span_score[row]) > answers[index]["score"]:
            char_start, char_end = int(offsets[start[row], 0]), int(offsets[end[row], 1])
            answers[index] = {"text": contexts[index][char_start:char_end], "start": char_start,
                              "end": char_end, "score": float(span_score[row])}
    results = []
    for index, answer in enumerate(answers):
        answer = answer or {"text": "", "start": 0, "end": 0, "score": -np.inf}
        results.append({**answer, "margin": float(answer["score"] - null[index])})
    return results


def answers_from_logits(contexts: Sequence[str], encoded: dict, logits, max_answer_length: int) -> list[dict]:
    """`pick_answers` of the windows of `encode_qa`'s `encoded`, from their start/end `logits`."""
    spans = best_spans(logits, encoded["offsets"][:, :, 0] >= 0, max_answer_length)
    return pick_answers(contexts, encoded, *(keras.ops.convert_to_numpy(part) for part in spans))


def final_answers(answers: Sequence[dict], null_threshold: float | None) -> list[dict]:
    """`pick_answers`' answers as `predict` returns them: `{"text", "start", "end", "score"}` with
    the margin as score, and `text == ""`, `start == end == 0` when there is no span or the
    margin is not above `null_threshold` (None: always answer)."""
    results = []
    for answer in answers:
        if null_threshold is not None and not answer["margin"] > null_threshold or not answer["text"]:
            results.append({"text": "", "start": 0, "end": 0, "score": answer["margin"]})
        else:
            results.append({"text": answer["text"], "start": answer["start"], "end": answer["end"],
                            "score": answer["margin"]})
    return results


@keras.saving.register_keras_serializable(package="keras_ptft")
class PaddingLogitMask(keras.layers.Layer):
    """Pushes the logits of padding positions to -1e9, so no span and no loss lands on padding."""

    def call(self, logits, padding_mask):
        padding = 1.0 - keras.ops.cast(padding_mask, "float32")
        return logits + keras.ops.expand_dims(padding, -1) * PADDING_LOGIT


@keras.saving.register_keras_serializable(package="keras_ptft")
class QuestionAnswerer(EncodedBucketing, Task):
    """Extractive QA: a backbone's token vectors and a dense layer giving start and end logits.

    `fit(pairs, answers)` takes `(question, context)` string pairs and per pair its answer
    (`{"text", "start"}` with a character offset, a list of those, or None for no answer) — or
    `fit(examples)` with `keras_ptft.data.read_squad`'s dicts. `predict(pairs)` returns per pair
    `{"text", "start", "end", "score"}`: the answer and its character span in the context, or
    `text == ""` when the best span's margin over the `[CLS]` no-answer score is not above
    `null_threshold` (None: always answer, as SQuAD v1.1 wants). `fit_null_threshold` learns that
    threshold on labelled data. Contexts longer than a row are read in windows that overlap by
    `doc_stride` pieces; the best span of all windows wins. Build it with
    `keras_ptft.recipes.question_answerer`, which also compiles it. Windows are length-bucketed
    (`bucketing`, on by default, as for the tagger): a short context's window is not padded to
    `sequence_length` in training or prediction; `set_run_options(bucketing=False)` pads them all.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with a `sequence_output`).
        vocabulary: list of str. The backbone's WordPiece vocabulary.
        sequence_length: int. Pieces per row: `[CLS] question [SEP] window [SEP]`.
        doc_stride: int. Context pieces shared by consecutive windows; smaller than the room
            a window leaves for the context.
        max_answer_length: int. The most pieces an answer may have.
        null_threshold: float or None. Answer only when the span's margin over no-answer is
            above it; None always answers.
        lowercase: bool. Lower-case before WordPiece; must match the vocabulary.
        strip_accents: bool or None. Remove accents; None follows `lowercase`.
        dropout: float. Dropout before the span layer.

    Example:
    ```python
    qa = QuestionAnswerer(bert, vocabulary=vocab, sequence_length=64, doc_stride=16)
    qa.fit([("who came?", "Rollo came.")], [{"text": "Rollo", "start": 0}])
    qa.predict([("who came?", "Rollo came.")])  # [{"text": ..., "start": ..., "end": ..., "score": ...}]
    ```
    """

    # Padding gets the mask layer's logit, so a padded-back window scores as the model scores padding.
    output_pad_value = PADDING_LOGIT

    def __init__(
        self,
        backbone: keras.Model,
        vocabulary: Sequence[str] | str | os.PathLike,
        sequence_length: int = 384,
        doc_stride: int = 128,
        max_answer_length: int = 30,
        null_threshold: float | None = None,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        dropout: float = 0.1,
        preprocessor=None,
        **kwargs,
    ):
        check_sequence_length(sequence_length, backbone)
        check_doc_stride(doc_stride, sequence_length - 4)
        if isinstance(max_answer_length, bool) or not isinstance(max_answer_length, (int, np.integer)) \
                or max_answer_length < 1:
            raise ValueError(f"`max_answer_length` must be an int >= 1, received {max_answer_length!r}.")
        # === Config ===
        self.sequence_length = int(sequence_length)
        self.doc_stride = int(doc_stride)
        self.max_answer_length = int(max_answer_length)
        self.null_threshold = None if null_threshold is None else float(null_threshold)
        self.dropout = dropout
        self.tokenizer = offsets_tokenizer(backbone, vocabulary, lowercase, strip_accents)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = None  # pairs are windowed in NumPy before `fit`/`predict`
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            2,
            # Glorot, not BERT's normal(0.02), as the tagger's tag layer: from scratch, a 64-wide 2-layer
            # BERT learned the toy keyword task ~8x slower with 0.02 (span loss 1.26-1.40 after 2
            # epochs vs 0.14-0.16), and a BERT-tiny on the SQuAD subset did no better (3 epochs:
            # loss 1.023 vs 1.019, held-out HasAns F1 5.0 vs 7.0).
            kernel_initializer="glorot_uniform",
            dtype="float32",  # logits in float32 even under mixed precision
            name="span_logits",
        )
        self.padding_logits = PaddingLogitMask(dtype="float32", name="mask_padding")
        # === Functional Model ===
        inputs = {name: backbone.input[name] for name in MODEL_INPUTS}
        logits = self.output_dense(self.output_dropout(backbone(inputs)["sequence_output"]))
        outputs = self.padding_logits(logits, inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults: AdamW 5e-5 with warm-up then linear decay, clipping
        the global gradient norm at 1, and the mean start/end cross-entropy (`span_loss`)."""
        if optimizer == "auto":
            optimizer = make_adamw(WarmupDecay(5e-5, warmup_ratio=0.1), global_clipnorm=1.0)
        if loss == "auto":
            loss = span_loss
        if metrics == "auto":
            metrics = None
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def encode(self, x, y=None) -> dict:
        """Pairs (and answers) as windowed model inputs and start/end labels (NumPy)."""
        questions, contexts = check_qa_pairs(x)
        spans = None if y is None else check_answers(y, contexts)
        return encode_qa(self.tokenizer, questions, contexts, self.sequence_length, self.doc_stride, spans)

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets: bool = False):
        """The shared fit path's hook: `(question, context)` pairs and their answers (or
        `read_squad` dicts alone) become windowed features with start/end labels per window
        (`fit(pairs, answers, validation_data=(pairs, answers))`)."""
        if hasattr(x, "element_spec"):  # already encoded batches
            return x, y, sample_weight
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported: a long context becomes several windows.")
        x, y = _split_examples(x, y)
        encoded = self.encode(x, y)
        features = {name: encoded[name] for name in MODEL_INPUTS}
        return features, (None if y is None else encoded["labels"]), None

    def predict(self, x, batch_size: int | None = None, **kwargs) -> list[dict]:
        """Per `(question, context)` pair: `{"text", "start", "end", "score"}` — the answer and its
        character span in the context (`text == ""`, `start == end == 0` for no answer), and the
        best span's score minus the no-answer score (the margin `null_threshold` is compared with).
        """
        return final_answers(self._best_answers(x, batch_size), self.null_threshold)

    def fit_null_threshold(self, x, y=None, metric: str = "f1", batch_size: int | None = None) -> dict:
        """Learns `null_threshold` on labelled pairs (e.g. a dev set): the cut on the margin that
        maximises SQuAD F1 (or `"exact"`) — the official script's `find_best_thresh`.

        Returns:
            A dict with the chosen `"threshold"` and the `metric` in percent with it
            (`"best_f1"` or `"best_exact"`).
        """
        x, y = _split_examples(x, y)
        _, contexts = check_qa_pairs(x)
        gold = [_gold_list(answer) for answer in y]
        check_answers(y, contexts)
        answers = self._best_answers(x, batch_size)
        threshold, score = best_null_threshold([a["text"] for a in answers], [a["margin"] for a in answers], gold,
                                               metric=metric)
        self.null_threshold = threshold
        return {"threshold": threshold, f"best_{metric}": score}

    def evaluate_squad(self, x, y=None, batch_size: int | None = None) -> dict:
        """Official SQuAD exact match / F1 (percent; HasAns/NoAns split) of `predict` on `x`."""
        x, y = _split_examples(x, y)
        predictions = [answer["text"] for answer in self.predict(x, batch_size=batch_size)]
        return squad_scores(predictions, [_gold_list(answer) for answer in y])

    def _best_answers(self, x, batch_size) -> list[dict]:
        x, _ = _split_examples(x, None)
        _, contexts = check_qa_pairs(x)
        encoded = self.encode(x)
        logits = self.token_outputs({name: encoded[name] for name in MODEL_INPUTS}, batch_size)
        return answers_from_logits(contexts, encoded, logits, self.max_answer_length)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("preprocessor", None)
        config.update({
            **self.tokenizer.get_config(),
            "sequence_length": self.sequence_length,
            "doc_stride": self.doc_stride,
            "max_answer_length": self.max_answer_length,
            "null_threshold": self.null_threshold,
            "dropout": self.dropout,
        })
        return config


def _split_examples(x, y):
    """`read_squad` dicts given as `x` alone become pairs and answer lists."""
    if y is None and isinstance(x, (list, tuple)) and x and all(isinstance(item, dict) for item in x):
        return [(item["question"], item["context"]) for item in x], [item.get("answers", []) for item in x]
    return x, y


def _gold_list(answer) -> list:
    if answer is None or answer == "":
        return []
    return list(answer) if isinstance(answer, (list, tuple)) else [answer]
