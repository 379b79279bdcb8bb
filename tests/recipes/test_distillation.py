"""Distillation: the loss against NumPy, the student learns the teacher, the teacher's cache."""

import io
import warnings
import zipfile

import h5py

import keras
import numpy as np
import pytest

import keras_ptft as kp
from tests import harness
from keras_ptft.recipes.distillation import SoftTargetLoss

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)]
RNG = np.random.default_rng(0)
TEXTS = [" ".join(f"w{i}" for i in RNG.integers(0, 40, RNG.integers(2, 8))) for _ in range(48)]


def tiny_bert(seed, hidden=16, layers=2):
    keras.utils.set_random_seed(seed)
    return kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=layers, num_heads=2, hidden_dim=hidden,
                          intermediate_dim=2 * hidden, max_sequence_length=12, dropout=0.0)


def teacher():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = kp.recipes.text_classifier(tiny_bert(0, hidden=32), num_classes=3, vocabulary=VOCAB,
                                           sequence_length=12, label_names=["a", "b", "c"], verbose=False)
    # A teacher with confident, text-dependent predictions: a large random head.
    kernel = model.output_dense.kernel
    kernel.assign(keras.random.normal(kernel.shape, stddev=3.0, seed=1))
    return model


def test_loss_is_kl_times_t_squared_and_mixes_hard_labels():
    teacher_p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    student_p = np.array([[0.5, 0.3, 0.2], [0.3, 0.3, 0.4]], "float32")
    hard = np.array([[0, 0, 0], [0, 0, 1]], "float32")  # first row unlabeled
    T, alpha = 3.0, 0.25

    def soften(p):
        z = np.log(p) / T
        return np.exp(z) / np.exp(z).sum(-1, keepdims=True)

    kl = (soften(teacher_p) * np.log(soften(teacher_p) / soften(student_p))).sum(-1) * T * T
    want = np.array([kl[0], alpha * -np.log(0.4) + (1 - alpha) * kl[1]]).mean()
    loss = SoftTargetLoss(3, temperature=T, alpha=alpha)
    got = float(loss(np.concatenate([teacher_p, hard], -1), student_p))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert kl[0] > 0.05  # the hand case is not trivially zero
    # A loaded student trained on plain labels gets cross-entropy.
    np.testing.assert_allclose(float(loss(np.array([0, 2]), student_p)), -np.log([0.5, 0.4]).mean(), rtol=1e-5)


def test_student_learns_to_agree_with_the_teacher_from_unlabeled_texts():
    big = teacher()
    student = kp.recipes.distill(big, tiny_bert(5), vocabulary=VOCAB, sequence_length=12, temperature=2.0,
                                 learning_rate=3e-3)
    assert type(student) is kp.tasks.TextClassifier and student.label_names == ["a", "b", "c"]
    want = big.predict(TEXTS, verbose=0).argmax(-1)
    before = np.mean(student.predict(TEXTS, verbose=0).argmax(-1) == want)
    history = student.fit(TEXTS, epochs=12, batch_size=16, verbose=0)
    after = np.mean(student.predict(TEXTS, verbose=0).argmax(-1) == want)
    assert after > before + 0.2 and after >= 0.75, (before, after)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert student.target_source.teacher_calls == 1  # twelve epochs, one teacher pass
    agreement = student.evaluate(TEXTS, verbose=0, return_dict=True)["agreement"]
    np.testing.assert_allclose(agreement, after, atol=1e-6)
    accuracy = student.evaluate(TEXTS, want, verbose=0, return_dict=True)["accuracy"]
    np.testing.assert_allclose(accuracy, after, atol=1e-6)


