"""The Seq2Seq backbone on JAX and PyTorch, run by tests/models/test_seq2seq.py through
`run_on_backend`. It reads WORK_DIR/seq2seq_config.json, seq2seq.weights.h5 and inputs.npz written
by the TensorFlow side and returns the outputs.
"""

import json
import os

import numpy as np


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    with open(os.path.join(work_dir, "seq2seq_config.json")) as handle:
        model = kp.models.Seq2Seq.from_config(json.load(handle))
    model.load_weights(os.path.join(work_dir, "seq2seq.weights.h5"))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in model(inputs, training=False).items()}
    return {"backend": backend, **outputs}
