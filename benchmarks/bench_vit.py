"""CIFAR-10 (5k train / 1k test): a tiny ViT trained from scratch vs. MAE-pretrained (on the same
5k images) then fine-tuned, under a similar wall-clock budget; training images/s.

    python benchmarks/bench_vit.py                       # tiny ViT, the default budget
    python benchmarks/bench_vit.py --scratch-epochs 4 --pretrain-epochs 6 --finetune-epochs 2 \
        --num-layers 2 --hidden-dim 96 --png reconstructions.png

Budgets are in epochs; the table prints each run's measured seconds so the comparison is honest.
An MAE epoch is cheaper than a classifier epoch (the encoder sees a quarter of the patches).
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

import keras_ptft as kp

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "cifar10",
                    "cifar10_5k_1k.npz")


class Timer(keras.callbacks.Callback):
    """Seconds spent in training steps, and images seen."""

    def __init__(self, batch_size):
        super().__init__()
        self.batch_size, self.seconds, self.images = batch_size, 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds += time.perf_counter() - self.start

    def on_train_batch_end(self, batch, logs=None):
        self.images += self.batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scratch-epochs", type=int, default=10)
    parser.add_argument("--pretrain-epochs", type=int, default=15)
    parser.add_argument("--finetune-epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--hidden-dim", type=int, default=None)
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--png", default=None, help="write an MAE reconstruction grid here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=DATA, help="the CIFAR-10 .npz (default: <repo>/../shared/data/cifar10)")
    args = parser.parse_args()
    if not os.path.exists(args.data):
        raise FileNotFoundError(f"CIFAR-10 is expected at {args.data} (the project's shared data folder).")
    data = np.load(args.data)
    x_train, y_train = data["x_train"][: args.train_limit], data["y_train"][: args.train_limit].astype("int32")
    x_test, y_test = data["x_test"], data["y_test"].astype("int32")
    overrides = {}
    if args.num_layers:
        overrides["num_layers"] = args.num_layers
    if args.hidden_dim:
        overrides.update(hidden_dim=args.hidden_dim, intermediate_dim=4 * args.hidden_dim,
                         num_heads=max(1, args.hidden_dim // 64))
    print(f"backend={keras.config.backend()} train={len(x_train)} test={len(x_test)} vit=tiny {overrides}", flush=True)
    rows = []

    def finetune(backbone, epochs, name, extra_seconds=0.0, extra_images=0):
        classifier = kp.recipes.image_classifier(backbone, 10, seed=args.seed)
        timer = Timer(args.batch_size)
        classifier.fit(x_train, y_train, batch_size=args.batch_size, epochs=epochs, callbacks=[timer], verbose=2)
        result = classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)
        rows.append((name, timer.seconds + extra_seconds, timer.images / timer.seconds,
                     result["accuracy"], result["top5_accuracy"], extra_images))

    print("\n=== from scratch", flush=True)
    keras.utils.set_random_seed(args.seed)
    finetune(kp.models.ViT.from_size("tiny", **overrides), args.scratch_epochs, "scratch")

    print("\n=== MAE pretraining on the same training images", flush=True)
    keras.utils.set_random_seed(args.seed)
    backbone = kp.models.ViT.from_size("tiny", pooling="mean", position_embedding="sincos", **overrides)
    mae = kp.tasks.MaskedImageModeling(backbone, mask_ratio=0.75, decoder_dim=128, decoder_layers=2, seed=args.seed)
    timer = Timer(args.batch_size)
    history = mae.fit(x_train, batch_size=args.batch_size, epochs=args.pretrain_epochs, callbacks=[timer], verbose=2)
    print(f"MAE loss {history.history['loss'][0]:.3f} -> {history.history['loss'][-1]:.3f}, "
          f"{timer.images / timer.seconds:.0f} img/s", flush=True)
    if args.png:
        kp.tasks.save_reconstruction_grid(mae, x_test[:8], args.png, noise=None)
        print(f"reconstructions: {args.png}")
    print("\n=== fine-tuning the MAE backbone", flush=True)
    finetune(backbone, args.finetune_epochs, "MAE + fine-tune", timer.seconds, timer.images)

    print("\n| run | train s | fine-tune img/s | test acc | test top-5 | MAE images seen |")
    print("|---|---|---|---|---|---|")
    for name, seconds, speed, accuracy, top5, seen in rows:
        print(f"| {name} | {seconds:.0f} | {speed:.0f} | {accuracy:.3f} | {top5:.3f} | {seen} |")


if __name__ == "__main__":
    main()
