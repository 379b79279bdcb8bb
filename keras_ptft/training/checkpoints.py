"""Resumable training: a run killed at any moment and started again with the same command
continues from its last completed epoch and keeps its best model.

`checkpoint_dir` holds:
- `model.json`: which model the folder belongs to (class, weight paths and shapes); a different
  model is refused before anything is written.
- `backup/`: Keras `BackupAndRestore` state (weights, optimizer, epoch), kept after the run so
  starting a finished run again trains nothing.
- `best.keras` + `best.json`: the best model by `monitor`, and its score (so a resumed run only
  replaces it with a better one; Keras' `ModelCheckpoint` forgets its best score on restart).
- `history.csv`: one row per completed epoch, appended across restarts (`load_history`).
"""

from __future__ import annotations

import csv
import json
import os

import keras
import numpy as np


def _fingerprint(model: keras.Model) -> dict:
    return {
        "class": f"{type(model).__module__}.{type(model).__name__}",
        "weights": [[v.path, list(v.shape)] for v in model.weights],
    }


def check_checkpoint_dir(model: keras.Model, checkpoint_dir: str | os.PathLike) -> str:
    """Creates `checkpoint_dir` for `model`, or checks that the checkpoint it holds is of this
    model's architecture; raises ValueError (writing nothing) otherwise."""
    checkpoint_dir = os.fspath(checkpoint_dir)
    if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
        raise ValueError(f"`checkpoint_dir`={checkpoint_dir!r} exists and is not a folder.")
    if not model.built:
        raise ValueError("The model must be built before training with `checkpoint_dir` (call it once on data).")
    path = os.path.join(checkpoint_dir, "model.json")
    fingerprint = _fingerprint(model)
    if os.path.exists(path):
        with open(path) as file:
            stored = json.load(file)
        if stored != fingerprint:
            differences = [
                f"{a[0]} {a[1]} vs {b[0]} {b[1]}"
                for a, b in zip(stored.get("weights", []), fingerprint["weights"])
                if a != b
            ][:3]
            raise ValueError(
                f"`checkpoint_dir`={checkpoint_dir!r} holds a checkpoint of a different model "
                f"({stored.get('class')}, {len(stored.get('weights', []))} weights; this model: "
                f"{fingerprint['class']}, {len(fingerprint['weights'])} weights"
                + (f"; first differences: {differences}" if differences else "")
                + "). Use another folder; nothing was overwritten."
            )
    elif os.path.isdir(checkpoint_dir) and os.listdir(checkpoint_dir):
        raise ValueError(
            f"`checkpoint_dir`={checkpoint_dir!r} is not empty and holds no keras_ptft checkpoint "
            "(no model.json). Use an empty or new folder; nothing was overwritten."
        )
    else:
        os.makedirs(checkpoint_dir, exist_ok=True)
        with open(path, "w") as file:
            json.dump(fingerprint, file)
    return checkpoint_dir


class BestModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint(save_best_only=True)` that remembers its best score across restarts."""

    def __init__(self, filepath: str, monitor: str = "val_loss", mode: str = "auto"):
        super().__init__(filepath, monitor=monitor, mode=mode, save_best_only=True, verbose=0)
        self.score_path = os.path.splitext(filepath)[0] + ".json"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if os.path.exists(self.score_path):
            with open(self.score_path) as file:
                self.best = json.load(file)["best"]

    def on_epoch_end(self, epoch, logs=None):
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != before:
            with open(self.score_path, "w") as file:
                json.dump({"monitor": self.monitor, "best": float(self.best), "epoch": epoch + 1}, file)


def resumable_callbacks(
    model: keras.Model,
    checkpoint_dir: str | os.PathLike,
    monitor: str = "val_loss",
    mode: str = "auto",
) -> list[keras.callbacks.Callback]:
    """Callbacks that make `fit` resumable in `checkpoint_dir` and keep the best model.

    Pass them to any `fit` (pretraining tasks included); recipes add them for you when given
    `checkpoint_dir`. With no validation data, monitor `"loss"`.

    Args:
        model: the (built) model that will be trained.
        checkpoint_dir: str. Folder of this run's checkpoints.
        monitor: str. Metric deciding the best model, e.g. `"val_loss"` or `"val_accuracy"`.
        mode: str. `"min"`, `"max"` or `"auto"` (from the metric's name).

    Example:
    ```python
    mlm.fit(corpus_ds, epochs=10, callbacks=kp.training.resumable_callbacks(mlm, "runs/mlm", monitor="loss"))
    ```
    """
    checkpoint_dir = check_checkpoint_dir(model, checkpoint_dir)
    return [
        # History first: if a kill lands between the two, the epoch is trained again and its
        # row written twice (`load_history` keeps the last), never lost.
        keras.callbacks.CSVLogger(os.path.join(checkpoint_dir, "history.csv"), append=True),
        BestModelCheckpoint(os.path.join(checkpoint_dir, "best.keras"), monitor=monitor, mode=mode),
        # double_checkpoint keeps the previous backup in case a kill corrupts the newest one.
        keras.callbacks.BackupAndRestore(
            os.path.join(checkpoint_dir, "backup"), delete_checkpoint=False, double_checkpoint=True
        ),
    ]


def load_history(checkpoint_dir: str | os.PathLike) -> dict[str, list[float]]:
    """The per-epoch history of a (possibly restarted) run, one value per epoch.

    Example:
    ```python
    history = kp.training.load_history("runs/mlm")
    history["loss"]
    ```
    """
    path = os.path.join(os.fspath(checkpoint_dir), "history.csv")
    if not os.path.exists(path):
        raise FileNotFoundError(f"`checkpoint_dir`={os.fspath(checkpoint_dir)!r} holds no history.csv.")
    rows = {}
    with open(path, newline="") as file:
        for row in csv.DictReader(file):
            rows[int(row["epoch"])] = row  # a re-trained epoch replaces its earlier row
    epochs = sorted(rows)
    keys = [k for k in rows[epochs[0]] if k != "epoch"] if epochs else []
    history = {"epoch": epochs}
    for key in keys:
        history[key] = [float(rows[e][key]) if rows[e].get(key) not in (None, "", "NA") else np.nan for e in epochs]
    return history


def add_checkpoint_callbacks(model: keras.Model, fit_kwargs: dict) -> None:
    """Adds the resumable-training callbacks to a `fit` call of a model given a `checkpoint_dir`
    (recipes and pretraining tasks set `model.checkpoint_dir` / `model.checkpoint_monitor`)."""
    checkpoint_dir = getattr(model, "checkpoint_dir", None)
    if checkpoint_dir is None:
        return
    monitor = getattr(model, "checkpoint_monitor", None)
    if monitor is None:
        monitor = "val_loss" if fit_kwargs.get("validation_data") is not None else "loss"
    callbacks = list(fit_kwargs.get("callbacks") or [])
    # First, so an epoch is saved before any user callback hears it ended.
    fit_kwargs["callbacks"] = resumable_callbacks(model, checkpoint_dir, monitor=monitor) + callbacks


def set_checkpoint_dir(
    model: keras.Model, checkpoint_dir: str | os.PathLike | None, monitor: str | None = None
) -> None:
    """Makes every later `fit` of `model` resumable in `checkpoint_dir` (see
    `add_checkpoint_callbacks`); a folder holding another model's checkpoint is refused now, before
    any training, not at the first `fit`."""
    if checkpoint_dir is not None:
        check_checkpoint_dir(model, checkpoint_dir)
    model.checkpoint_dir, model.checkpoint_monitor = checkpoint_dir, monitor
