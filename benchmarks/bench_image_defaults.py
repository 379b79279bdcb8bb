"""Do the image-classifier recipe's defaults lose to a plain Keras head on the same ViT?

Same ViT (from random init, same seed), same epochs, batch and data, three arms:
- `recipe (defaults)`: `kp.recipes.image_classifier(vit, num_classes)` with everything left default;
- `recipe (flip + pad-crop)`: the same with `random_flip=True, crop_padding=<side/8>` (the first
  wave's defaults, now opt-in);
- `recipe (no augmentation)`: `random_flip=False, crop_padding=0`;
- `plain Keras`: `ViT` -> Dense softmax, Adam 1e-3, sparse cross-entropy, pixels / 255 — what a
  user would write by hand.
Reports test accuracy on MNIST (10k train / 2k test) and CIFAR-10 (5k / 1k) from `../shared/data`.

Usage:
    python benchmarks/bench_image_defaults.py                      # both datasets, 2 epochs
    python benchmarks/bench_image_defaults.py --datasets mnist --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import time

import keras
import numpy as np

import keras_ptft as kp

DATASETS = {"mnist": "mnist/mnist_10k_2k.npz", "cifar10": "cifar10/cifar10_5k_1k.npz"}


def load(name: str):
    data_dir = kp.data.shared_data_dir()
    if data_dir is None:
        raise SystemExit("../shared/data is not beside the repository; this benchmark reads it from there.")
    data = np.load(os.path.join(data_dir, DATASETS[name]))
    x_train, x_test = data["x_train"], data["x_test"]
    if x_train.ndim == 3:  # MNIST is greyscale (N, 28, 28)
        x_train, x_test = x_train[..., None], x_test[..., None]
    return x_train, data["y_train"].astype("int32"), x_test, data["y_test"].astype("int32")


def vit(image_shape, seed: int):
    keras.utils.set_random_seed(seed)
    return kp.models.ViT(image_shape=image_shape, patch_size=4, num_layers=2, num_heads=4, hidden_dim=64,
                         intermediate_dim=128, pooling="mean")


def plain_keras(backbone, num_classes: int):
    inputs = keras.Input(backbone.input_shape[1:])
    features = backbone(keras.layers.Rescaling(1.0 / 255)(inputs))["pooled_output"]
    model = keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(features))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def run(name: str, epochs: int, batch_size: int, seed: int) -> list[dict]:
    x_train, y_train, x_test, y_test = load(name)
    shape, classes = x_train.shape[1:], int(y_train.max()) + 1
    arms = {
        "recipe (defaults)": lambda: kp.recipes.image_classifier(vit(shape, seed), classes, seed=seed),
        "recipe (flip + pad-crop)": lambda: kp.recipes.image_classifier(
            vit(shape, seed), classes, random_flip=True, crop_padding=shape[0] // 8, seed=seed),
        "recipe (no augmentation)": lambda: kp.recipes.image_classifier(
            vit(shape, seed), classes, random_flip=False, crop_padding=0, seed=seed),
        "plain Keras": lambda: plain_keras(vit(shape, seed), classes),
    }
    rows = []
    for arm, build in arms.items():
        model = build()
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=2)
        seconds = time.perf_counter() - start
        probabilities = model.predict(x_test, batch_size=256, verbose=0)
        accuracy = float(np.mean(np.argmax(probabilities, -1) == y_test))
        rows.append({"dataset": name, "arm": arm, "epochs": epochs, "test_accuracy": round(accuracy, 4),
                     "train_s": round(seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = [row for name in args.datasets for row in run(name, args.epochs, args.batch_size, args.seed)]
    print("\n| dataset | arm | epochs | test accuracy | train s |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['arm']} | {r['epochs']} | {r['test_accuracy']:.3f} | {r['train_s']} |")


if __name__ == "__main__":
    main()
