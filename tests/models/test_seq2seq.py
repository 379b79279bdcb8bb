"""Seq2Seq backbone: shapes, masking, serialization, and the same outputs on TensorFlow, JAX and torch."""

import json

import keras
import numpy as np
import pytest

import keras_ptft as kp
from tests import harness
from tests.models import backend_worker_seq2seq

CONFIG = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
              max_sequence_length=12, dropout=0.0)


def _inputs(seed=0, batch=2, encoder_length=7, decoder_length=5):
    rng = np.random.default_rng(seed)
    encoder_mask = np.ones((batch, encoder_length), "int32")
    encoder_mask[1, 4:] = 0
    decoder_mask = np.ones((batch, decoder_length), "int32")
    decoder_mask[1, 3:] = 0
    return {
        "encoder_token_ids": rng.integers(1, 40, (batch, encoder_length)).astype("int32") * encoder_mask,
        "encoder_padding_mask": encoder_mask,
        "decoder_token_ids": rng.integers(1, 40, (batch, decoder_length)).astype("int32") * decoder_mask,
        "decoder_padding_mask": decoder_mask,
    }


def _outputs(model, inputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in model(inputs, training=False).items()}


def test_output_shapes_and_tied_projection():
    model = kp.models.Seq2Seq(**CONFIG)
    outputs = _outputs(model, _inputs())
    assert outputs["encoder_sequence_output"].shape == (2, 7, 16)
    assert outputs["decoder_sequence_output"].shape == (2, 5, 16)
    logits = model.token_embedding(outputs["decoder_sequence_output"], reverse=True)
    assert tuple(logits.shape) == (2, 5, 40)
    # Shared + tied: one token matrix in the whole model.
    assert sum("token_embedding" in w.path for w in model.weights) == 1


def test_separate_and_untied_embeddings_add_their_own_matrices():
    shared = kp.models.Seq2Seq(**CONFIG)
    separate = kp.models.Seq2Seq(**CONFIG, share_embeddings=False, tie_embeddings=False)
    separate(_inputs())
    separate.token_embedding(np.zeros((1, 1, 16), "float32"), reverse=True)
    matrix = 40 * 16
    # An encoder matrix, plus the output projection's own (vocabulary x hidden) kernel.
    assert separate.count_params() - shared.count_params() == 2 * matrix
    assert separate.encoder_token_embedding is not separate.token_embedding
    assert shared.encoder_token_embedding is shared.token_embedding


def test_padding_is_invisible_and_the_decoder_is_causal():
    model = kp.models.Seq2Seq(**CONFIG)
    inputs = _inputs()
    reference = _outputs(model, inputs)
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["encoder_token_ids"][1, 4:] = 7  # padded source positions
    changed["decoder_token_ids"][0, 4] = (inputs["decoder_token_ids"][0, 4] % 39) + 1  # the last target token
    outputs = _outputs(model, changed)
    np.testing.assert_allclose(outputs["decoder_sequence_output"][1, :3], reference["decoder_sequence_output"][1, :3],
                               atol=1e-6)
    np.testing.assert_allclose(outputs["decoder_sequence_output"][0, :4], reference["decoder_sequence_output"][0, :4],
                               atol=1e-6)
    assert np.abs(outputs["decoder_sequence_output"][0, 4] - reference["decoder_sequence_output"][0, 4]).max() > 1e-4
    # The decoder reads the source: changing a real source token moves every target position.
    changed["encoder_token_ids"][0, 0] = (inputs["encoder_token_ids"][0, 0] % 39) + 1
    moved = _outputs(model, changed)["decoder_sequence_output"][0, 0]
    assert np.abs(moved - reference["decoder_sequence_output"][0, 0]).max() > 1e-4


def test_backbone_basics_and_sizes(tmp_path):
    # Shapes, shorter sequences, compiled predict, config / .keras / preset round trips.
    harness.run_backbone_test(kp.models.Seq2Seq, {**CONFIG, "share_embeddings": False}, _inputs(),
                              {"encoder_sequence_output": (2, 7, 16), "decoder_sequence_output": (2, 5, 16)}, tmp_path)
    tiny = kp.models.Seq2Seq.from_size("tiny", vocabulary_size=50, max_sequence_length=8)
    assert (tiny.num_layers, tiny.hidden_dim, tiny.num_heads, tiny.intermediate_dim) == (2, 128, 2, 512)
    assert set(kp.models.SEQ2SEQ_SIZES) >= {"tiny", "mini", "small", "base"}


@pytest.mark.parametrize(
    "overrides, argument",
    [({"num_heads": 3}, "hidden_dim"), ({"num_layers": 0}, "num_layers"), ({"dropout": 1.0}, "dropout"),
     ({"share_embeddings": "yes"}, "share_embeddings"), ({"tie_embeddings": 1}, "tie_embeddings")],
)
def test_bad_config_names_the_argument(overrides, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        kp.models.Seq2Seq(**{**CONFIG, **overrides})
    with pytest.raises(ValueError, match="`size`"):
        kp.models.Seq2Seq.from_size("huge", vocabulary_size=10)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_parity(backend, tmp_path, run_on_backend):
    keras.utils.set_random_seed(3)
    model = kp.models.Seq2Seq(**CONFIG, share_embeddings=False)
    inputs = _inputs(seed=1)
    with open(tmp_path / "seq2seq_config.json", "w") as handle:
        json.dump(model.get_config(), handle)
    model.save_weights(tmp_path / "seq2seq.weights.h5")
    np.savez(tmp_path / "inputs.npz", **inputs)
    expected = _outputs(model, inputs)
    outputs = run_on_backend(backend_worker_seq2seq.main, backend, tmp_path)
    for name, value in expected.items():
        assert np.max(np.abs(outputs[name] - value)) <= 1e-4, name
    assert outputs["backend"] == backend