def test_cache_is_reused_and_invalidated_when_the_teacher_changes(tmp_path):
    big = teacher()
    student = kp.recipes.distill(big, tiny_bert(5), vocabulary=VOCAB, sequence_length=12, cache_dir=tmp_path)
    first = student.target_source.probabilities(TEXTS)
    np.testing.assert_allclose(first, big.predict(TEXTS, verbose=0), atol=1e-6)
    again = kp.recipes.distill(big, tiny_bert(6), vocabulary=VOCAB, sequence_length=12, cache_dir=tmp_path)
    calls = []
    big.predict = lambda *args, **kwargs: calls.append(1)  # the teacher must not run: the disk cache answers
    np.testing.assert_array_equal(again.target_source.probabilities(TEXTS), first)
    assert calls == [] and len(list(tmp_path.glob("*.npy"))) == 1
    del big.predict
    kernel = big.output_dense.kernel
    kernel.assign(kernel * 0.5)
    changed = again.target_source.probabilities(TEXTS)
    assert again.target_source.teacher_calls == 1 and len(list(tmp_path.glob("*.npy"))) == 2
    np.testing.assert_allclose(changed, big.predict(TEXTS, verbose=0), atol=1e-6)
    assert again.target_source.probabilities(TEXTS[:5]).shape == (5, 3)  # other texts: another key


def test_saved_student_loads_and_trains_on_plain_labels(tmp_path):
    student = kp.recipes.distill(teacher(), tiny_bert(5), vocabulary=VOCAB, sequence_length=12)
    student.fit(TEXTS[:8], [0, 1, 2, 0, 1, 2, 0, 1], epochs=1, verbose=0)
    student.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0), student.predict(TEXTS, verbose=0), atol=1e-6)
    loaded.fit(TEXTS[:8], [0, 1, 2, 0, 1, 2, 0, 1], epochs=1, verbose=0)  # plain labels, no teacher


@pytest.mark.parametrize("kwargs, match", [
    ({"temperature": 0}, "`temperature` must be a number > 0"),
    ({"temperature": -1.0}, "`temperature` must be a number > 0"),
    ({"alpha": 1.5}, "`alpha` must be a number in \\[0, 1\\]"),
    ({"label_names": ["x", "y", "z"]}, "`label_names` must be the teacher's"),
    ({"num_classes": 2}, "`num_classes` is set by distillation"),
])
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kp.recipes.distill(teacher(), tiny_bert(5), vocabulary=VOCAB, sequence_length=12, **kwargs)


def test_token_ids_need_the_same_tokenizer():
    other = VOCAB[:5] + [f"v{i}" for i in range(40)]
    student = kp.recipes.distill(teacher(), tiny_bert(5), vocabulary=other, sequence_length=12)
    features = {k: np.asarray(v) for k, v in student.preprocessor(TEXTS[:4]).items()}
    with pytest.raises(ValueError, match="different tokenizers"):
        student.fit(features, epochs=1, verbose=0)
    student.fit(TEXTS[:4], epochs=1, verbose=0)  # raw strings: each model tokenizes itself


# === Hidden-state (TinyBERT) distillation ===

def block_outputs(backbone, features):
    """Every block's output, by running the backbone's layers by hand (not the functional graph)."""
    ids, segments, mask = (np.asarray(features[k]) for k in ("token_ids", "segment_ids", "padding_mask"))
    tokens = backbone.token_embedding(ids)
    x = backbone.embeddings_add((tokens, backbone.position_embedding(tokens), backbone.segment_embedding(segments)))
    x = backbone.embeddings_layer_norm(x)
    outputs = []
    for block in backbone.transformer_layers:
        x = block(x, padding_mask=mask)
        outputs.append(keras.ops.convert_to_numpy(x))
    return outputs


def masked_mse(student_states, teacher_states, mask):
    mask = mask[..., None].astype("float64")
    return float((mask * (student_states - teacher_states) ** 2).sum() / (mask.sum() * teacher_states.shape[-1]))


def test_uniform_layer_map_is_tinyberts():
    from keras_ptft.recipes.distillation import uniform_layer_map

    assert uniform_layer_map(4, 12) == {0: 2, 1: 5, 2: 8, 3: 11}  # TinyBERT's g(m) = 3m
    assert uniform_layer_map(2, 6) == {0: 2, 1: 5}
    assert uniform_layer_map(3, 4) == {0: 0, 1: 2, 2: 3}  # 4/3 -> 1, 8/3 -> 3, 4
    assert uniform_layer_map(2, 2) == {0: 0, 1: 1}


