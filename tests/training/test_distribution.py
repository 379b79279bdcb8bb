"""Data and model parallelism on two virtual CPU devices equal the single-device run; bad
distribution arguments get named errors. One subprocess per backend."""

import json
import os

import pytest

WORKER = os.path.join(os.path.dirname(__file__), "distribution_worker.py")


def _figures(run_on_backend, backend):
    result = run_on_backend(WORKER, backend, backend, timeout=600)
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)
def test_jax_data_and_model_parallel_equal_one_device(run_on_backend):
    figures = _figures(run_on_backend, "jax")
    assert "DataParallel" in figures["describe"] and "batch=2" in figures["describe"]
    # Three SGD steps on a global batch of 8 split over two devices: the same weights as on one.
    assert figures["dp_forward"] <= 1e-5 and figures["dp_weights"] <= 1e-5
    for name in ("bert", "gpt", "vit"):
        model_parallel = figures[f"mp_{name}"]
        assert model_parallel["query_spec"].replace("PartitionSpec", "P") == "P(None, 'model', None)", name
        assert model_parallel["shards"] == 2, name
        assert model_parallel["forward"] <= 1e-5 and model_parallel["weights"] <= 1e-5, (name, model_parallel)
    assert "batch_size`=5" in figures["batch_error"] and "(2)" in figures["batch_error"]
    assert "query/kernel" in figures["layout_error"] and "(12, 3, 4)" in figures["layout_error"]
    assert "`distribution` must be one of" in figures["unknown_name_error"]
    assert "`devices`=4" in figures["devices_error"] and "xla_force_host_platform_device_count" in figures["devices_error"]


@pytest.mark.timeout(600)
def test_tensorflow_mirrored_strategy_equals_one_device(run_on_backend):
    figures = _figures(run_on_backend, "tensorflow")
    assert figures["replicas"] == 2 and "MirroredStrategy" in figures["describe"]
    assert figures["dp_forward"] <= 1e-5 and figures["dp_weights"] <= 1e-5
    assert "needs the JAX backend" in figures["model_parallel_error"]
    assert "batch_size`=5" in figures["batch_error"]


@pytest.mark.timeout(300)
def test_torch_refuses_with_the_keras_version(run_on_backend):
    figures = _figures(run_on_backend, "torch")
    assert figures["torch_error"].startswith("ValueError") and "Keras master" in figures["torch_error"]
