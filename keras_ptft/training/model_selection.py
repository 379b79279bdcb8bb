"""Model selection: k-fold cross-validation and hyper-parameter search (keras-tuner)."""

from __future__ import annotations

import tempfile
from typing import Callable

import keras
import numpy as np

STRATEGIES = ("random", "grid", "bayesian")


def _split_data(data):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError("`data` must be a pair `(x, y)` of equally long arrays or lists.")
    x, y = data
    x = np.asarray(x, dtype=object if isinstance(x, list) and x and isinstance(x[0], str) else None)
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"`data` holds {len(x)} inputs but {len(y)} targets.")
    return x, y


def _as_input(x):
    return list(x) if x.dtype == object else x


def cross_validate(
    recipe_fn: Callable[[], keras.Model],
    data,
    k: int = 5,
    *,
    epochs: int = 1,
    batch_size: int = 32,
    seed: int = 0,
    verbose: int = 0,
) -> dict:
    """k-fold cross-validation: trains a fresh model from `recipe_fn()` on k-1 folds and
    evaluates it on the held-out one, k times.

    Args:
        recipe_fn: function with no arguments returning a compiled model (e.g. a lambda around
            `kp.recipes.text_classifier`).
        data: `(x, y)`: inputs (e.g. raw strings) and targets.
        k: int. Number of folds, at least 2.
        epochs: int. Training epochs per fold.
        batch_size: int. Batch size.
        seed: int. Seed of the shuffle that assigns examples to folds.
        verbose: int. Passed to `fit`.

    Returns:
        dict with `"folds"` (one metrics dict per fold), `"mean"` and `"std"` (per metric).

    Example:
    ```python
    scores = kp.training.cross_validate(lambda: kp.recipes.text_classifier(path, 2), (texts, labels), k=5)
    scores["mean"]["accuracy"], scores["std"]["accuracy"]
    ```
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"`k` must be an integer >= 2, received k={k!r}.")
    x, y = _split_data(data)
    if len(x) < k:
        raise ValueError(f"`data` has {len(x)} examples, fewer than `k`={k} folds.")
    order = np.random.default_rng(seed).permutation(len(x))
    folds = np.array_split(order, k)
    results = []
    for i, held_out in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != i])
        if verbose:
            print(f"Fold {i + 1}/{k}: training on {len(train)}, evaluating on {len(held_out)}")
        model = recipe_fn()
        model.fit(_as_input(x[train]), y[train], epochs=epochs, batch_size=batch_size, verbose=verbose)
        results.append(model.evaluate(_as_input(x[held_out]), y[held_out], batch_size=batch_size, verbose=0,
                                      return_dict=True))
        keras.backend.clear_session()
    names = list(results[0])
    mean = {n: float(np.mean([r[n] for r in results])) for n in names}
    std = {n: float(np.std([r[n] for r in results])) for n in names}
    return {"folds": results, "mean": mean, "std": std}


def search(
    recipe_fn: Callable[..., keras.Model],
    data,
    space: dict,
    strategy: str = "random",
    max_trials: int = 10,
    *,
    objective: str = "val_loss",
    validation_data=None,
    validation_split: float = 0.2,
    epochs: int = 1,
    batch_size: int = 32,
    directory: str | None = None,
    seed: int = 0,
    verbose: int = 0,
) -> tuple[dict, list[dict]]:
    """Hyper-parameter search with keras-tuner over the keyword arguments of `recipe_fn`.

    Args:
        recipe_fn: function taking the searched keyword arguments, returning a compiled model.
        data: `(x, y)` training data.
        space: dict. Argument name -> list of values (a choice) or `(low, high)` tuple of
            numbers (sampled log-uniformly when both are > 0 and `high / low >= 100`, e.g.
            learning rates; uniformly otherwise; `grid` needs lists).
        strategy: str. `"random"`, `"grid"` or `"bayesian"`.
        max_trials: int. Number of configurations tried.
        objective: str. Metric to minimise (`val_*` loss) or maximise (`val_accuracy`, ...).
        validation_data: `(x, y)` or None; None holds out `validation_split` of `data`.
        epochs: int. Epochs per trial.
        batch_size: int. Batch size.
        directory: str or None. keras-tuner's working folder; None uses a temporary one.
        seed: int. Seed of the search and of the validation split.
        verbose: int. Passed to keras-tuner.

    Returns:
        `(best_config, trials)`: the best arguments, and one dict per trial (its arguments and
        score), best first.

    Example:
    ```python
    best, trials = kp.training.search(
        lambda learning_rate, dropout: kp.recipes.text_classifier(path, 2, learning_rate=learning_rate, dropout=dropout),
        (texts, labels), {"learning_rate": (1e-5, 1e-3), "dropout": [0.0, 0.1]}, max_trials=6)
    ```
    """
    import keras_tuner

    if not isinstance(space, dict) or not space:
        raise ValueError("`space` must be a non-empty dict of argument name -> list of values or (low, high).")
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown strategy {strategy!r}; valid names: {list(STRATEGIES)}.")
    if isinstance(max_trials, bool) or not isinstance(max_trials, int) or max_trials < 1:
        raise ValueError(f"`max_trials` must be a positive integer, received max_trials={max_trials!r}.")
    for name, values in space.items():
        if isinstance(values, tuple):
            if len(values) != 2 or not values[0] < values[1]:
                raise ValueError(f"`space[{name!r}]` must be a (low, high) pair with low < high, received {values!r}.")
            if strategy == "grid":
                raise ValueError(f"`strategy='grid'` needs a list of values for `space[{name!r}]`, not a range.")
        elif not isinstance(values, list) or not values:
            raise ValueError(f"`space[{name!r}]` must be a non-empty list or a (low, high) tuple, received {values!r}.")
    x, y = _split_data(data)
    if validation_data is None:
        order = np.random.default_rng(seed).permutation(len(x))
        n_val = max(1, int(round(validation_split * len(x))))
        validation_data = (_as_input(x[order[:n_val]]), y[order[:n_val]])
        x, y = x[order[n_val:]], y[order[n_val:]]

    def build(hp):
        arguments = {}
        for name, values in space.items():
            if isinstance(values, list):
                arguments[name] = hp.Choice(name, values)
            else:
                low, high = values
                if isinstance(low, int) and isinstance(high, int):
                    arguments[name] = hp.Int(name, low, high)
                else:
                    log = low > 0 and high / low >= 100
                    arguments[name] = hp.Float(name, float(low), float(high), sampling="log" if log else "linear")
        return recipe_fn(**arguments)

    direction = "max" if any(word in objective for word in ("accuracy", "f1", "auc", "precision", "recall")) else "min"
    tuner_class = {"random": keras_tuner.RandomSearch, "grid": keras_tuner.GridSearch,
                   "bayesian": keras_tuner.BayesianOptimization}[strategy]
    with tempfile.TemporaryDirectory() as scratch:
        tuner = tuner_class(
            build,
            objective=keras_tuner.Objective(objective, direction),
            max_trials=max_trials,
            seed=seed,
            directory=directory or scratch,
            project_name="keras_ptft_search",
            overwrite=directory is None,
        )
        tuner.search(_as_input(x), y, validation_data=validation_data, epochs=epochs, batch_size=batch_size,
                     verbose=verbose)
        trials = [
            {**trial.hyperparameters.values, objective: trial.score}
            for trial in tuner.oracle.get_best_trials(num_trials=max_trials)
        ]
    return dict(tuner.get_best_hyperparameters(1)[0].values), trials
