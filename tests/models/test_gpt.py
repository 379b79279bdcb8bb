import keras
import keras_hub
import numpy as np
import pytest

from keras_ptft.models import GPT, GPT_SIZES
from tests import harness

CONFIG = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
              max_sequence_length=12, dropout=0.0)


def _inputs(batch=2, length=7, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), "int32")
    mask[batch - 1, 5:] = 0 if batch > 1 else 1
    return {"token_ids": rng.integers(1, 40, (batch, length)).astype("int32"), "padding_mask": mask}


def test_output_shape_and_logits_use_tied_embedding():
    gpt = GPT(**CONFIG)
    inputs = _inputs()
    hidden = keras.ops.convert_to_numpy(gpt(inputs))
    assert hidden.shape == (2, 7, 16)
    logits = keras.ops.convert_to_numpy(gpt.token_embedding(hidden, reverse=True))
    embedding = keras.ops.convert_to_numpy(gpt.token_embedding.embeddings)
    np.testing.assert_allclose(logits, hidden @ embedding.T, atol=1e-5)
    assert len(gpt.token_embedding.weights) == 1


def test_untied_embeddings_have_their_own_output_matrix():
    gpt = GPT(**CONFIG, tie_embeddings=False)
    assert len(gpt.token_embedding.weights) == 2


def test_attention_is_causal():
    gpt = GPT(**CONFIG)
    inputs = _inputs(batch=1)
    changed = {k: v.copy() for k, v in inputs.items()}
    changed["token_ids"][0, 4:] = (changed["token_ids"][0, 4:] + 7) % 40
    before = keras.ops.convert_to_numpy(gpt(inputs))
    after = keras.ops.convert_to_numpy(gpt(changed))
    np.testing.assert_allclose(before[:, :4], after[:, :4], atol=1e-6)
    assert np.abs(before[:, 4:] - after[:, 4:]).max() > 1e-3


def test_matches_keras_hub_gpt2_with_the_same_weights():
    # An independent implementation of the same architecture: GPT-2 is pre-LN with learned
    # positions and tied embeddings, so copying the weights over must reproduce its outputs.
    gpt = GPT(**CONFIG)
    reference = keras_hub.models.GPT2Backbone(**{k: v for k, v in CONFIG.items()})
    reference.set_weights(gpt.get_weights())
    inputs = _inputs()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gpt(inputs)), keras.ops.convert_to_numpy(reference(inputs)), atol=1e-5
    )


def test_backbone_basics(tmp_path):
    # Shapes, shorter sequences, compiled predict, config / .keras / preset round trips.
    harness.run_backbone_test(GPT, {**CONFIG, "tie_embeddings": False}, _inputs(), (2, 7, 16), tmp_path)


def test_named_sizes():
    gpt = GPT.from_size("tiny", vocabulary_size=30, max_sequence_length=8, num_layers=1)
    assert (gpt.num_layers, gpt.hidden_dim, gpt.num_heads, gpt.intermediate_dim) == (1, 128, 2, 512)
    assert set(GPT_SIZES) >= {"tiny", "mini", "small", "124M"}


@pytest.mark.slow
def test_base_has_gpt2_small_parameter_count():
    # GPT-2 small with its 50257-token vocabulary has 124,439,808 parameters (tied embeddings).
    gpt = GPT.from_size("base", vocabulary_size=50257, dtype="bfloat16")
    assert gpt.count_params() == 124_439_808


@pytest.mark.parametrize(
    "override, message",
    [
        (dict(num_heads=3), "divisible"),
        (dict(vocabulary_size=0), "vocabulary_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(tie_embeddings="yes"), "tie_embeddings"),
    ],
)
def test_bad_config_is_rejected(override, message):
    with pytest.raises(ValueError, match=message):
        GPT(**{**CONFIG, **override})


def test_unknown_size_is_rejected():
    with pytest.raises(ValueError, match="size"):
        GPT.from_size("huge", vocabulary_size=10)