def test_hidden_loss_is_the_masked_mse_of_the_projected_states():
    big = teacher()  # 32 wide; the student is 16 wide, so each mapped block gets a Dense projection
    student = kp.recipes.distill(big, tiny_bert(5, hidden=16), vocabulary=VOCAB, sequence_length=12,
                                 hidden_weight=0.5, layer_map={0: 1, 1: 0})
    trainer = student.target_source.training_model
    features = {k: np.asarray(v) for k, v in student.preprocessor(TEXTS[:6]).items()}
    mask = features["padding_mask"]
    assert (mask == 0).any()  # padding present: it must not count
    ours, theirs = block_outputs(student.backbone, features), block_outputs(big.backbone, features)
    want = []
    for (i, j), projection in zip([(0, 1), (1, 0)], trainer.projections):
        kernel, bias = (keras.ops.convert_to_numpy(w).astype("float64") for w in projection.weights)
        assert kernel.shape == (16, 32)
        want.append(masked_mse(ours[i] @ kernel + bias, theirs[j], mask))
    got = float(trainer.hidden_loss(features))
    np.testing.assert_allclose(got, np.mean(want), rtol=1e-4)
    assert got > 0.1
    # The training loss is the soft-target loss plus hidden_weight times it.
    targets = student.target_source(TEXTS[:6])
    probabilities = trainer(features)
    soft = float(student.loss(targets, probabilities))
    total = float(trainer.compute_loss(features, targets, probabilities, training=False))
    np.testing.assert_allclose(total, soft + 0.5 * got, rtol=1e-4)


def saved_shapes(path):
    """The shapes of every array in a `.keras` file's weights."""
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5"))) as weights:
        shapes = []
        weights.visititems(lambda _, item: shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None)
    return sorted(shapes)


def test_hidden_state_loss_brings_the_students_states_to_the_teachers():
    big = teacher()
    features = {k: np.asarray(v) for k, v in big.preprocessor(TEXTS).items()}
    theirs = block_outputs(big.backbone, features)

    def distilled(hidden_weight):
        student = kp.recipes.distill(big, tiny_bert(5, hidden=32), vocabulary=VOCAB, sequence_length=12,
                                     learning_rate=3e-3, hidden_weight=hidden_weight, bucketing=False)
        student.run_eagerly = True  # nine tiny steps: quicker than tracing them (graph mode: below)
        student.training_model().run_eagerly = True
        student.fit(TEXTS, epochs=3, batch_size=16, verbose=0)
        ours = block_outputs(student.backbone, features)  # same widths: compared as they are
        return student, np.mean([masked_mse(ours[i], theirs[i], features["padding_mask"]) for i in range(2)])

    student, with_hidden = distilled(1.0)
    _, without = distilled(0.0)
    assert with_hidden < 0.6 * without, (with_hidden, without)
    assert type(student) is kp.tasks.TextClassifier


def test_projections_are_trained_and_never_saved(tmp_path):
    student = kp.recipes.distill(teacher(), tiny_bert(5, hidden=16), vocabulary=VOCAB, sequence_length=12,
                                 hidden_weight=1.0, learning_rate=3e-3, bucketing=False)
    projection = student.target_source.training_model.projections[0].kernel
    before = keras.ops.convert_to_numpy(projection).copy()
    student.fit(TEXTS[:8], epochs=1, batch_size=8, verbose=0)  # one step, in graph mode
    assert np.abs(keras.ops.convert_to_numpy(projection) - before).max() > 1e-4  # learned with the student
    student.save(tmp_path / "student.keras")
    plain = kp.recipes.text_classifier(tiny_bert(5, hidden=16), 3, vocabulary=VOCAB, sequence_length=12,
                                       verbose=False)
    assert [v.path for v in student.weights] == [v.path for v in plain.weights]
    # No 16 -> 32 projection, no teacher weight, and no optimizer slot of either in the file.
    assert saved_shapes(tmp_path / "student.keras") == sorted(
        tuple(v.shape) for v in student.weights + student.optimizer.variables)
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    features = student.preprocessor(TEXTS)  # called directly: no predict function to trace
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(features)),
                               keras.ops.convert_to_numpy(student(features)), atol=1e-6)
    with pytest.raises(ValueError, match="`checkpoint_dir` cannot be used with hidden-state distillation"):
        student.set_run_options(checkpoint_dir=tmp_path / "run")
        student.fit(TEXTS[:8], epochs=1, verbose=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_weight": 1.0, "layer_map": {0: 2}}, "`layer_map` must be .* teacher block indices in \\[0, 2\\)"),
    ({"hidden_weight": 1.0, "layer_map": {2: 0}}, "`layer_map` must be a non-empty dict from student block"),
    ({"hidden_weight": 1.0, "layer_map": [0, 1]}, "`layer_map` must be"),
    ({"layer_map": {0: 0}}, "`layer_map` is given but `hidden_weight` is 0"),
    ({"hidden_weight": -1.0}, "`hidden_weight` must be a number >= 0"),
    ({"hidden_weight": 1.0, "vocabulary": VOCAB[:5] + [f"v{i}" for i in range(40)]},
     "must use the teacher's tokenizer.*`vocabulary`"),
])
def test_bad_hidden_state_arguments_are_refused(kwargs, match):
    kwargs = {"vocabulary": VOCAB, **kwargs}
    with pytest.raises(ValueError, match=match):
        kp.recipes.distill(teacher(), tiny_bert(5), sequence_length=12, **kwargs)


