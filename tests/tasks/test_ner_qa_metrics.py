import os
import random

import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.tasks.metrics import (
    answer_f1,
    best_null_threshold,
    entity_scores,
    exact_match,
    get_entities,
    normalize_answer,
    squad_example_scores,
    squad_scores,
    token_accuracy,
)

seqeval = pytest.importorskip("seqeval.metrics")
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities  # noqa: E402


def conll_dev_tags():
    path = os.path.join(kp.data.shared_data_dir() or "", "conll2003", "dev.txt.gz")
    if not os.path.exists(path):
        pytest.skip("the shared CoNLL-2003 data is not present")
    return kp.data.read_conll(path)[1]


def to_iobes(tags):
    out = []
    for position, tag in enumerate(tags):
        following = tags[position + 1] if position + 1 < len(tags) else "O"
        continues = following == f"I-{tag[2:]}"
        if tag.startswith("B-"):
            out.append(tag if continues else "S-" + tag[2:])
        elif tag.startswith("I-"):
            out.append(tag if continues else "E-" + tag[2:])
        else:
            out.append(tag)
    return out


def perturb(tag_lists, label_names, rate, rng):
    """Random tag substitutions (so I- after O and type switches appear) and boundary shifts."""
    out = []
    for tags in tag_lists:
        tags = list(tags)
        for position in range(len(tags)):
            roll = rng.random()
            if roll < rate:
                tags[position] = rng.choice(label_names)
            elif roll < 1.5 * rate and position + 1 < len(tags):
                tags[position], tags[position + 1] = tags[position + 1], tags[position]
        out.append(tags)
    return out


def seqeval_scores(y_true, y_pred):
    report = seqeval.classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    return {
        "precision": seqeval.precision_score(y_true, y_pred, zero_division=0),
        "recall": seqeval.recall_score(y_true, y_pred, zero_division=0),
        "f1": seqeval.f1_score(y_true, y_pred, zero_division=0),
        "accuracy": seqeval.accuracy_score(y_true, y_pred),
        "per_type": {k: v for k, v in report.items() if not k.endswith(" avg")},
    }


@pytest.mark.parametrize("scheme", ["IOB2", "IOBES"])
@pytest.mark.parametrize("rate", [0.02, 0.2])
def test_entity_scores_equal_seqeval_on_conll_dev(scheme, rate):
    y_true = conll_dev_tags()
    if scheme == "IOBES":
        y_true = [to_iobes(tags) for tags in y_true]
    names = sorted({tag for tags in y_true for tag in tags})
    y_pred = perturb(y_true, names, rate, random.Random(int(rate * 100)))
    ours, reference = entity_scores(y_true, y_pred), seqeval_scores(y_true, y_pred)
    assert 0.2 < reference["f1"] < 1.0  # the perturbation changed something, not everything
    for key in ("precision", "recall", "f1", "accuracy"):
        assert ours[key] == pytest.approx(reference[key], abs=1e-12), key
    assert set(ours["per_type"]) == set(reference["per_type"])
    for type_, expected in reference["per_type"].items():
        for key in ("precision", "recall", "f1", "support"):
            assert ours["per_type"][type_][key] == pytest.approx(expected[key if key != "f1" else "f1-score"]), (
                type_, key)


def test_get_entities_equals_seqeval_on_scheme_breaking_sequences():
    rng = random.Random(0)
    alphabet = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    for _ in range(2000):
        tags = [rng.choice(alphabet) for _ in range(rng.randint(0, 9))]
        assert get_entities(tags) == seqeval_get_entities(tags), tags
    # The documented reading of a scheme break: I- after O opens an entity.
    assert get_entities(["O", "I-PER", "I-PER", "B-LOC"]) == [("PER", 1, 2), ("LOC", 3, 3)]


def test_entity_scores_edge_cases():
    scores = entity_scores([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)
    assert scores["accuracy"] == pytest.approx(2 / 3)
    assert entity_scores([["O"]], [["O"]])["f1"] == 0.0  # no entities: seqeval's zero_division=0
    # Entities never cross sentences.
    assert entity_scores([["B-PER"], ["I-PER"]], [["B-PER"], ["I-PER"]])["support"] == 2
    assert token_accuracy([["B-PER", "O"]], [["B-PER", "B-LOC"]]) == 0.5
    with pytest.raises(ValueError, match="Sentence 0: `y_true` has 2 tags but `y_pred` has 1"):
        entity_scores([["O", "O"]], [["O"]])


def test_squad_normalisation_and_scores_by_hand():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert exact_match("the Normans.", "Normans") == 1.0
    # pred {cat, sat} vs gold {cat, sat, down}: P = 1, R = 2/3, F1 = 0.8.
    assert answer_f1("the cat sat", "a cat sat down") == pytest.approx(0.8)
    assert answer_f1("cat cat", "cat") == pytest.approx(2 * 0.5 * 1 / 1.5)  # counts, not sets
    exact, f1 = squad_example_scores(["cat sat", "", "x", ""], [["dog", "cat sat down"], [], [], ["the"]])
    np.testing.assert_allclose(exact, [0, 1, 0, 1])  # "the" normalises to "" -> a no-answer gold
    np.testing.assert_allclose(f1, [0.8, 1, 0, 1])
    scores = squad_scores(["cat sat", "", "x", "Rollo"], [["dog", "cat sat down"], [], [], [{"text": "Rollo"}]])
    assert scores == pytest.approx({
        "exact": 50.0, "f1": 100 * (0.8 + 1 + 0 + 1) / 4, "total": 4,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * 1.8 / 2, "HasAns_total": 2,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2,
    })


def test_best_null_threshold_matches_brute_force():
    rng = np.random.default_rng(0)
    gold = [["rollo"] if rng.random() < 0.5 else [] for _ in range(60)]
    answers = [rng.choice(["rollo", "rollo the", "france"]) for _ in gold]
    margins = np.round(rng.normal(size=len(gold)), 1)  # rounded: ties must be handled
    threshold, best = best_null_threshold(answers, margins, gold)

    def f1_at(cut):
        predictions = [a if m > cut else "" for a, m in zip(answers, margins)]
        return squad_scores(predictions, gold)["f1"]

    candidates = [margins.max() + 1] + list(np.unique(margins) - 1e-6)
    assert best == pytest.approx(max(f1_at(cut) for cut in candidates))
    assert f1_at(threshold) == pytest.approx(best)
    assert best_null_threshold(["Rollo", "France"], [2.0, -1.0], [["Rollo"], []]) == (0.5, 100.0)
