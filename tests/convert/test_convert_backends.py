"""The converter, its MLM head and the sentence embedder on JAX and PyTorch, against the NumPy
reference (in the session's JAX / PyTorch process, `run_on_backend`)."""

import numpy as np
import pytest

from tests.convert import backend_worker_convert
from tests.convert.hf_folders import numpy_bert, numpy_mlm_logits, tiny_config, tiny_weights, write_folder


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_convert_on_backend(backend, tmp_path, run_on_backend):
    config = tiny_config(hidden_act="gelu_new")
    weights = tiny_weights(config)
    write_folder(tmp_path / "hf", config, weights)
    inputs = {
        "token_ids": np.array([[2, 5, 6, 7, 3], [2, 9, 12, 3, 0]], "int32"),
        "segment_ids": np.array([[0, 0, 1, 2, 2], [0, 1, 1, 1, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], "int32"),
    }
    np.savez(tmp_path / "inputs.npz", **inputs)
    got = run_on_backend(backend_worker_convert.main, backend, tmp_path)
    assert got["backend"] == backend

    sequence, _ = numpy_bert(weights, config, inputs["token_ids"], inputs["segment_ids"], inputs["padding_mask"])
    real = inputs["padding_mask"].astype(bool)
    np.testing.assert_allclose(got["sequence_output"][real], sequence[real], atol=1e-4)
    want_logits = np.take_along_axis(numpy_mlm_logits(weights, config, sequence),
                                     np.array([[1, 2], [0, 3]])[..., None], axis=1)
    np.testing.assert_allclose(got["mlm_logits"], want_logits, atol=1e-4)
    mask = inputs["padding_mask"][..., None]
    mean = (sequence * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(got["embeddings"], mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-4)
