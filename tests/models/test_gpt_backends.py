"""GPT and CausalLM on JAX and PyTorch: same weights, same outputs and generations as TensorFlow."""

import json

import keras
import numpy as np
import pytest

import keras_ptft as kp
from tests.models import backend_worker_gpt
TEXTS = ["the cat sat on the mat", "the dog lay on the rug"] * 8
PROMPTS = ["the", "the dog lay", "the cat"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp("gpt_backends")
    vocabulary, merges = kp.data.train_bpe(TEXTS, vocabulary_size=275, verbose=False)
    keras.utils.set_random_seed(5)
    gpt = kp.models.GPT(vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16,
                        intermediate_dim=32, max_sequence_length=16)
    rng = np.random.default_rng(0)
    padding_mask = np.ones((2, 9), "int32")
    padding_mask[1, 6:] = 0
    inputs = {"token_ids": rng.integers(0, len(vocabulary), (2, 9)).astype("int32"), "padding_mask": padding_mask}
    with open(work_dir / "gpt_config.json", "w") as handle:
        json.dump(gpt.get_config(), handle)
    gpt.save_weights(work_dir / "gpt.weights.h5")
    np.savez(work_dir / "inputs.npz", **inputs)
    with open(work_dir / "bpe.json", "w") as handle:
        json.dump({"vocabulary": vocabulary, "merges": merges, "prompts": PROMPTS}, handle)
    lm = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocabulary, merges), sequence_length=12)
    lm.compile(sampler="greedy")
    expected = {
        "hidden": keras.ops.convert_to_numpy(gpt(inputs, training=False)),
        "greedy": lm.generate(PROMPTS, max_length=12, stop_token_ids=None),
        "perplexity": lm.perplexity(PROMPTS),
    }
    return work_dir, expected


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_parity(backend, reference, run_on_backend):
    work_dir, expected = reference
    report = run_on_backend(backend_worker_gpt.main, backend, work_dir)
    assert report["backend"] == backend
    assert np.max(np.abs(report["hidden"] - expected["hidden"])) <= 1e-4
    assert report["greedy"] == expected["greedy"]
    assert report["greedy_alone"] == expected["greedy"]
    np.testing.assert_allclose(report["perplexity"], expected["perplexity"], rtol=1e-4)
