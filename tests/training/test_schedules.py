import numpy as np
import pytest

import keras
from keras_ptft.schedules import WarmupDecay


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


# === The schedules added for issue 3: each against an independent NumPy reference ===
import keras_ptft as kp  # noqa: E402
from keras_ptft import schedules  # noqa: E402


def values(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


STEPS = np.array([0, 1, 4, 5, 6, 10, 33, 50, 99, 100, 101, 150])


@pytest.mark.parametrize("warmup", [0, 5])
def test_polynomial_exponential_inverse_sqrt(warmup):
    peak, end, total = 1e-3, 1e-5, 100
    p = np.clip((STEPS - warmup) / (total - warmup), 0, 1)
    warming = peak * STEPS / max(warmup, 1)
    expected = {
        "polynomial": end + (peak - end) * (1 - p) ** 2.0,
        "exponential": peak * 0.05**p,
        "inverse_sqrt": peak * np.sqrt(max(warmup, 1) / np.maximum(STEPS, max(warmup, 1))),
    }
    for decay, after in expected.items():
        schedule = schedules.WarmupDecay(peak, total_steps=total, warmup_steps=warmup, decay=decay,
                                         end_learning_rate=end, power=2.0, decay_rate=0.05)
        want = np.where(STEPS < warmup, warming, after)
        np.testing.assert_allclose(values(schedule, STEPS), want, rtol=1e-5, err_msg=decay)


def test_step_and_piecewise():
    step = schedules.StepDecay(1e-2, step_size=10, gamma=0.5, warmup_steps=5)
    want = np.where(STEPS < 5, 1e-2 * STEPS / 5, 1e-2 * 0.5 ** np.floor(np.maximum(STEPS - 5, 0) / 10))
    np.testing.assert_allclose(values(step, STEPS), want, rtol=1e-6)
    piecewise = schedules.StepDecay(boundaries=[10, 50], values=[1e-2, 1e-3, 1e-4])
    want = np.select([STEPS < 10, STEPS < 50], [1e-2, 1e-3], 1e-4)
    np.testing.assert_allclose(values(piecewise, STEPS), want, rtol=1e-6)


def sgdr_reference(step, peak, cycle, t_mul, m_mul, alpha, warmup):
    """Walks the cycles one by one (no closed form) to find where `step` falls."""
    if step < warmup:
        return peak * step / warmup
    t, start, length, i = step - warmup, 0.0, float(cycle), 0
    while t >= start + length:
        start, length, i = start + length, length * t_mul, i + 1
    top = peak * m_mul**i
    return top * (alpha + (1 - alpha) * 0.5 * (1 + np.cos(np.pi * (t - start) / length)))


@pytest.mark.parametrize("t_mul", [1.0, 2.0])
def test_cosine_restarts(t_mul):
    schedule = schedules.CosineRestarts(1e-3, cycle_steps=10, t_mul=t_mul, m_mul=0.5, alpha=0.1, warmup_steps=4)
    steps = np.arange(0, 80)
    want = [sgdr_reference(s, 1e-3, 10, t_mul, 0.5, 0.1, 4) for s in steps]
    np.testing.assert_allclose(values(schedule, steps), want, rtol=2e-4, atol=1e-9)


def test_one_cycle():
    schedule = schedules.OneCycle(1e-2, total_steps=100, pct_start=0.25, div_factor=10, final_div_factor=100)
    low, final = 1e-3, 1e-5
    rise = np.clip(STEPS / 25, 0, 1)
    fall = np.clip((STEPS - 25) / 75, 0, 1)
    want = np.where(STEPS < 25, low + (1e-2 - low) * (1 - np.cos(np.pi * rise)) / 2,
                    final + (1e-2 - final) * (1 + np.cos(np.pi * fall)) / 2)
    np.testing.assert_allclose(values(schedule, STEPS), want, rtol=1e-5)
    assert float(schedule(0)) == pytest.approx(low) and float(schedule(100)) == pytest.approx(final)


def test_training_steps_helper():
    assert schedules.training_steps(67_349, 32, 3, warmup_ratio=0.1) == (6315, 632)
    assert schedules.training_steps(100, 32, 2, drop_remainder=True, warmup_steps=1) == (6, 1)
    with pytest.raises(ValueError, match="longer than the whole run"):
        schedules.training_steps(10, 5, 1, warmup_steps=3)
    with pytest.raises(ValueError, match="batch_size"):
        schedules.training_steps(10, 0, 1)


def test_every_schedule_survives_a_keras_file(tmp_path):
    all_schedules = [
        schedules.WarmupDecay(1e-3, total_steps=50, warmup_steps=5, decay="polynomial", power=2.0),
        schedules.StepDecay(1e-3, step_size=7, gamma=0.3, warmup_steps=2),
        schedules.StepDecay(boundaries=[3, 9], values=[1e-3, 1e-4, 1e-5]),
        schedules.CosineRestarts(1e-3, cycle_steps=9, t_mul=2.0, m_mul=0.9),
        schedules.OneCycle(1e-3, total_steps=40),
    ]
    for i, schedule in enumerate(all_schedules):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
        model.save(tmp_path / f"m{i}.keras")
        restored = keras.saving.load_model(tmp_path / f"m{i}.keras").optimizer._learning_rate
        assert type(restored) is type(schedule) and restored.get_config() == schedule.get_config()
        np.testing.assert_allclose(values(restored, range(0, 50, 3)), values(schedule, range(0, 50, 3)))


def test_get_by_name_and_bad_names():
    assert isinstance(kp.schedules.get("cosine", 1e-3, total_steps=10), schedules.WarmupDecay)
    assert isinstance(kp.schedules.get("one_cycle", 1e-3, total_steps=10), schedules.OneCycle)
    with pytest.raises(ValueError, match="valid names.*cosine"):
        kp.schedules.get("zigzag", 1e-3)
    with pytest.raises(ValueError, match="peak_learning_rate"):
        schedules.CosineRestarts(-1.0, cycle_steps=3)
    with pytest.raises(ValueError, match="values"):
        schedules.StepDecay(boundaries=[3], values=[1e-3])
    with pytest.raises(ValueError, match="total_steps"):
        schedules.OneCycle(1e-3)(3)
