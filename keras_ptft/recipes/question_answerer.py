"""Extractive question answering: (question, context) pairs in, answer spans out."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.recipes.token_classifier import compile_with_schedule, resolve_word_piece_backbone
from keras_ptft.tasks.question_answerer import QuestionAnswerer


def question_answerer(
    backbone_or_path: keras.Model | str | os.PathLike,
    *,
    vocabulary: Sequence[str] | str | None = None,
    sequence_length: int | None = None,
    doc_stride: int | None = None,
    max_answer_length: int = 30,
    null_threshold: float | None = None,
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
    dropout: float = 0.1,
    lowercase: bool = True,
    distribution=None,
    bucketing: bool | int | Sequence[int] = True,
    **compile_kwargs,
) -> QuestionAnswerer:
    """A compiled extractive question answerer, ready for `fit(pairs, answers)`.

    Defaults follow BERT's SQuAD fine-tuning: rows of 384 pieces (capped at the backbone's
    `max_sequence_length`), windows overlapping by 128 pieces (a third of the row when shorter),
    answers of at most 30 pieces, AdamW 5e-5 with 10% warm-up then linear decay, clipping at
    norm 1. For SQuAD 2.0, call `fit_null_threshold` on labelled dev data after training.

    Args:
        backbone_or_path: a backbone object, or any checkpoint folder
            (`keras_ptft.convert.load_checkpoint`: saved here with `save_to_preset`, a keras-hub
            preset, a Hugging Face or sentence-transformers BERT folder).
        vocabulary: list of str or str. Needed with a backbone object.
        sequence_length: int or None. Pieces per row, question included.
        doc_stride: int or None. Context pieces shared by consecutive windows; None for
            `min(128, sequence_length // 3)`.
        max_answer_length: int. The most pieces an answer may have.
        null_threshold: float or None. Margin an answer must beat to be given (None: always).
        learning_rate: float. Peak learning rate.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        dropout: float. Dropout before the span layer.
        lowercase: bool. Used with `vocabulary` (a folder's tokenizer brings its own).
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
        bucketing: bool, int or list of int. Length-bucketed windows for `fit` and `predict`, as
            `token_classifier`'s (False: every window padded to `sequence_length`).
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    examples = kp.data.read_squad("squad2_dev_subset/dev-v2.0-first5articles.json.gz")
    qa = kp.recipes.question_answerer("saved_models/my_bert")
    qa.fit(examples[:1000], epochs=2)
    qa.fit_null_threshold(examples[1000:])
    qa.predict([("Who was the Norse leader?", "The Norse leader was Rollo.")])  # [{"text": "Rollo", ...}]
    ```
    """
    check_bucketing(bucketing)  # refused before any model is built
    backbone, vocabulary, lowercase, strip_accents, sequence_length = resolve_word_piece_backbone(
        backbone_or_path, vocabulary, sequence_length, lowercase, default_length=384)
    if doc_stride is None:
        doc_stride = min(128, sequence_length // 3)
    answerer = QuestionAnswerer(
        backbone, vocabulary=vocabulary, sequence_length=sequence_length, doc_stride=doc_stride,
        max_answer_length=max_answer_length, null_threshold=null_threshold, lowercase=lowercase,
        strip_accents=strip_accents, dropout=dropout, compile=False, distribution=distribution,
    )
    answerer.set_run_options(bucketing=bucketing)
    compile_with_schedule(answerer, compile_kwargs, learning_rate, warmup_ratio, total_steps, weight_decay, clipnorm)
    return answerer
