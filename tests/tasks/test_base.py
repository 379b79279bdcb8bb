"""The shared training path (`keras_ptft/tasks/base.py`): what every task gets from it."""

import os

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.training.optimization import make_adamw
from tests import harness

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "good", "bad", "film", "cat", "mat"]


def tiny_vit():
    return harness.tiny_vit(pooling="mean")


def tiny_bert():
    return harness.tiny_bert(VOCAB, hidden_dim=8, intermediate_dim=16)


def images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 8, 8, 3)).astype("uint8"), rng.integers(0, 2, n)


def test_every_task_is_on_the_shared_path():
    for cls in (kp.tasks.TextClassifier, kp.tasks.TextRegressor, kp.tasks.SentenceEmbedder, kp.tasks.ImageClassifier,
                kp.tasks.ImageSegmenter, kp.tasks.MaskedLM, kp.tasks.CausalLM, kp.tasks.MaskedImageModeling):
        assert issubclass(cls, kp.tasks.TrainingMixin), cls
        # One fit body: no task defines its own beyond a thin wrapper around the shared one.
        assert "make_batches" in dir(cls) and "size_schedule" in dir(cls)
    assert kp.recipes.TextClassifier is kp.tasks.TextClassifier  # the old path still works


def test_any_open_schedule_is_sized_by_fit_also_one_cycle_on_images():
    # The image path once sized only `WarmupDecay`; a `OneCycle` left open failed at the first step.
    x, y = images(20)
    classifier = kp.recipes.image_classifier(tiny_vit(), 2, optimizer=make_adamw(kp.schedules.OneCycle(1e-3)))
    classifier.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert classifier.optimizer._learning_rate.total_steps == 2 * 3


def test_seeded_shuffling_is_reproducible_and_the_seed_matters():
    x, y = images(32)

    def first_batch_labels(seed):
        classifier = kp.recipes.image_classifier(tiny_vit(), 2, seed=seed, random_flip=False, crop_padding=0)
        batches = classifier.make_batches(x, y, batch_size=8, shuffle=True)
        return np.argmax(next(iter(batches))[1].numpy(), -1).tolist(), next(iter(batches))[0].numpy()

    labels_a, images_a = first_batch_labels(3)
    labels_b, images_b = first_batch_labels(3)
    _, images_c = first_batch_labels(4)
    np.testing.assert_array_equal(images_a, images_b)
    assert labels_a == labels_b
    assert not np.array_equal(images_a, images_c)


def test_validation_split_and_checkpoint_dir_on_an_image_recipe(tmp_path):
    x, y = images(16)
    classifier = kp.recipes.image_classifier(tiny_vit(), 2, checkpoint_dir=tmp_path / "run", seed=0)
    history = classifier.fit(x, y, batch_size=4, epochs=2, validation_split=0.25, verbose=0)
    assert len(history.history["val_loss"]) == 2
    assert {"model.json", "history.csv", "best.keras"} <= set(os.listdir(tmp_path / "run"))
    assert kp.training.load_history(tmp_path / "run")["epoch"] == [0, 1]


def test_masked_image_modeling_round_trips_through_a_preset(tmp_path):
    mae = kp.tasks.MaskedImageModeling(tiny_vit(), decoder_dim=8, decoder_layers=1, decoder_heads=2, seed=1)
    mae.save_to_preset(tmp_path / "mae")
    clone = kp.tasks.MaskedImageModeling.from_preset(str(tmp_path / "mae"))
    noise = np.random.default_rng(0).random((2, 4)).astype("float32")
    x, _ = images(2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(x, noise=noise)["reconstruction"]),
                               keras.ops.convert_to_numpy(mae(x, noise=noise)["reconstruction"]), atol=1e-6)
    # The folder still serves as a backbone for fine-tuning.
    assert isinstance(kp.recipes.image_classifier(str(tmp_path / "mae"), 2), kp.tasks.ImageClassifier)


