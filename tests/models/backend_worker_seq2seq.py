"""Runs the Seq2Seq backbone on the Keras backend named by KERAS_BACKEND.

Called by tests/models/test_seq2seq.py in one subprocess per backend:
    python tests/models/backend_worker_seq2seq.py WORK_DIR
It reads WORK_DIR/seq2seq_config.json, seq2seq.weights.h5 and inputs.npz written by the TensorFlow
side and writes WORK_DIR/<backend>_seq2seq_outputs.npz.
"""

import json
import os
import sys

import numpy as np


def main(work_dir: str) -> None:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    with open(os.path.join(work_dir, "seq2seq_config.json")) as handle:
        model = kp.models.Seq2Seq.from_config(json.load(handle))
    model.load_weights(os.path.join(work_dir, "seq2seq.weights.h5"))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in model(inputs, training=False).items()}
    np.savez(os.path.join(work_dir, f"{backend}_seq2seq_outputs.npz"), backend=backend, **outputs)


if __name__ == "__main__":
    main(sys.argv[1])
