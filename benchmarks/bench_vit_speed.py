"""ViT classifier training and inference speed: `kp.recipes.image_classifier` vs keras-hub's
`ViTImageClassifier`, same configuration as the project's reference anchors (32x32x3, patch 4,
4 layers, hidden 192, 3 heads, MLP 768, class token, 10 classes, batch 64, random images), in the
same process, in interleaved rounds (benchmarks/timing.py), one process per backend.

    python benchmarks/bench_vit_speed.py                           # TF, JAX, torch
    python benchmarks/bench_vit_speed.py --backends tensorflow --jit
"""

import argparse
import json
import os

from timing import interleaved, load, print_ratio_table, run_per_backend


def worker(args) -> None:
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import keras_hub
    import numpy as np

    import keras_ptft as kp

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.batch_size, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 10, args.batch_size)
    jit = True if args.jit else "auto"
    config = dict(num_layers=4, num_heads=3, hidden_dim=192, intermediate_dim=768)

    ours = kp.recipes.image_classifier(
        kp.models.ViT(image_shape=(32, 32, 3), patch_size=4, pooling="token", **config), 10,
        optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01), metrics=None, jit_compile=jit)
    hub_backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=4, num_layers=4, num_heads=3, hidden_dim=192, mlp_dim=768)
    hub = keras_hub.models.ViTImageClassifier(backbone=hub_backbone, num_classes=10, preprocessor=None)
    hub.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=hub.activation is None
                                                                or hub.activation == "linear"),
                jit_compile=jit)
    one_hot = np.eye(10, dtype="float32")[labels]
    train = {"keras_ptft": lambda: ours.train_on_batch(images, one_hot),
             "keras_hub": lambda: hub.train_on_batch(images / 255.0, labels)}
    infer = {"keras_ptft": lambda: ours.predict_on_batch(images),
             "keras_hub": lambda: hub.predict_on_batch(images / 255.0)}
    common = {"backend": args.backend, "jit_compile": jit}
    for measure, fns in (("train", train), ("infer", infer)):
        for system, result in interleaved(fns, args.warmup, args.steps, args.rounds).items():
            print(json.dumps({**common, "system": system, "measure": measure,
                              "images_per_s": round(args.batch_size / result["median_s"]), **result,
                              "loadavg": load()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # set in the per-backend subprocess
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True) on both models")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.backend:
        return worker(args)
    print_ratio_table(run_per_backend(__file__, args.backends), "images_per_s", "img/s")


if __name__ == "__main__":
    main()
