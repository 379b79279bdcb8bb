import numpy as np
import pytest

import keras
import keras_ptft as kp


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def recipe(units=4, learning_rate=0.05):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@pytest.mark.slow
def test_cross_validate_folds_and_summary():
    scores = kp.training.cross_validate(recipe, data(), k=3, epochs=2, batch_size=16)
    assert len(scores["folds"]) == 3
    accuracies = [fold["accuracy"] for fold in scores["folds"]]
    assert scores["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert scores["std"]["accuracy"] == pytest.approx(np.std(accuracies))
    with pytest.raises(ValueError, match="`k` must be an integer >= 2"):
        kp.training.cross_validate(recipe, data(), k=1)


@pytest.mark.slow
def test_grid_search_tries_every_configuration():
    best, trials = kp.training.search(recipe, data(), {"units": [1, 8]}, strategy="grid", max_trials=2,
                                      epochs=3, objective="val_accuracy")
    assert len(trials) == 2 and sorted(t["units"] for t in trials) == [1, 8]
    assert trials[0]["val_accuracy"] >= trials[1]["val_accuracy"]
    assert best == {"units": trials[0]["units"]}


def test_search_bad_arguments():
    with pytest.raises(ValueError, match="non-empty"):
        kp.training.search(recipe, data(), {})
    with pytest.raises(ValueError, match="valid names"):
        kp.training.search(recipe, data(), {"units": [1]}, strategy="annealing")
    with pytest.raises(ValueError, match="grid"):
        kp.training.search(recipe, data(), {"learning_rate": (1e-3, 1e-1)}, strategy="grid")