# === Image classifiers ===

def vit(seed, hidden=16, size=16):
    keras.utils.set_random_seed(seed)
    return harness.tiny_vit(image_shape=(size, size, 3), num_layers=2, hidden_dim=hidden, intermediate_dim=2 * hidden,
                            pooling="mean")


def colour_images(n=64, seed=0):
    # One colour per image plus noise: a teacher's class is a function of the colour a ViT can learn.
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (n, 1, 1, 3))
    return np.clip(colours + rng.integers(-20, 20, (n, 16, 16, 3)), 0, 255).astype("uint8")


def test_image_student_learns_the_image_teachers_predictions(tmp_path):
    images = colour_images()
    big = kp.recipes.image_classifier(vit(0, hidden=32), 3, label_names=["a", "b", "c"], verbose=False)
    # A confident random head, centred on these images so that every class is common.
    kernel, bias = big.output_dense.kernel, big.output_dense.bias
    kernel.assign(keras.random.normal(kernel.shape, stddev=10.0, seed=1))
    pooled = big.backbone.predict(images / 255.0, verbose=0)["pooled_output"]
    bias.assign(-(pooled @ keras.ops.convert_to_numpy(kernel)).mean(0))
    want = big.predict(images, verbose=0).argmax(-1)
    chance = np.bincount(want).max() / len(want)  # always answering the teacher's commonest class
    student = kp.recipes.distill(big, vit(5), learning_rate=3e-3, temperature=2.0)
    assert type(student) is kp.tasks.ImageClassifier and student.label_names == ["a", "b", "c"]
    student.fit(images, epochs=6, batch_size=16, verbose=0)  # unlabeled: the teacher labels them
    after = np.mean(student.predict(images, verbose=0).argmax(-1) == want)
    assert after >= chance + 0.15 and after >= 0.7, (chance, after)
    assert student.target_source.teacher_calls == 1
    agreement = student.evaluate(images, verbose=0, return_dict=True)["agreement"]
    np.testing.assert_allclose(agreement, after, atol=1e-6)
    student.save(tmp_path / "student.keras")
    loaded = keras.saving.load_model(tmp_path / "student.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), student.predict(images, verbose=0), atol=1e-6)
    # Without its teacher (`target_source = None`) the image task feeds one-hot labels: cross-entropy.
    probabilities = student.predict(images[:4], verbose=0)
    one_hot = np.eye(3, dtype="float32")[want[:4]]
    np.testing.assert_allclose(float(student.loss(one_hot, probabilities)),
                               -np.log(probabilities[np.arange(4), want[:4]]).mean(), rtol=1e-5)


def test_image_distillation_refuses_what_it_cannot_do():
    big = kp.recipes.image_classifier(vit(0), 2, verbose=False)
    with pytest.raises(ValueError, match="`student_backbone_or_path` takes images of shape \\(8, 8, 3\\)"):
        kp.recipes.distill(big, vit(5, size=8))
    with pytest.raises(ValueError, match="`hidden_weight` > 0 is for text classifiers"):
        kp.recipes.distill(big, vit(5), hidden_weight=1.0)
    with pytest.raises(TypeError, match="`teacher` must be a fine-tuned TextClassifier or ImageClassifier"):
        kp.recipes.distill(big.backbone, vit(5))
