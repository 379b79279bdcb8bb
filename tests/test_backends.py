"""The backbone, the masked-LM task and the classifier recipe on JAX and PyTorch.

Each backend runs in its own subprocess (Keras picks its backend once per process); the
TensorFlow side writes the weights and inputs and holds the reference outputs.
"""

import json
import os

import numpy as np
import pytest

import keras
from keras_ptft.models import Bert

WORKER = os.path.join(os.path.dirname(__file__), "backend_worker.py")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("backends")
    keras.utils.set_random_seed(3)
    bert = Bert(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=16)
    rng = np.random.default_rng(0)
    padding_mask = np.ones((3, 9), "int32")
    padding_mask[1, 6:] = 0
    inputs = {
        "token_ids": rng.integers(0, 50, (3, 9)).astype("int32"),
        "segment_ids": (np.arange(9) >= 5).astype("int32")[None].repeat(3, 0),
        "padding_mask": padding_mask,
    }
    with open(work_dir / "bert_config.json", "w") as handle:
        json.dump(bert.get_config(), handle)
    bert.save_weights(work_dir / "bert.weights.h5")
    np.savez(work_dir / "inputs.npz", **inputs)
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in bert(inputs, training=False).items()}
    return work_dir, outputs


def run_worker(run_on_backend, backend, work_dir):
    run_on_backend(WORKER, backend, work_dir)
    with open(work_dir / f"{backend}_report.json") as handle:
        report = json.load(handle)
    assert report["backend"] == backend
    return report, dict(np.load(work_dir / f"{backend}_outputs.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend(backend, reference, run_on_backend):
    work_dir, expected = reference
    report, outputs = run_worker(run_on_backend, backend, work_dir)
    # Same weights, same outputs: float32 parity within 1e-4.
    for name in ("sequence_output", "pooled_output"):
        assert np.max(np.abs(outputs[name] - expected[name])) <= 1e-4, name
    # Pretraining learns on this backend.
    losses = report["mlm_loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"mat", "rug", "branch"} & set(report["fill_mask"]), report["fill_mask"]
    # The recipe trains and predicts probabilities from raw strings.
    assert report["classifier_predict_shape"] == [3, 3]
    np.testing.assert_allclose(report["classifier_predict_sums"], 1.0, atol=1e-5)
    # Each sentence has its own label (chance 1/3): a working recipe learns well above chance.
    assert max(report["classifier_accuracy"][-3:]) > 0.6, report["classifier_accuracy"]
