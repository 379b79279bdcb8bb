"""Runs the converter and the sentence embedder on the Keras backend named by KERAS_BACKEND.

Called by tests/convert/test_convert_backends.py, one subprocess per backend:
    python tests/convert/backend_worker_convert.py WORK_DIR
Converts the Hugging Face folder WORK_DIR/hf, runs it on WORK_DIR/inputs.npz and writes
WORK_DIR/<backend>_outputs.npz.
"""

import os
import sys

import numpy as np


def main(work_dir: str) -> None:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    converted = kp.convert.from_huggingface(os.path.join(work_dir, "hf"), sequence_length=8)
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    outputs = converted.backbone(inputs, training=False)
    logits = converted.task({**inputs, "mask_positions": np.array([[1, 2], [0, 3]], "int32")}, training=False)
    embedder = kp.recipes.sentence_embedder(converted)
    np.savez(
        os.path.join(work_dir, f"{backend}_outputs.npz"),
        sequence_output=keras.ops.convert_to_numpy(outputs["sequence_output"]),
        mlm_logits=keras.ops.convert_to_numpy(logits),
        # The encoder on the same token ids (tokenizing is TensorFlow on every backend).
        embeddings=keras.ops.convert_to_numpy(embedder.encoder(inputs, training=False)),
    )


if __name__ == "__main__":
    main(sys.argv[1])
