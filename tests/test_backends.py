"""The backbone, the masked-LM task, the classifier recipe, hidden-state distillation and head
importance on JAX and PyTorch.

The checks run in the session's JAX / PyTorch process (`run_on_backend`; Keras picks its backend
once per process), once per backend for the module; the TensorFlow side writes the weights and
inputs and holds the reference outputs.
"""

import json

import numpy as np
import pytest

import keras
from keras_ptft.models import Bert
from tests import backend_worker


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


@pytest.fixture(scope="module", params=["jax", "torch"])
def report(request, reference, run_on_backend):
    report = run_on_backend(backend_worker.main, request.param, reference[0])
    assert report["backend"] == request.param
    return report


@pytest.mark.slow
def test_same_weights_give_the_same_outputs(report, reference):
    _, expected = reference
    # Float32 parity within 1e-4.
    for name in ("sequence_output", "pooled_output"):
        assert np.max(np.abs(report[name] - expected[name])) <= 1e-4, name


@pytest.mark.slow
def test_pretraining_learns(report):
    losses = report["mlm_loss"]
    assert losses[-1] < 0.7 * losses[0], losses
    assert {"mat", "rug", "branch"} & set(report["fill_mask"]), report["fill_mask"]


@pytest.mark.slow
def test_the_recipe_trains_and_predicts_from_raw_strings(report):
    assert report["classifier_predict_shape"] == [3, 3]
    np.testing.assert_allclose(report["classifier_predict_sums"], 1.0, atol=1e-5)
    # Each sentence has its own label (chance 1/3): a working recipe learns well above chance.
    assert max(report["classifier_accuracy"][-3:]) > 0.6, report["classifier_accuracy"]


@pytest.mark.slow
def test_hidden_state_distillation_trains_the_student_and_projection_only(report):
    before, after = report["distill_hidden_loss"]
    assert after < 0.7 * before, report["distill_hidden_loss"]
    assert report["distill_projection_change"] > 1e-4
    assert report["distill_teacher_change"] == 0.0  # the teacher is read, never trained


@pytest.mark.slow
def test_head_importance_is_the_gradient_of_the_loss_wrt_a_head_gate(report):
    numeric = report["head_importance_numeric"]
    np.testing.assert_allclose(report["head_importance"], numeric, rtol=2e-2, atol=1e-6)
    assert numeric > 1e-4  # well above float32 noise
