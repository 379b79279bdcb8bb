"""Feed-forward pruning and Keras int8: checked against the unpruned / float model."""

import warnings

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.recipes.compression import ffn_importance, head_importance, prune_ffn, prune_heads, quantize

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(40)]
TEXTS = ["w1 w2 w3", "w4 w5", "w6 w7 w8 w9 w10", "w11"]


def classifier(seed=0, num_heads=2):
    keras.utils.set_random_seed(seed)
    bert = kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=2, num_heads=num_heads, hidden_dim=16, intermediate_dim=32,
                          max_sequence_length=12, dropout=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return kp.recipes.text_classifier(bert, num_classes=3, vocabulary=VOCAB, sequence_length=12, verbose=False)


def test_pruned_model_equals_the_original_with_those_neurons_zeroed():
    original = classifier()
    pruned = prune_ffn(original, 0.5)
    assert type(pruned) is type(original) and pruned.backbone.intermediate_dim == 16
    assert pruned.backbone.count_params() < original.backbone.count_params()
    # Independent reference: zero, in the original, every neuron the NumPy ranking drops.
    for block, score in zip(original.backbone.transformer_layers, ffn_importance(original.backbone)):
        w_in = np.asarray(block._feedforward_intermediate_dense.kernel)
        w_out = np.asarray(block._feedforward_output_dense.kernel)
        want = np.linalg.norm(w_in, axis=0) * np.linalg.norm(w_out, axis=1)
        np.testing.assert_allclose(score, want, rtol=1e-6)
        dropped = np.argsort(-want, kind="stable")[16:]
        w_out = w_out.copy()
        w_out[dropped, :] = 0.0
        block._feedforward_output_dense.kernel.assign(w_out)
    np.testing.assert_allclose(pruned.predict(TEXTS, verbose=0), original.predict(TEXTS, verbose=0), atol=1e-5)


def test_pruning_nothing_changes_nothing_and_saves(tmp_path):
    original = classifier()
    same = prune_ffn(original, 0.0)
    np.testing.assert_allclose(same.predict(TEXTS, verbose=0), original.predict(TEXTS, verbose=0), atol=1e-6)
    smaller = prune_ffn(original, 0.75)
    smaller.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    assert loaded.backbone.intermediate_dim == 8
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0), smaller.predict(TEXTS, verbose=0), atol=1e-6)


@pytest.mark.parametrize("fraction", [-0.1, 1.0, "half", True])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(ValueError, match="`fraction` must be a number in \\[0, 1\\)"):
        prune_ffn(classifier(), fraction)


def test_int8_keeps_predictions_and_round_trips_through_keras_files(tmp_path):
    model = classifier()
    want = model.predict(TEXTS, verbose=0)
    model.save(tmp_path / "float.keras")
    quantize(model)
    kernel = model.backbone.transformer_layers[0]._feedforward_intermediate_dense.kernel
    assert "int8" in str(kernel.dtype)
    got = model.predict(TEXTS, verbose=0)
    assert np.max(np.abs(got - want)) < 2e-2 and (got.argmax(-1) == want.argmax(-1)).all()
    model.save(tmp_path / "int8.keras")
    assert (tmp_path / "int8.keras").stat().st_size < (tmp_path / "float.keras").stat().st_size
    loaded = keras.saving.load_model(tmp_path / "int8.keras")
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0), got, atol=1e-6)
    with pytest.raises(ValueError, match="already quantized"):
        quantize(loaded)


def test_int8_refuses_other_modes_and_non_models():
    with pytest.raises(ValueError, match="`mode` must be 'int8'"):
        quantize(classifier(), mode="int4")
    with pytest.raises(TypeError, match="`task` must be a keras.Model"):
        quantize("model.keras")


def _attention_output(backbone, block):
    return backbone.transformer_layers[block]._self_attention_layer._output_dense.kernel


