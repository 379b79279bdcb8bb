"""Evaluation metrics of the token-classification and question-answering tasks.

Entity scores follow `seqeval`'s default (lenient, "conlleval") mode exactly: a chunk starts at
`B-`/`S-`, at an `I-`/`E-` after `O` or after a chunk of another type, and ends before a tag that
cannot continue it. So an `I-PER` after `O` (a break of strict IOB2) still opens a PER entity, as
`seqeval.metrics.f1_score(y_true, y_pred)` and the CoNLL `conlleval` script count it. Sentences
are scored as one sequence with an `O` between them, so no entity crosses a sentence.

SQuAD scores follow the official v2.0 evaluation script: answers are normalised (lower case, no
punctuation, no articles a/an/the, single spaces), exact match and token F1 take the best over the
gold answers, an unanswerable question's only gold answer is `""`, and figures are percentages.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Sequence

import numpy as np

# === Entities (seqeval's default mode) ===


def _split_tag(tag: str) -> tuple[str, str]:
    """`"B-PER"` -> `("B", "PER")`, `"O"` -> `("O", "_")`, as seqeval splits prefix and type."""
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _ends_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _starts_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one tag sequence, as seqeval's default mode finds them.

    Args:
        tags: list of str. IOB2/BIO or IOBES tags (`"B-PER"`, `"I-PER"`, `"S-LOC"`, `"O"`, ...).

    Returns:
        A list of `(type, first, last)` tuples, `last` inclusive.

    Example:
    ```python
    get_entities(["B-PER", "I-PER", "O", "I-LOC"])  # [("PER", 0, 1), ("LOC", 3, 3)]
    ```
    """
    entities = []
    prev_tag, prev_type, begin = "O", "", 0
    for index, tag in enumerate(list(tags) + ["O"]):
        tag, type_ = _split_tag(tag)
        if _ends_chunk(prev_tag, tag, prev_type, type_):
            entities.append((prev_type, begin, index - 1))
        if _starts_chunk(prev_tag, tag, prev_type, type_):
            begin = index
        prev_tag, prev_type = tag, type_
    return entities


def _check_tag_lists(y_true, y_pred) -> None:
    if len(y_true) != len(y_pred):
        raise ValueError(f"`y_true` has {len(y_true)} sentences but `y_pred` has {len(y_pred)}.")
    for index, (true, pred) in enumerate(zip(y_true, y_pred)):
        if isinstance(true, str) or isinstance(pred, str):
            raise ValueError(f"`y_true`/`y_pred` must be lists of tag lists; sentence {index} is a str.")
        if len(true) != len(pred):
            raise ValueError(
                f"Sentence {index}: `y_true` has {len(true)} tags but `y_pred` has {len(pred)}."
            )


def _entity_sets(tag_lists) -> dict[str, set]:
    flat = [tag for tags in tag_lists for tag in list(tags) + ["O"]]
    by_type = collections.defaultdict(set)
    for type_, first, last in get_entities(flat):
        by_type[type_].add((first, last))
    return by_type


def _prf(correct: int, predicted: int, actual: int) -> dict:
    # Like seqeval's zero_division="warn" without the warning: an empty denominator gives 0.
    precision = correct / predicted if predicted else 0.0
    recall = correct / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual}


