"""The converter and the sentence embedder on JAX and PyTorch, run by
tests/convert/test_convert_backends.py through `run_on_backend`: converts the Hugging Face folder
WORK_DIR/hf, runs it on WORK_DIR/inputs.npz and returns the outputs.
"""

import os

import numpy as np


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    converted = kp.convert.from_huggingface(os.path.join(work_dir, "hf"), sequence_length=8)
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    outputs = converted.backbone(inputs, training=False)
    logits = converted.task({**inputs, "mask_positions": np.array([[1, 2], [0, 3]], "int32")}, training=False)
    embedder = kp.recipes.sentence_embedder(converted)
    return dict(
        backend=backend,
        sequence_output=keras.ops.convert_to_numpy(outputs["sequence_output"]),
        mlm_logits=keras.ops.convert_to_numpy(logits),
        # The encoder on the same token ids (tokenizing is TensorFlow on every backend).
        embeddings=keras.ops.convert_to_numpy(embedder.encoder(inputs, training=False)),
    )
