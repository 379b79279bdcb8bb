"""Data and model parallelism on two virtual CPU devices equal the single-device run; bad
distribution arguments get named errors. JAX (two host devices) and TensorFlow (two logical CPUs)
run in a process of their own; the PyTorch refusal runs in the session's PyTorch process."""

import os

import pytest

from tests.training import distribution_worker


def _figures(run_on_backend, backend, tmp_path=None):
    own_process = backend != "torch"  # the device count is fixed when the backend starts
    env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"} if own_process else None
    if backend == "jax":
        # The worker trains the same tiny models several times (one-device references, runs to
        # resume): JAX's persistent cache compiles each identical program once, whatever its size.
        env.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    figures = run_on_backend(distribution_worker.main, backend, timeout=600, fresh_process=own_process, env=env)
    assert figures["backend"] == backend
    return figures


@pytest.mark.timeout(600)
def test_jax_data_and_model_parallel_equal_one_device(run_on_backend, tmp_path):
    figures = _figures(run_on_backend, "jax", tmp_path)
    print("seconds per section:", figures["seconds"])  # shown with -s: where this test's time goes
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
    # A backbone made before the distribution was chosen is re-created sharded, same outputs.
    assert figures["copy"]["shards"] == 2 and figures["copy"]["diff"] <= 1e-5
    assert "(12, 3, 4)" in figures["copy_layout_error"]
    assert figures["task_distribution"] == "DataParallel" and len(figures["task_losses"]) == 2
    assert all(0 < loss < 10 for loss in figures["task_losses"])
    assert "batch_size`=5" in figures["task_batch_error"]
    # A task trained with distribution="data_parallel" ends where the one-device task ends.
    assert figures["task_predictions_diff"] <= 1e-5, figures["task_predictions_diff"]
    # keras-ptft pretrain --distribution data --devices 2 trains on the two devices and says so.
    assert figures["cli"]["code"] == 0 and figures["cli"]["saved"], figures["cli"]
    assert "DataParallel" in figures["cli"]["mesh_line"] and "batch=2" in figures["cli"]["mesh_line"], figures["cli"]
    # checkpoint_dir resumes across device counts: epoch 2 on the other count ends where two
    # uninterrupted one-device epochs end.
    for direction in ("resume_2_to_1", "resume_1_to_2"):
        assert figures[direction]["epochs"] == [0, 1], figures[direction]
        assert figures[direction]["resumed_epochs_run"] == [1], figures[direction]  # only epoch 2 ran
        assert figures[direction]["diff"] <= 1e-5, (direction, figures[direction])
    assert "`distribution` must be one of" in figures["unknown_name_error"]
    assert "`devices`=4" in figures["devices_error"] and "xla_force_host_platform_device_count" in figures["devices_error"]
    # The translator recipe takes the switch: four SGD steps on two devices end where one device
    # ends (and the weights did move, so equal is not trivially equal).
    assert figures["translator_distribution"] == "DataParallel" and figures["translator_devices"] == 2
    assert figures["translator_moved"] > 1e-3, figures["translator_moved"]
    assert figures["translator_diff"] <= 1e-5, figures["translator_diff"]
    error = figures["translator_model_parallel_error"]
    assert error.startswith("ValueError") and "model_parallel" in error and "Seq2Seq" in error, error
    # DenoisingLM (its packed, re-corrupted tf.data batches) trains under data parallelism.
    denoiser = figures["denoiser"]
    assert denoiser["distribution"] == "DataParallel" and denoiser["devices"] == 2, denoiser
    assert len(denoiser["losses"]) == 2 and all(0 < loss < 10 for loss in denoiser["losses"]), denoiser
    # keras-ptft pretrain seq2seq --distribution data --devices 2: the mesh, a loss, a saved model;
    # --distribution model is refused for it, naming the backbone, before any training.
    cli = figures["cli_seq2seq"]
    assert cli["code"] == 0 and cli["saved"] and cli["loss_lines"], cli
    assert "DataParallel" in cli["mesh_line"] and "batch=2" in cli["mesh_line"], cli
    refused = figures["cli_seq2seq_model"]
    assert refused["code"] == 1 and not refused["saved"] and "Seq2Seq" in refused["stderr"], refused


@pytest.mark.timeout(600)
def test_tensorflow_mirrored_strategy_equals_one_device(run_on_backend):
    figures = _figures(run_on_backend, "tensorflow")
    print("seconds per section:", figures["seconds"])
    assert figures["replicas"] == 2 and "MirroredStrategy" in figures["describe"]
    assert figures["dp_forward"] <= 1e-5 and figures["dp_weights"] <= 1e-5
    assert "needs the JAX backend" in figures["model_parallel_error"]
    assert "batch_size`=5" in figures["batch_error"]
    # Tasks build and train under the strategy: a classifier ends where the one-device one ends.
    assert figures["task_predictions_diff"] <= 1e-5, figures["task_predictions_diff"]
    assert len(figures["task_losses"]) == 2 and all(0 < loss < 10 for loss in figures["task_losses"])


@pytest.mark.timeout(300)
def test_torch_refuses_with_the_keras_version(run_on_backend):
    figures = _figures(run_on_backend, "torch")
    assert figures["torch_error"].startswith("ValueError") and "Keras master" in figures["torch_error"]


@pytest.mark.timeout(600)
def test_two_jax_processes_on_loopback_train_like_one(tmp_path, run_on_backend):
    """jax.distributed through keras.distribution.initialize, coordinator on 127.0.0.1: a MaskedLM
    trained three steps by two processes (one CPU device and half the global batch each) ends
    with the single-process weights."""
    import socket
    import subprocess
    import sys

    import numpy as np

    from tests.backend_server import fast_compile_env
    from tests.conftest import REPO_ROOT
    from tests.training import multihost_worker

    pytest.importorskip("jax", reason="the jax extra is not installed (pip install '.[jax]')")
    worker = os.path.join(os.path.dirname(__file__), "multihost_worker.py")
    env = fast_compile_env({"KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3",
                            "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
                            "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))})
    with socket.socket() as probe:  # a free loopback port for the coordinator
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The single-process reference: the session's JAX process (one CPU device, as each of the two).
    assert run_on_backend(multihost_worker.single, "jax", tmp_path / "single.npz")["devices"] == 1
    processes = [subprocess.Popen([sys.executable, worker, str(i), tmp_path / f"p{i}.npz", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(2)]
    try:
        errors = [p.communicate(timeout=300)[1] for p in processes]
    finally:
        for p in processes:
            p.kill()
    assert [p.returncode for p in processes] == [0, 0], "\n".join(e[-2000:] for e in errors)
    want = np.load(tmp_path / "single.npz")
    for i in range(2):
        got = np.load(tmp_path / f"p{i}.npz")
        np.testing.assert_allclose(got["losses"], want["losses"], atol=1e-6)
        assert max(float(np.max(np.abs(got[k] - want[k]))) for k in want.files) <= 1e-5