def test_pruned_heads_equal_the_original_with_those_heads_zeroed_and_export(tmp_path):
    original = classifier(num_heads=4)
    pruned = prune_heads(original, 0.5, probe_texts=TEXTS, verbose=False)
    backbone = pruned.backbone
    assert type(pruned) is type(original) and sum(backbone.head_counts) == 4 and backbone.key_dim == 4
    assert backbone.count_params() < original.backbone.count_params()
    removed = pruned.pruning_report.removed
    # Reference: the original with each removed head's slice of the output projection zeroed.
    for block, heads in removed.items():
        kernel = _attention_output(original.backbone, block)
        value = np.asarray(kernel).copy()
        value[heads] = 0.0
        kernel.assign(value)
    np.testing.assert_allclose(pruned.predict(TEXTS, verbose=0), original.predict(TEXTS, verbose=0), atol=1e-5)
    pruned.save(tmp_path / "pruned.keras")
    loaded = keras.saving.load_model(tmp_path / "pruned.keras")
    assert tuple(loaded.backbone.head_counts) == tuple(backbone.head_counts)
    np.testing.assert_allclose(loaded.predict(TEXTS, verbose=0), pruned.predict(TEXTS, verbose=0), atol=1e-6)
    path = kp.export.export(pruned, tmp_path / "export", formats=["saved_model"], verify_data=TEXTS)
    assert (tmp_path / "export" / "manifest.json").exists() and path


def test_head_importance_is_the_gradient_of_the_loss_wrt_a_head_gate():
    model = classifier(num_heads=2)
    head = model.output_dense.kernel  # a confident head, so the gradient is far above float32 noise
    head.assign(keras.random.normal(head.shape, stddev=3.0, seed=1))
    labels = np.array([0, 1, 2, 1])
    scores = head_importance(model, TEXTS, labels, batch_size=len(TEXTS), normalize=False)
    features = model.preprocessor(TEXTS)
    loss = keras.losses.SparseCategoricalCrossentropy()
    kernel = _attention_output(model.backbone, 1)
    base = np.asarray(kernel).astype("float64")
    eps = 1e-2

    def loss_at(gate):
        value = base.copy()
        value[0] *= gate
        kernel.assign(value.astype("float32"))
        return float(loss(labels, model(features)))

    numeric = abs(loss_at(1 + eps) - loss_at(1 - eps)) / (2 * eps)
    np.testing.assert_allclose(scores[1][0], numeric, rtol=2e-2, atol=1e-6)
    assert numeric > 1e-4  # well above float32 noise (~1e-5 here)


def test_prune_heads_refuses_bad_requests():
    model = classifier(num_heads=2)
    with pytest.raises(ValueError, match="`fraction` must be a number in \\[0, 1\\)"):
        prune_heads(model, 1.0, probe_texts=TEXTS)
    with pytest.raises(ValueError, match="at most 2 can go"):
        prune_heads(model, 0.9, probe_texts=TEXTS)
    with pytest.raises(ValueError, match="removes 2 heads from block 0, which has 2"):
        prune_heads(model, heads={0: [0, 1]}, probe_texts=TEXTS)
    with pytest.raises(ValueError, match="block 0, which has heads 0..1"):
        prune_heads(model, heads={0: [5]}, probe_texts=TEXTS)
    with pytest.raises(ValueError, match="`heads` names block 7"):
        prune_heads(model, heads={7: [0]}, probe_texts=TEXTS)
    with pytest.raises(ValueError, match="`head_counts` must be a list of `num_layers`=2"):
        kp.models.Bert(vocabulary_size=10, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=8,
                       head_counts=[2])


def test_keep_layers_copies_the_chosen_blocks():
    backbone = classifier(num_heads=2).backbone
    one = kp.recipes.keep_layers(backbone, [1])
    assert one.num_layers == 1 and one.count_params() < backbone.count_params()
    old = {v.path: np.asarray(v) for v in backbone.weights}
    for variable in one.weights:
        source = variable.path.replace("transformer_layer_0/", "transformer_layer_1/")
        np.testing.assert_array_equal(np.asarray(variable), old[source])
    for variable in kp.recipes.keep_layers(backbone, 2).weights:  # all blocks: an exact copy
        np.testing.assert_array_equal(np.asarray(variable), old[variable.path])
    with pytest.raises(ValueError, match="`layers` must name blocks in \\[0, 2\\)"):
        kp.recipes.keep_layers(backbone, [2])
