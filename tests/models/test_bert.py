import numpy as np
import pytest

import keras
from keras_ptft.models import BERT_SIZES, Bert
from tests import harness

CONFIG = dict(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16, max_sequence_length=12)


def tiny_bert(**kwargs):
    return harness.tiny_bert(**{**CONFIG, **kwargs})


def inputs(batch=2, length=7, vocabulary_size=30, seed=0):
    rng = np.random.default_rng(seed)
    padding_mask = np.ones((batch, length), "int32")
    padding_mask[0, -2:] = 0
    return {
        "token_ids": rng.integers(0, vocabulary_size, (batch, length)).astype("int32"),
        "segment_ids": (np.arange(length)[None, :] >= length // 2).astype("int32").repeat(batch, 0),
        "padding_mask": padding_mask,
    }


def test_backbone_basics(tmp_path):
    # Shapes, shorter sequences, compiled predict, config / .keras / preset round trips.
    harness.run_backbone_test(Bert, CONFIG, inputs(), {"sequence_output": (2, 7, 8), "pooled_output": (2, 8)},
                              tmp_path)


@pytest.mark.parametrize(
    "size,layers,hidden,heads",
    [("tiny", 2, 128, 2), ("mini", 4, 256, 4), ("small", 4, 512, 8), ("medium", 8, 512, 8), ("base", 12, 768, 12)],
)
def test_named_sizes_follow_bert_miniatures(size, layers, hidden, heads):
    assert BERT_SIZES[size] == dict(num_layers=layers, hidden_dim=hidden, num_heads=heads, intermediate_dim=4 * hidden)


def test_from_size_builds_the_named_architecture_with_overrides():
    bert = Bert.from_size("tiny", vocabulary_size=100, max_sequence_length=32, dropout=0.0)
    assert (bert.num_layers, bert.hidden_dim, bert.num_heads, bert.intermediate_dim) == (2, 128, 2, 512)
    assert bert.max_sequence_length == 32 and bert.dropout == 0.0
    # 12-layer BERT-base with BERT's own 30522 vocabulary has 109.5 M parameters (published figure).
    base = Bert.from_size("base", vocabulary_size=30522)
    assert abs(base.count_params() - 109_482_240) < 1000


def test_padding_does_not_change_real_token_outputs():
    bert = tiny_bert(dropout=0.0)
    x = inputs(batch=1, length=5)
    x["padding_mask"][:] = 1
    short = bert(x)["sequence_output"]
    padded = {k: np.concatenate([v, np.zeros((1, 3), "int32")], axis=1) for k, v in x.items()}
    long = bert(padded)["sequence_output"]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(short), keras.ops.convert_to_numpy(long)[:, :5], atol=1e-5)


def test_config_round_trip_keeps_every_option():
    harness.run_serialization_test(tiny_bert(activation="relu", layer_norm_epsilon=1e-6, num_segments=3))


def test_exact_gelu_differs_from_tanh_approximation():
    exact, approx = tiny_bert(dropout=0.0), tiny_bert(dropout=0.0, activation="gelu_approximate")
    approx.set_weights(exact.get_weights())
    x = inputs()
    a = keras.ops.convert_to_numpy(exact(x)["sequence_output"])
    b = keras.ops.convert_to_numpy(approx(x)["sequence_output"])
    assert 0 < np.abs(a - b).max() < 1e-2


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(hidden_dim=10, num_heads=3), "divisible by `num_heads`"),
        (dict(num_layers=0), "num_layers"),
        (dict(vocabulary_size=-1), "vocabulary_size"),
        (dict(dropout=1.5), "dropout"),
        (dict(activation="swishy"), "activation"),
        (dict(num_segments=0), "num_segments"),
    ],
)
def test_bad_config_is_rejected_with_the_argument_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny_bert(**kwargs)


def test_unknown_size_lists_the_valid_ones():
    with pytest.raises(ValueError, match="tiny"):
        Bert.from_size("huge", vocabulary_size=10)
