"""A text's outputs do not depend on how it is padded: alone at its own length, batched with longer
texts, or padded to another bucket length give the same `Bert` and `GPT` outputs (<= 1e-5 in
float32) on TensorFlow, JAX and PyTorch. This is what makes length bucketing
(`keras_ptft.data.bucketing`) safe: it only removes right padding."""

import json

import keras
import numpy as np
import pytest

import keras_ptft as kp
from tests.models import backend_worker_padding
from tests.models.backend_worker_padding import VOCABULARY_SIZE, outputs_per_case
TOLERANCE = 1e-5


def _models():
    keras.utils.set_random_seed(3)
    common = dict(vocabulary_size=VOCABULARY_SIZE, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                  max_sequence_length=32, dropout=0.0)
    return {"bert": kp.models.Bert(**common), "gpt": kp.models.GPT(**common)}


def _check_invariant(results: dict[str, np.ndarray]) -> float:
    groups = {}
    for key, value in results.items():
        groups.setdefault(key.rsplit("/", 1)[0], {})[key.rsplit("/", 1)[1]] = value
    assert len(groups) == 2 * 2 * 3  # two models, two outputs each, three texts
    worst = 0.0
    for group, by_case in groups.items():
        assert len(by_case) == 4, by_case.keys()  # alone, together, bucket16, bucket24
        reference = by_case["alone"]
        assert np.abs(reference).max() > 1e-3  # a real output, not an all-zero one
        for case, value in by_case.items():
            difference = np.abs(value - reference).max()
            assert difference <= TOLERANCE, f"{group}: {case} differs from alone by {difference:.2e}"
            worst = max(worst, float(difference))
    return worst


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("padding_invariance")
    results = {}
    for kind, model in _models().items():
        with open(work_dir / f"{kind}_config.json", "w") as handle:
            json.dump(model.get_config(), handle)
        model.save_weights(work_dir / f"{kind}.weights.h5")
        results.update({f"{kind}/{key}": value for key, value in outputs_per_case(model, kind).items()})
    return work_dir, results


def test_padding_invariance_in_process(reference):
    _, results = reference
    print(f"\ntensorflow: largest change from padding {_check_invariant(results):.1e}")


def test_the_check_catches_a_padding_leak(reference):
    # The check must fail when padding leaks in: here a text's output is replaced by the output
    # with its padding unmasked.
    _, results = reference
    model = _models()["bert"]
    from tests.models.backend_worker_padding import batch, texts

    inputs = batch([texts()[0]], 16, with_segments=True)
    inputs["padding_mask"][:] = 1
    leaked = dict(results)
    leaked["bert/sequence/0/bucket16"] = keras.ops.convert_to_numpy(model(inputs)["sequence_output"][0, :5])
    with pytest.raises(AssertionError, match="bucket16 differs from alone"):
        _check_invariant(leaked)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_padding_invariance_on_other_backends(backend, reference, run_on_backend):
    work_dir, expected = reference
    results = run_on_backend(backend_worker_padding.main, backend, work_dir)
    assert results.pop("backend") == backend
    assert results.keys() == expected.keys()
    print(f"\n{backend}: largest change from padding {_check_invariant(results):.1e}")
    # And the same weights give the same outputs as on TensorFlow.
    for key, value in results.items():
        np.testing.assert_allclose(value, expected[key], atol=1e-4, err_msg=key)