def test_sentence_embedder_round_trips_through_a_preset(tmp_path):
    embedder = kp.recipes.sentence_embedder(tiny_bert(), preprocessor=kp.data.BertPreprocessor(VOCAB, sequence_length=8))
    assert isinstance(embedder, keras_hub_task())
    embedder.save_to_preset(tmp_path / "embedder")
    clone = kp.tasks.SentenceEmbedder.from_preset(str(tmp_path / "embedder"))
    texts = ["a good film", "the cat"]
    np.testing.assert_allclose(clone.encode(texts), embedder.encode(texts), atol=1e-6)


def test_building_masked_image_modeling_leaves_functional_tasks_intact():
    # keras-hub resets its pipeline base class whenever a non-functional Task is built, which
    # would strip `outputs` (and `predict([])`) from every functional task alive.
    classifier = kp.recipes.text_classifier(tiny_bert(), 2, vocabulary=VOCAB, verbose=False)
    kp.tasks.MaskedImageModeling(tiny_vit(), decoder_dim=8, decoder_layers=1, decoder_heads=2)
    assert classifier.predict([]).shape == (0, 2)


def keras_hub_task():
    import keras_hub

    return keras_hub.models.Task


def test_schedules_have_one_public_path():
    assert kp.schedules.WarmupDecay.__module__ == "keras_ptft.training.schedules"
    assert "WarmupDecay" not in kp.training.__all__
    with pytest.warns(DeprecationWarning, match="kp|keras_ptft.schedules.WarmupDecay"):
        assert kp.training.WarmupDecay is kp.schedules.WarmupDecay


def test_fit_keeps_one_iterator_and_still_sees_every_example_once_per_epoch_reshuffled(monkeypatch):
    # Keras makes a new iterator every epoch of a finite dataset, and making one over a keras-hub
    # preprocessor costs 0.4-0.7 s: the shared fit repeats batches of a known length instead.
    from tensorflow.python.data.ops import iterator_ops

    made = []
    original_init = iterator_ops.OwnedIterator.__init__
    monkeypatch.setattr(iterator_ops.OwnedIterator, "__init__",
                        lambda self, *a, **k: made.append(1) or original_init(self, *a, **k))
    x, y = images(20)
    x[:, 0, 0, 0] = np.arange(20)  # each image carries its index
    classifier = kp.recipes.image_classifier(tiny_vit(), 2, seed=0, random_flip=False, crop_padding=0,
                                             run_eagerly=True)
    seen, train_step = [], classifier.train_step
    classifier.train_step = lambda data: seen.append(np.asarray(data[0])[:, 0, 0, 0].tolist()) or train_step(data)
    history = classifier.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert len(made) == 1 and len(history.history["loss"]) == 3
    epochs = [sum(seen[i:i + 3], []) for i in (0, 3, 6)]  # 3 batches (8 + 8 + 4) per epoch
    assert len(seen) == 9 and all(sorted(epoch) == list(range(20)) for epoch in epochs)
    assert epochs[0] != epochs[1] != epochs[2]  # still reshuffled every pass
    # A caller's own steps_per_epoch is kept as given.
    seen.clear()
    classifier.fit(x, y, batch_size=8, epochs=2, steps_per_epoch=1, verbose=0)
    assert len(seen) == 2


def test_the_first_fit_traces_its_train_step_once():
    # Keras builds the optimizer inside the first train step on TensorFlow (no strategy), and a
    # tf.function that creates variables is traced twice: about half of a tiny model's first fit.
    # The shared fit builds it first; the distillation training model goes through the same path.
    classifier = kp.recipes.text_classifier(tiny_bert(), 2, vocabulary=VOCAB, sequence_length=8, bucketing=False,
                                            verbose=False)
    traces, train_step = [], classifier.train_step
    classifier.train_step = lambda data: traces.append(1) or train_step(data)  # runs once per trace
    assert not classifier.optimizer.built
    classifier.fit(["the good film", "the bad film"] * 4, [1, 0] * 4, batch_size=4, epochs=2, verbose=0)
    assert classifier.optimizer.built and classifier.optimizer.iterations == 4
    assert len(traces) == 1  # 2 without building the optimizer first
