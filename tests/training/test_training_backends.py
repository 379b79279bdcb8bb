"""The training toolkit on JAX and PyTorch (the session's backend processes, `run_on_backend`),
results checked here against the same NumPy/TensorFlow references as the in-process tests."""

import numpy as np
import pytest

import keras_ptft as kp
from tests.training import backend_worker_training


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_toolkit_on_backend(backend, run_on_backend, tmp_path):
    results = run_on_backend(backend_worker_training.main, backend, tmp_path / "run", timeout=900)
    assert results["backend"] == backend
    steps = [0, 3, 10, 25, 60, 100]
    # References computed here (TensorFlow side) from the closed forms.
    warmup_cosine = [1e-3 * s / 10 if s < 10 else 1e-3 * 0.5 * (1 + np.cos(np.pi * (s - 10) / 90)) for s in steps]
    np.testing.assert_allclose(results["schedules"]["warmup_cosine"], warmup_cosine, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(results["schedules"]["inverse_sqrt"],
                               [1e-3 * s / 10 if s < 10 else 1e-3 * np.sqrt(10 / s) for s in steps], rtol=1e-5)
    np.testing.assert_allclose(results["schedules"]["step"], [1e-3 * 0.5 ** (s // 20) for s in steps], rtol=1e-5)
    for name in ("restarts", "one_cycle"):
        schedule = {"restarts": kp.schedules.CosineRestarts(1e-3, cycle_steps=20, t_mul=2.0),
                    "one_cycle": kp.schedules.OneCycle(1e-3, total_steps=100)}[name]
        np.testing.assert_allclose(results["schedules"][name], [float(schedule(s)) for s in steps], rtol=1e-4)
    warmup_linear = kp.schedules.WarmupDecay(0.05, total_steps=8, warmup_steps=2)
    np.testing.assert_allclose(results["logged_rates"], [float(warmup_linear(s)) for s in range(8)], rtol=1e-5)
    assert np.isfinite(results["classifier_loss"]).all()
    assert results["lora_trainable"] == 4 * 0 + 2 * (16 * 2 * 2 + 2 * 8 + 2 * 8) + 16 * 2 + 2
    # MaskedLM(checkpoint_dir=...) resumes on this backend: weights restored, epoch 3 only.
    resume = results["mlm_resume"]
    assert resume["epochs"] == [3] and resume["history_epochs"] == [0, 1, 2]
    assert resume["restored_max_diff"] == 0.0 and resume["iterations"] == 3 * 2
