"""Runs the GPT backbone and CausalLM checks on the Keras backend named by KERAS_BACKEND.

Called by tests/models/test_gpt_backends.py in one subprocess per backend:
    python tests/models/backend_worker_gpt.py WORK_DIR
It reads WORK_DIR/gpt_config.json, gpt.weights.h5, inputs.npz and bpe.json written by the
TensorFlow side, and writes WORK_DIR/<backend>_gpt_outputs.npz and <backend>_gpt_report.json.
"""

import json
import os
import sys

import numpy as np


def main(work_dir: str) -> None:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    report = {"backend": backend}
    with open(os.path.join(work_dir, "gpt_config.json")) as handle:
        gpt = kp.models.GPT.from_config(json.load(handle))
    gpt.load_weights(os.path.join(work_dir, "gpt.weights.h5"))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    hidden = keras.ops.convert_to_numpy(gpt(inputs, training=False))
    np.savez(os.path.join(work_dir, f"{backend}_gpt_outputs.npz"), hidden=hidden)

    # Cached generation, compiled the way keras-hub compiles it on this backend.
    with open(os.path.join(work_dir, "bpe.json")) as handle:
        bpe = json.load(handle)
    lm = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(bpe["vocabulary"], bpe["merges"]), sequence_length=12)
    lm.compile(sampler="greedy")
    report["greedy"] = lm.generate(bpe["prompts"], max_length=12, stop_token_ids=None)
    report["greedy_alone"] = [lm.generate(p, max_length=12, stop_token_ids=None) for p in bpe["prompts"]]
    report["perplexity"] = lm.perplexity(bpe["prompts"])
    with open(os.path.join(work_dir, f"{backend}_gpt_report.json"), "w") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1])
