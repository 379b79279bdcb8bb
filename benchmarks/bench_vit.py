"""CIFAR-10 (5k train / 1k test): a tiny ViT trained from scratch vs. MAE-pretrained (on the same
5k images) then fine-tuned, with the same wall-clock budget for both; training images/s.

    python benchmarks/bench_vit.py --budget-minutes 10                 # tiny ViT (L4, H192)
    nice -n 10 python benchmarks/bench_vit.py --budget-minutes 10 --num-layers 2 --hidden-dim 96 \
        --png vit_mae_cifar10.png

How the budget is shared, per arm of `--budget-minutes` each:
  0. calibration (not counted): a few timed steps of each model give seconds per epoch;
  1. MAE arm: pretraining for `--pretrain-share` of the budget (stopped by the clock), then
     fine-tuning for as many epochs as the rest of the budget allows;
  2. scratch arm: the same fine-tuning epochs PLUS as many extra epochs as the measured MAE
     pretraining seconds buy at the measured fine-tuning speed (wall-clock-matched).
Each run's measured seconds (tracing included) are printed, so the match can be checked.
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


class Clock(keras.callbacks.Callback):
    """Wall seconds of a `fit` (tracing included), steady images/s (first step excluded), and an
    optional time limit checked after every step."""

    def __init__(self, batch_size: int, limit_seconds: float | None = None):
        super().__init__()
        self.batch_size, self.limit = batch_size, limit_seconds
        self.steps, self.images = 0, 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        self.images += self.batch_size
        if self.steps == 1:
            self.steady_start = time.perf_counter()
        if self.limit is not None and time.perf_counter() - self.start >= self.limit:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start
        if self.steps > 1:
            self.images_per_second = (self.images - self.batch_size) / (time.perf_counter() - self.steady_start)
        else:
            # One shared-machine MAE run reported a single batch-end call for 79 steps (cause not
            # found): fall back to the optimizer's step count, tracing included.
            self.images = int(self.model.optimizer.iterations.numpy()) * self.batch_size
            self.images_per_second = self.images / self.seconds


def seconds_per_step(train_step, steps: int = 4) -> float:
    train_step()  # traces
    train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget-minutes", type=float, default=10.0, help="wall-clock budget of EACH arm")
    parser.add_argument("--pretrain-share", type=float, default=0.6, help="share of the MAE arm spent pretraining")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=None)
    parser.add_argument("--hidden-dim", type=int, default=None)
    parser.add_argument("--jit-compile", action="store_true", help="compile(jit_compile=True) (XLA on TF)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    parser.add_argument("--png", default=None, help="write an MAE reconstruction grid here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=DATA, help="the CIFAR-10 .npz (default: <repo>/../shared/data/cifar10)")
    args = parser.parse_args()
    if not os.path.exists(args.data):
        raise FileNotFoundError(f"CIFAR-10 is expected at {args.data} (the project's shared data folder).")
    if not 0 < args.pretrain_share < 1:
        raise ValueError(f"`--pretrain-share` must be in (0, 1), received {args.pretrain_share}.")
    data = np.load(args.data)
    x_train, y_train = data["x_train"][: args.train_limit], data["y_train"][: args.train_limit].astype("int32")
    x_test, y_test = data["x_test"], data["y_test"].astype("int32")
    overrides = {"pooling": "mean", "position_embedding": "sincos"}  # MAE's choices, for both arms
    # The L4/H192/A3 ViT the recorded figures were measured on ("tiny" before the shared size table).
    overrides.update(num_layers=4, hidden_dim=192, num_heads=3, intermediate_dim=768)
    if args.num_layers:
        overrides["num_layers"] = args.num_layers
    if args.hidden_dim:
        overrides.update(hidden_dim=args.hidden_dim, intermediate_dim=4 * args.hidden_dim,
                         num_heads=max(1, args.hidden_dim // 48))
    compile_kwargs = {"jit_compile": True} if args.jit_compile else {}
    budget = args.budget_minutes * 60
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    print(f"backend={keras.config.backend()} train={len(x_train)} test={len(x_test)} vit={overrides} "
          f"budget={budget:.0f}s per arm {compile_kwargs}", flush=True)

    def new_backbone():
        keras.utils.set_random_seed(args.seed)
        return kp.models.ViT.from_size("tiny", **overrides)

    def new_mae(backbone):
        mae = kp.tasks.MaskedImageModeling(backbone, mask_ratio=0.75, decoder_dim=128, decoder_layers=2,
                                           seed=args.seed)
        mae.compile(**compile_kwargs)
        return mae

    print("\n=== 0. calibration: seconds per training step", flush=True)
    batch = x_train[: args.batch_size]
    probe = kp.recipes.image_classifier(new_backbone(), 10, total_steps=100, **compile_kwargs)
    labels = keras.ops.one_hot(y_train[: args.batch_size], 10)
    clf_step = seconds_per_step(lambda: probe.train_on_batch(batch.astype("float32"), labels))
    mae_probe = new_mae(new_backbone())
    mae_step = seconds_per_step(lambda: mae_probe.train_on_batch(batch))
    print(f"classifier {clf_step:.3f} s/step ({args.batch_size / clf_step:.0f} img/s), "
          f"MAE {mae_step:.3f} s/step ({args.batch_size / mae_step:.0f} img/s): MAE/classifier speed "
          f"{clf_step / mae_step:.2f}x", flush=True)
    finetune_epochs = max(1, round((1 - args.pretrain_share) * budget / (clf_step * steps_per_epoch)))

    rows = []

    def finetune(backbone, epochs, name, pretrain=None):
        keras.utils.set_random_seed(args.seed)
        classifier = kp.recipes.image_classifier(backbone, 10, seed=args.seed, **compile_kwargs)
        clock = Clock(args.batch_size)
        classifier.fit(x_train, y_train, batch_size=args.batch_size, epochs=epochs, callbacks=[clock], verbose=2)
        result = classifier.evaluate(x_test, y_test, verbose=0, return_dict=True)
        pretrain_seconds = pretrain.seconds if pretrain else 0.0
        rows.append({
            "name": name, "seconds": clock.seconds + pretrain_seconds, "pretrain_seconds": pretrain_seconds,
            "pretrain_epochs": pretrain.images / len(x_train) if pretrain else 0.0,
            "mae_speed": pretrain.images_per_second if pretrain else None, "epochs": epochs,
            "speed": clock.images_per_second, "accuracy": result["accuracy"], "top5": result["top5_accuracy"],
        })
        print(f"{name}: test accuracy {result['accuracy']:.3f}, top-5 {result['top5_accuracy']:.3f}, "
              f"{clock.seconds + pretrain_seconds:.0f} s in all", flush=True)  # before the next arm, in case it is cut
        return clock

    print(f"\n=== 1a. MAE pretraining for {args.pretrain_share * budget:.0f} s on the training images", flush=True)
    backbone = new_backbone()
    mae = new_mae(backbone)
    pretrain = Clock(args.batch_size, limit_seconds=args.pretrain_share * budget)
    history = mae.fit(x_train, batch_size=args.batch_size, epochs=10_000, callbacks=[pretrain], verbose=2)
    loss = history.history["loss"]
    print(f"MAE loss {loss[0]:.3f} (epoch 1) -> {loss[-1]:.3f} (epoch {len(loss)}), {pretrain.seconds:.0f} s, "
          f"{pretrain.images_per_second:.0f} img/s", flush=True)
    if args.png:
        kp.tasks.save_reconstruction_grid(mae, x_test[:8], args.png)
        print(f"reconstructions of 8 test images: {args.png}", flush=True)

    print(f"\n=== 1b. fine-tuning the MAE backbone for {finetune_epochs} epochs", flush=True)
    tuned = finetune(backbone, finetune_epochs, "MAE + fine-tune", pretrain)

    extra_epochs = round(pretrain.seconds / (tuned.seconds / finetune_epochs))
    print(f"\n=== 2. from scratch for {finetune_epochs} + {extra_epochs} epochs (the pretraining seconds)",
          flush=True)
    finetune(new_backbone(), finetune_epochs + extra_epochs, "scratch")

    print("\n| run | MAE pretrain s (epochs) | MAE img/s | classifier epochs | total train s | classifier img/s "
          "| test acc | test top-5 |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        mae_cell = f"{row['pretrain_seconds']:.0f} ({row['pretrain_epochs']:.1f})" if row["mae_speed"] else "—"
        mae_speed = f"{row['mae_speed']:.0f}" if row["mae_speed"] else "—"
        print(f"| {row['name']} | {mae_cell} | {mae_speed} | {row['epochs']} | {row['seconds']:.0f} | "
              f"{row['speed']:.0f} | {row['accuracy']:.3f} | {row['top5']:.3f} |")


if __name__ == "__main__":
    main()