def entity_scores(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1 (micro-averaged) and the same per entity type.

    Args:
        y_true: list of lists of str. The gold tags, one list per sentence.
        y_pred: list of lists of str. The predicted tags, the same shape.

    Returns:
        A dict with `"precision"`, `"recall"`, `"f1"` (floats in [0, 1], equal to
        `seqeval.metrics.precision_score` / `recall_score` / `f1_score`), `"support"` (number of
        gold entities), `"accuracy"` (token accuracy, `seqeval.metrics.accuracy_score`) and
        `"per_type"`: `{type: {"precision", "recall", "f1", "support"}}` as in seqeval's
        `classification_report`.

    Example:
    ```python
    scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    scores["f1"], scores["accuracy"]  # (0.0, 0.666...)
    ```
    """
    _check_tag_lists(y_true, y_pred)
    true, pred = _entity_sets(y_true), _entity_sets(y_pred)
    per_type = {}
    totals = np.zeros(3, dtype=np.int64)
    for type_ in sorted(set(true) | set(pred)):
        counts = (len(true[type_] & pred[type_]), len(pred[type_]), len(true[type_]))
        totals += counts
        per_type[type_] = _prf(*counts)
    return {**_prf(*(int(count) for count in totals)), "accuracy": token_accuracy(y_true, y_pred),
            "per_type": per_type}


def token_accuracy(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> float:
    """The fraction of tokens whose predicted tag equals the gold tag.

    Example:
    ```python
    token_accuracy([["B-PER", "O"]], [["B-PER", "B-LOC"]])  # 0.5
    ```
    """
    _check_tag_lists(y_true, y_pred)
    pairs = [(t, p) for true, pred in zip(y_true, y_pred) for t, p in zip(true, pred)]
    return sum(t == p for t, p in pairs) / len(pairs) if pairs else 0.0


# === SQuAD (the official v2.0 evaluation) ===

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's answer normalisation: lower case, punctuation and articles removed, single spaces.

    Example:
    ```python
    normalize_answer("The  Norman-French!")  # "normanfrench"
    ```
    """
    text = "".join(character for character in text.lower() if character not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_f1(prediction: str, gold: str) -> float:
    """Token-overlap F1 of two normalised answers; two empty answers score 1, one empty 0."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _gold_texts(answers) -> list[str]:
    texts = [answer["text"] if isinstance(answer, dict) else answer for answer in answers]
    # As the official script: gold answers that normalise to nothing do not count.
    texts = [text for text in texts if normalize_answer(text)]
    return texts or [""]


def squad_example_scores(predictions: Sequence[str], gold_answers: Sequence[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Per question exact match and F1 (each the best over the gold answers), in [0, 1].

    Args:
        predictions: list of str. One predicted answer per question (`""` for no answer).
        gold_answers: list of lists. Per question its gold answers, as str or as
            `read_squad`'s `{"text", "start"}` dicts; an empty list for an unanswerable question.
    """
    if len(predictions) != len(gold_answers):
        raise ValueError(
            f"`predictions` has {len(predictions)} entries but `gold_answers` has {len(gold_answers)}."
        )
    exact, f1 = np.zeros(len(predictions)), np.zeros(len(predictions))
    for index, (prediction, answers) in enumerate(zip(predictions, gold_answers)):
        if not isinstance(prediction, str):
            raise ValueError(f"`predictions[{index}]` must be a str, received {type(prediction).__name__}.")
        golds = _gold_texts(answers)
        exact[index] = max(exact_match(prediction, gold) for gold in golds)
        f1[index] = max(answer_f1(prediction, gold) for gold in golds)
    return exact, f1


def squad_scores(predictions: Sequence[str], gold_answers: Sequence[Sequence]) -> dict:
    """SQuAD exact match and F1 in percent, overall and split into answerable / unanswerable.

    Args:
        predictions: list of str. One predicted answer per question (`""` for no answer).
        gold_answers: list of lists. Per question its gold answers (str or `{"text", "start"}`
            dicts); an empty list (or only empty strings) marks a SQuAD 2.0 unanswerable question.

    Returns:
        A dict with the official script's keys: `"exact"`, `"f1"`, `"total"`, and
        `"HasAns_exact"`, `"HasAns_f1"`, `"HasAns_total"`, `"NoAns_exact"`, `"NoAns_f1"`,
        `"NoAns_total"` for the parts that hold questions.

    Example:
    ```python
    squad_scores(["the Normans", ""], [["Normans"], []])  # exact 100.0, f1 100.0, ...
    ```
    """
    exact, f1 = squad_example_scores(predictions, gold_answers)
    has_answer = np.array([_gold_texts(answers) != [""] for answers in gold_answers], dtype=bool)
    scores = _percentages(exact, f1, np.ones_like(has_answer))
    for prefix, part in (("HasAns_", has_answer), ("NoAns_", ~has_answer)):
        if part.any():
            scores.update({prefix + key: value for key, value in _percentages(exact, f1, part).items()})
    return scores


def _percentages(exact, f1, part) -> dict:
    total = int(part.sum())
    if total == 0:
        return {"exact": 0.0, "f1": 0.0, "total": 0}
    return {"exact": float(100.0 * exact[part].mean()), "f1": float(100.0 * f1[part].mean()), "total": total}


def best_null_threshold(
    answers: Sequence[str], margins: Sequence[float], gold_answers: Sequence[Sequence], metric: str = "f1"
) -> tuple[float, float]:
    """The no-answer threshold that maximises SQuAD F1 (or exact match) on labelled questions.

    A question gets its best span when the span's margin over the no-answer score is above the
    threshold, and no answer otherwise. The search is the official script's `find_best_thresh`:
    every cut between two observed margins is a candidate (the threshold is put halfway).

    Args:
        answers: list of str. The best non-empty span of each question.
        margins: list of float. Per question, best span score minus no-answer score.
        gold_answers: list of lists. The gold answers (empty for unanswerable questions).
        metric: str. `"f1"` or `"exact"`.

    Returns:
        `(threshold, score)`: the threshold and the metric (percent) it reaches.

    Example:
    ```python
    best_null_threshold(["Rollo", "France"], [2.0, -1.0], [["Rollo"], []])  # (0.5, 100.0)
    ```
    """
    if metric not in ("f1", "exact"):
        raise ValueError(f'`metric` must be "f1" or "exact", received {metric!r}.')
    margins = np.asarray(margins, dtype=np.float64)
    if len(answers) != len(margins) or len(margins) != len(gold_answers):
        raise ValueError("`answers`, `margins` and `gold_answers` must have the same length.")
    if len(margins) == 0:
        raise ValueError("`best_null_threshold` needs at least one labelled question.")
    exact, f1 = squad_example_scores(list(answers), gold_answers)
    with_answer = f1 if metric == "f1" else exact
    without_answer, _ = squad_example_scores([""] * len(answers), gold_answers)  # 1 where no gold answer
    order = np.argsort(-margins, kind="stable")
    # Threshold just below the k-th largest margin answers the k largest: total score is
    # sum(with_answer over answered) + sum(without_answer over the rest).
    gains = np.concatenate([[0.0], np.cumsum(with_answer[order] - without_answer[order])])
    totals = without_answer.sum() + gains
    # Ties in margin must be answered together: only cut between distinct margins.
    sorted_margins = margins[order]
    valid = np.ones(len(totals), dtype=bool)
    valid[1:-1] = sorted_margins[:-1] != sorted_margins[1:]
    best = int(np.argmax(np.where(valid, totals, -np.inf)))
    # Halfway between the last answered and the first unanswered margin.
    if best == 0:
        threshold = float(sorted_margins[0]) + 1.0
    elif best == len(margins):
        threshold = float(sorted_margins[-1]) - 1.0
    else:
        threshold = float(sorted_margins[best - 1] + sorted_margins[best]) / 2
    return threshold, float(100.0 * totals[best] / len(margins))
