import numpy as np
import pytest

import keras
from keras_ptft.training import WarmupDecay


def reference(step, peak, total, warmup, decay, end=0.0):
    step = np.asarray(step, "float64")
    progress = np.clip((step - warmup) / max(total - warmup, 1), 0, 1)
    if decay == "linear":
        after = end + (peak - end) * (1 - progress)
    elif decay == "cosine":
        after = end + (peak - end) * 0.5 * (1 + np.cos(np.pi * progress))
    else:
        after = np.full_like(step, peak)
    return np.where(step < warmup, peak * step / max(warmup, 1), after)


@pytest.mark.parametrize("decay", ["linear", "cosine", "constant"])
@pytest.mark.parametrize("warmup", [0, 1, 10])
def test_matches_the_closed_form(decay, warmup):
    schedule = WarmupDecay(2e-3, total_steps=100, warmup_steps=warmup, decay=decay, end_learning_rate=1e-5)
    steps = np.array([0, 1, warmup - 1, warmup, warmup + 1, 50, 99, 100, 150])
    steps = steps[steps >= 0]
    got = np.array([float(schedule(s)) for s in steps])
    np.testing.assert_allclose(got, reference(steps, 2e-3, 100, warmup, decay, 1e-5), rtol=1e-5, atol=1e-9)


def test_warmup_ratio_and_late_resolution():
    schedule = WarmupDecay(1e-3, warmup_ratio=0.1)
    assert schedule.total_steps is None
    schedule.resolve(200)
    assert schedule.warmup_steps == 20
    assert float(schedule(10)) == pytest.approx(5e-4)
    assert float(schedule(200)) == pytest.approx(0.0, abs=1e-12)


def test_survives_serialization():
    schedule = WarmupDecay(1e-3, total_steps=50, warmup_steps=5, decay="cosine")
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert restored.get_config() == schedule.get_config()
    assert float(restored(30)) == pytest.approx(float(schedule(30)))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(peak_learning_rate=0), "peak_learning_rate"),
        (dict(peak_learning_rate=-1e-3), "peak_learning_rate"),
        (dict(peak_learning_rate=1e-3, total_steps=10, warmup_steps=20), "longer than the whole run"),
        (dict(peak_learning_rate=1e-3, decay="zigzag"), "decay"),
        (dict(peak_learning_rate=1e-3, warmup_ratio=1.5), "warmup_ratio"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WarmupDecay(**kwargs)
