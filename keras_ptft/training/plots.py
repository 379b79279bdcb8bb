"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

import os

import keras


def plot_history(history: keras.callbacks.History | dict, path: str | os.PathLike) -> str:
    """Writes a PNG with one panel per quantity: loss, each metric (training and validation
    together) and the learning rate (log scale) when the history holds it.

    Args:
        history: the `History` returned by `fit`, or its `.history` dict.
        path: str. Where to write the PNG.

    Returns:
        str. The path written.

    Example:
    ```python
    history = model.fit(x, y, epochs=3, callbacks=[kp.callbacks.LearningRateLogger()])
    kp.training.plot_history(history, "history.png")
    ```
    """
    logs = history.history if isinstance(history, keras.callbacks.History) else history
    if not isinstance(logs, dict) or not logs:
        raise ValueError("`history` must be a `History` or a non-empty dict of per-epoch lists.")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k in logs if not k.startswith("val_")]
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        epochs = range(1, len(logs[name]) + 1)
        axis.plot(epochs, logs[name], marker="o", label="train" if name != "learning_rate" else None)
        if f"val_{name}" in logs:
            axis.plot(range(1, len(logs[f"val_{name}"]) + 1), logs[f"val_{name}"], marker="o", label="validation")
            axis.legend()
        if name == "learning_rate":
            axis.set_yscale("log")
        axis.set_title(name)
        axis.set_xlabel("epoch")
    figure.tight_layout()
    path = os.fspath(path)
    figure.savefig(path)
    plt.close(figure)
    return path
