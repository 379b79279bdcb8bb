import numpy as np
import pytest
import tensorflow as tf

import keras
from keras_ptft.recipes import SparseMacroF1, TextClassifier, text_classifier
from keras_ptft.tasks import MaskedLM
from keras_ptft.schedules import WarmupDecay
from tests import harness

# Sentiment-like toy task: the label is carried by one word.
POSITIVE = ["big", "cat"]
NEGATIVE = ["small", "dog"]


def toy_task(n=96, seed=0):
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        filler = " ".join(rng.choice(["the", "on", "sat", "mat"], size=3))
        texts.append(f"{filler} {word} {filler}")
        labels.append(label)
    return texts, np.array(labels, "int32")


def tiny_backbone(vocabulary, sequence_length=12):
    return harness.tiny_bert(vocabulary, max_sequence_length=sequence_length)


def test_defaults_a_practitioner_expects(toy_vocabulary):
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 3, vocabulary=toy_vocabulary, sequence_length=12)
    optimizer = classifier.optimizer
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.global_clipnorm == 1.0 and optimizer.weight_decay == 0.01
    schedule = optimizer._learning_rate
    assert isinstance(schedule, WarmupDecay) and schedule.decay == "linear" and schedule.warmup_ratio == 0.1
    # No weight decay on LayerNorm parameters and biases.
    excluded = [v.path for v in classifier.trainable_variables if optimizer._use_weight_decay(v) is False]
    assert any("layer_norm" in p for p in excluded) and any(p.endswith("bias") for p in excluded)
    assert not any(p.endswith("kernel") for p in excluded)
    assert classifier.output_dropout.rate == 0.1
    names = [m.name for m in classifier.metrics[-1].metrics] if hasattr(classifier.metrics[-1], "metrics") else []
    assert "macro_f1" in str(classifier._compile_config.config) or "macro_f1" in names


@pytest.mark.slow
def test_fit_predict_on_raw_strings_learns_the_toy_task(toy_vocabulary):
    texts, labels = toy_task()
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary, sequence_length=12,
                                 learning_rate=1e-2, label_names=["negative", "positive"],
                                 jit_compile=False)
    classifier.fit(texts, labels, batch_size=16, epochs=8, verbose=0)
    # The schedule's length was fixed from the fit call: 8 epochs x 6 batches.
    assert classifier.optimizer._learning_rate.total_steps == 48
    # (Judged after training: the epoch's running accuracy lags, as the batches are shuffled.)
    assert classifier.evaluate(texts, labels, verbose=0, return_dict=True)["accuracy"] > 0.9
    probabilities = classifier.predict(["the on sat big the on sat", "mat mat the small mat mat the"], verbose=0)
    assert probabilities.shape == (2, 2)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)
    assert list(probabilities.argmax(-1)) == [1, 0]
    # Keras' validation_split (which keras-hub's in-memory path would otherwise handle) still works.
    history = classifier.fit(texts, labels, batch_size=16, epochs=1, verbose=0, validation_split=0.25)
    assert history.history["val_accuracy"][-1] > 0.9
    # A tf.data pipeline of (text, label) works too.
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16)
    assert classifier.evaluate(ds, verbose=0, return_dict=True)["accuracy"] > 0.9


@pytest.mark.slow
def test_starts_from_a_saved_pretrained_backbone(toy_vocabulary, toy_corpus, tmp_path):
    backbone = tiny_backbone(toy_vocabulary)
    mlm = MaskedLM(backbone, vocabulary=toy_vocabulary, sequence_length=12)
    mlm.fit(toy_corpus[:32], batch_size=16, epochs=1, verbose=0)
    mlm.save_to_preset(str(tmp_path / "bert"))
    classifier = text_classifier(str(tmp_path / "bert"), num_classes=4)
    for loaded, trained in zip(classifier.backbone.get_weights(), backbone.get_weights()):
        np.testing.assert_array_equal(loaded, trained)
    assert classifier.preprocessor.vocabulary == toy_vocabulary
    texts = ["the cat sat", "the dog lay"]
    # It fits and predicts raw strings, and (with its preprocessor) survives config and .keras round trips.
    harness.run_task_test(classifier, (texts, np.array([0, 1])), texts, (2, 4), tmp_path)


def test_macro_f1_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 200)
    y_pred = rng.dirichlet(np.ones(3), 200).astype("float32")
    metric = SparseMacroF1(3)
    metric.update_state(y_true, y_pred)
    predicted = y_pred.argmax(-1)
    f1s = []
    for c in range(3):
        tp = np.sum((predicted == c) & (y_true == c))
        precision = tp / max(np.sum(predicted == c), 1)
        recall = tp / max(np.sum(y_true == c), 1)
        f1s.append(0 if tp == 0 else 2 * precision * recall / (precision + recall))
    assert abs(float(metric.result()) - np.mean(f1s)) < 1e-5


def test_bad_inputs_name_the_argument(toy_vocabulary, tmp_path):
    backbone = tiny_backbone(toy_vocabulary)
    with pytest.raises(ValueError, match="num_classes"):
        text_classifier(backbone, 1, vocabulary=toy_vocabulary)
    classifier = text_classifier(backbone, 2, vocabulary=toy_vocabulary, sequence_length=12)
    with pytest.raises(ValueError, match=r"`y` must hold labels in \[0, num_classes=2\)"):
        classifier.fit(["a", "b"], [0, 2], verbose=0)
    with pytest.raises(ValueError, match="`x` must hold only strings"):
        classifier.fit([1, 2], [0, 1], verbose=0)
    with pytest.raises(ValueError, match="num_classes=2"):
        classifier.fit(tf.data.Dataset.from_tensor_slices((["a", "b"], [0, 5])).batch(2), epochs=1, verbose=0)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        text_classifier(str(tmp_path / "missing"), 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is not a checkpoint folder this toolkit can load: it holds nothing"):
        text_classifier(str(tmp_path / "empty"), 2)
    with pytest.raises(ValueError, match="vocabulary"):
        text_classifier(backbone, 2)
    with pytest.raises(ValueError, match="must match"):
        text_classifier(backbone, 2, vocabulary=toy_vocabulary[:-1])


def test_classifier_config_round_trip(toy_vocabulary):
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 3, vocabulary=toy_vocabulary, sequence_length=12,
                                 label_names=["a", "b", "c"])
    clone = TextClassifier.from_config(classifier.get_config())
    assert clone.num_classes == 3 and clone.label_names == ["a", "b", "c"]
    assert clone.preprocessor.get_config() == classifier.preprocessor.get_config()
