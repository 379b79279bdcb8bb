"""The GPT backbone and CausalLM check on JAX and PyTorch, run by tests/models/test_gpt_backends.py
through `run_on_backend`. It reads WORK_DIR/gpt_config.json, gpt.weights.h5, inputs.npz and
bpe.json written by the TensorFlow side and returns the hidden states and generations.
"""

import json
import os

import numpy as np


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    report = {"backend": backend}
    with open(os.path.join(work_dir, "gpt_config.json")) as handle:
        gpt = kp.models.GPT.from_config(json.load(handle))
    gpt.load_weights(os.path.join(work_dir, "gpt.weights.h5"))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    report["hidden"] = keras.ops.convert_to_numpy(gpt(inputs, training=False))

    # Cached generation, compiled the way keras-hub compiles it on this backend.
    with open(os.path.join(work_dir, "bpe.json")) as handle:
        bpe = json.load(handle)
    lm = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(bpe["vocabulary"], bpe["merges"]), sequence_length=12)
    lm.compile(sampler="greedy")
    report["greedy"] = lm.generate(bpe["prompts"], max_length=12, stop_token_ids=None)
    report["greedy_alone"] = [lm.generate(p, max_length=12, stop_token_ids=None) for p in bpe["prompts"]]
    report["perplexity"] = lm.perplexity(bpe["prompts"])
    return report
