"""The ViT and MAE check on JAX and PyTorch, run by tests/models/test_vit.py through
`run_on_backend`. It reads WORK_DIR/mae_config.json, mae.weights.h5 and inputs.npz written by the
TensorFlow side and returns the outputs and the pretraining losses.
"""

import json
import os

import numpy as np


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    report = {"backend": backend}

    # 1. The same weights give the same backbone outputs and the same MAE loss for the same mask.
    with open(os.path.join(work_dir, "mae_config.json")) as handle:
        mae = keras.saving.deserialize_keras_object(json.load(handle))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    mae(inputs["images"], noise=inputs["noise"])
    mae.load_weights(os.path.join(work_dir, "mae.weights.h5"))
    outputs = mae.backbone(inputs["images"].astype("float32") / 255)
    outputs = {name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()}
    loss = mae.compute_loss(inputs["images"], None, mae(inputs["images"], noise=inputs["noise"]))
    report.update(outputs)
    report["mae_loss"] = keras.ops.convert_to_numpy(loss)

    # 2. MAE pretraining learns on this backend.
    data = kp.data.generate_shapes(64, image_size=16, seed=0)
    keras.utils.set_random_seed(0)
    vit = kp.models.ViT(image_shape=(16, 16, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=16,
                        intermediate_dim=32)
    mae = kp.tasks.MaskedImageModeling(vit, decoder_dim=16, decoder_layers=1, decoder_heads=2,
                                       normalize_targets=False)
    mae.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = mae.fit(data.images, batch_size=32, epochs=8, verbose=0)
    report["mae_fit_loss"] = history.history["loss"]
    return report
