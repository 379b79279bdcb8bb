"""Extractive QA inputs: `[CLS] question [SEP] context window [SEP]` rows over doc-stride windows.

A context longer than a row is cut into overlapping windows of context pieces: consecutive windows
share `doc_stride` pieces (Hugging Face's `stride`), so an answer near a cut is whole in one of
them. Every row keeps the character offsets of its context pieces, so a predicted span of pieces
maps back to a span of the context string. Answers given as character spans become the piece
positions of their first and last piece; a window that does not hold the whole answer (and an
unanswerable question) is labelled with the `[CLS]` position 0, as in BERT's SQuAD 2.0 recipe.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from keras_ptft.data.token_alignment import WordPieceOffsets


def check_doc_stride(doc_stride, room: int | None = None) -> None:
    """`doc_stride` must be a non-negative int, smaller than the context room of a window."""
    if isinstance(doc_stride, bool) or not isinstance(doc_stride, (int, np.integer)) or doc_stride < 0:
        raise ValueError(f"`doc_stride` must be an int >= 0, received doc_stride={doc_stride!r}.")
    if room is not None and doc_stride >= room:
        raise ValueError(
            f"`doc_stride`={doc_stride} must be smaller than the {room} context pieces a window holds "
            "(sequence_length minus the question and 3 special tokens), or windows would not advance."
        )


def check_qa_pairs(pairs) -> tuple[list[str], list[str]]:
    """`(question, context)` pairs (or `read_squad` dicts) as two lists of str.

    Raises:
        ValueError: a pair that is not two strings, or an empty question or context, naming the
            field and the example index.
    """
    if isinstance(pairs, (str, dict)) or not isinstance(pairs, (list, tuple)):
        raise ValueError(f"`x` must be a list of (question, context) pairs, received {type(pairs).__name__}.")
    questions, contexts = [], []
    for index, pair in enumerate(pairs):
        if isinstance(pair, dict):
            pair = (pair.get("question"), pair.get("context"))
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"`x[{index}]` must be a (question, context) pair, received {pair!r:.80}.")
        for field, value in zip(("question", "context"), pair):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"The {field} of example {index} must be a non-empty str, received {value!r:.80}.")
        questions.append(pair[0])
        contexts.append(pair[1])
    return questions, contexts


def check_answers(answers, contexts: Sequence[str]) -> list[tuple[int, int] | None]:
    """Per example the answer's character span `(start, end)`, or None for no answer.

    An answer is a `{"text", "start"}` dict (or `"answer_start"`, as in SQuAD JSON), a list of
    them (the first is trained on; an empty list means no answer), or None / `""` for no answer.

    Raises:
        ValueError: an answer whose text is not at its start in the context, naming the index.
    """
    if len(answers) != len(contexts):
        raise ValueError(f"`y` has {len(answers)} answers but `x` has {len(contexts)} examples.")
    spans = []
    for index, (answer, context) in enumerate(zip(answers, contexts)):
        if isinstance(answer, (list, tuple)):
            answer = answer[0] if answer else None
        if answer is None or answer == "" or (isinstance(answer, dict) and not answer.get("text")):
            spans.append(None)
            continue
        if not isinstance(answer, dict) or "text" not in answer or not ("start" in answer or "answer_start" in answer):
            raise ValueError(
                f'`y[{index}]` must be a {{"text", "start"}} dict, a list of them, or None; received {answer!r:.80}.'
            )
        text, start = answer["text"], int(answer.get("start", answer.get("answer_start")))
        if context[start:start + len(text)] != text:
            raise ValueError(
                f"`y[{index}]`: the answer {text!r:.60} is not at character {start} of context {index} "
                f"(found {context[start:start + len(text)]!r:.60})."
            )
        spans.append((start, start + len(text)))
    return spans


def window_room(index: int, question_pieces: int, sequence_length: int, doc_stride: int) -> int:
    """The context pieces a window of example `index` holds (`sequence_length` minus the question
    and 3 special tokens), or a ValueError when the question leaves no room or `doc_stride`
    would not let the windows advance."""
    room = sequence_length - 3 - question_pieces
    if room < 1:
        raise ValueError(
            f"The question of example {index} has {question_pieces} pieces, too many for "
            f"sequence_length={sequence_length} (it must leave room for the context)."
        )
    if doc_stride >= room:
        raise ValueError(
            f"`doc_stride`={doc_stride} must be smaller than the {room} context pieces a window of example "
            f"{index} holds (sequence_length={sequence_length} minus its {question_pieces}-piece question and 3 "
            "special tokens), or its windows would not advance."
        )
    return room


def encode_qa(
    tokenizer: WordPieceOffsets,
    questions: Sequence[str],
    contexts: Sequence[str],
    sequence_length: int,
    doc_stride: int,
    answer_spans: Sequence[tuple[int, int] | None] | None = None,
) -> dict:
    """Question/context pairs as windowed BERT rows.

    Args:
        tokenizer: the `WordPieceOffsets` of the backbone's vocabulary.
        questions, contexts: lists of str.
        sequence_length: int. Row length.
        doc_stride: int. Context pieces shared by consecutive windows.
        answer_spans: per example a character span `(start, end)` or None; None for prediction.

    Returns:
        A dict of NumPy arrays, one row per window: `"token_ids"`, `"segment_ids"`,
        `"padding_mask"` (int32 `(windows, sequence_length)`), `"example"` (the example index of
        each window), `"offsets"` (int32 `(windows, sequence_length, 2)`: character span of each
        context piece, -1 elsewhere) and with answers `"labels"` (int32 `(windows, 2)`: start and
        end positions, 0 for no answer in the window).

    Raises:
        ValueError: a question too long for `sequence_length`, `doc_stride` too large for the
            room left, or an answer span that covers no piece, naming the example index.
    """
    check_doc_stride(doc_stride)
    ids = tokenizer.token_to_id
    question_pieces = [[p[0] for word in item["pieces"] for p in word] for item in tokenizer.encode(questions)]
    context_pieces = [[p for word in item["pieces"] for p in word] for item in tokenizer.encode(contexts)]
    rows, examples, offsets, labels = [], [], [], []
    for index, (question, pieces) in enumerate(zip(question_pieces, context_pieces)):
        room = window_room(index, len(question), sequence_length, doc_stride)
        answer = None if answer_spans is None else answer_spans[index]
        if answer is not None:
            inside = [k for k, (_, start, end) in enumerate(pieces) if start < answer[1] and end > answer[0]]
            if not inside:
                raise ValueError(f"The answer of example {index} (characters {answer[0]}-{answer[1]}) covers no "
                                 "word piece of its context.")
            answer = (inside[0], inside[-1])
        prefix = [ids["[CLS]"], *question, ids["[SEP]"]]
        start = 0
        while True:
            window = pieces[start:start + room]
            row = prefix + [p[0] for p in window] + [ids["[SEP]"]]
            rows.append(row + [ids["[PAD]"]] * (sequence_length - len(row)))
            offset = np.full((sequence_length, 2), -1, dtype=np.int32)
            if window:
                offset[len(prefix):len(prefix) + len(window)] = [(p[1], p[2]) for p in window]
            offsets.append(offset)
            examples.append(index)
            if answer is not None and start <= answer[0] and answer[1] < start + len(window):
                labels.append((len(prefix) + answer[0] - start, len(prefix) + answer[1] - start))
            else:
                labels.append((0, 0))
            if start + room >= len(pieces):
                break
            start += room - doc_stride
    token_ids = np.asarray(rows, dtype=np.int32).reshape(-1, sequence_length)
    segment_ids = np.zeros_like(token_ids)
    for row, index in enumerate(examples):
        segment_ids[row, len(question_pieces[index]) + 2:] = 1
    padding_mask = (token_ids != ids["[PAD]"]).astype(np.int32)
    segment_ids *= padding_mask
    encoded = {
        "token_ids": token_ids,
        "segment_ids": segment_ids,
        "padding_mask": padding_mask,
        "example": np.asarray(examples, dtype=np.int32),
        "offsets": np.asarray(offsets, dtype=np.int32).reshape(-1, sequence_length, 2),
    }
    if answer_spans is not None:
        encoded["labels"] = np.asarray(labels, dtype=np.int32).reshape(-1, 2)
    return encoded
