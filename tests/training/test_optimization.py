"""`learning_rate="auto"`: the rule by backbone width, and that it makes a tiny BERT learn."""

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.training.optimization import auto_learning_rate, resolve_learning_rate


class Width:
    def __init__(self, hidden_dim):
        self.hidden_dim = hidden_dim


@pytest.mark.parametrize("width, rate", [
    (768, 5e-5),  # BERT-base: the BERT paper's fine-tuning rate
    (384, 5e-5),  # MiniLM (all-MiniLM-L6-v2)
    (256, 5e-5 * 1.5 ** 3),
    (128, 5e-5 * 27),  # `Bert.from_size("tiny")`
    (32, 2e-3),  # capped
])
def test_rule_by_width(width, rate):
    assert auto_learning_rate(Width(width)) == pytest.approx(rate)


def test_rule_never_grows_with_width_and_explicit_rates_pass():
    rates = [auto_learning_rate(Width(w)) for w in (16, 64, 128, 200, 256, 384, 512, 768, 1024)]
    assert rates == sorted(rates, reverse=True)
    assert resolve_learning_rate(3e-4, Width(128)) == 3e-4
    with pytest.raises(ValueError, match="`learning_rate` must be a positive number or \"auto\""):
        resolve_learning_rate(0, Width(128))


FILLER = ["the", "a", "film", "plot", "actor", "scene", "story", "was", "is", "very", "quite", "long"]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + FILLER + ["great"]


def keyword_task(n, rng):
    # Label 1 when the text contains "great": a one-keyword task (issue 13).
    texts, labels = [], []
    for _ in range(n):
        words = list(rng.choice(FILLER, 6))
        label = int(rng.random() < 0.35)
        if label:
            words[rng.integers(0, 6)] = "great"
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


@pytest.mark.slow
def test_text_classifier_default_learns_the_keyword_task_on_a_tiny_bert_in_3_epochs():
    rng = np.random.default_rng(0)
    (x, y), (x_test, y_test) = keyword_task(320, rng), keyword_task(100, rng)
    majority = max(y_test.mean(), 1 - y_test.mean())
    keras.utils.set_random_seed(0)
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(VOCAB), max_sequence_length=16)
    classifier = kp.recipes.text_classifier(bert, 2, vocabulary=VOCAB, verbose=False, seed=0)  # learning_rate="auto"
    assert classifier.optimizer._learning_rate.peak_learning_rate == pytest.approx(1.35e-3)
    classifier.fit(x, y, batch_size=8, epochs=3, verbose=0)
    accuracy = classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)["accuracy"]
    # Measured: 1.0 with "auto"; 0.67 (the majority class) at the old fixed 5e-5.
    assert accuracy > majority + 0.2, (accuracy, majority)
