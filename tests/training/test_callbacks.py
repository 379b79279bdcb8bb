import numpy as np
import pytest

import keras
import keras_ptft as kp
from keras_ptft.models import Bert
from keras_ptft.recipes import text_classifier
from keras_ptft.training.lr_finder import ExponentialSweep, suggest_learning_rate


def regression(n=256, d=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = (x @ rng.normal(size=(d, 1))).astype("float32")
    return x, y


def linear_model(rate=0.1):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(rate), loss="mse")
    return model


def test_warmup_decay_callback_sets_the_schedule_every_batch():
    x, y = regression()
    schedule = kp.schedules.WarmupDecay(0.05, total_steps=16, warmup_steps=4, decay="cosine")
    logger = kp.callbacks.LearningRateLogger()
    model = linear_model()
    history = model.fit(x, y, batch_size=32, epochs=2, verbose=0,
                        callbacks=[kp.callbacks.LearningRateWarmupDecay(schedule), logger])
    want = [float(schedule(step)) for step in range(16)]
    np.testing.assert_allclose(logger.rates, want, rtol=1e-6)
    assert history.history["learning_rate"] == pytest.approx([want[7], want[15]])


def test_logger_reads_a_schedule_inside_the_optimizer(tmp_path):
    x, y = regression()
    schedule = kp.schedules.StepDecay(0.1, step_size=3, gamma=0.5)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    logger = kp.callbacks.LearningRateLogger(log_dir=str(tmp_path / "tb"))
    model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=[logger])
    np.testing.assert_allclose(logger.rates, 0.1 * 0.5 ** (np.arange(8) // 3), rtol=1e-6)
    assert list((tmp_path / "tb" / "train").glob("events.out.tfevents.*"))


def test_reduce_lr_on_plateau_is_kept_as_a_factor():
    schedule = kp.schedules.WarmupDecay(0.1, total_steps=100, decay="linear")
    model = linear_model()
    model.optimizer.build(model.trainable_variables)
    callback = kp.callbacks.LearningRateWarmupDecay(schedule)
    callback.set_model(model)
    callback.on_train_batch_begin(0)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    model.optimizer.learning_rate = 0.05  # what ReduceLROnPlateau(factor=0.5) does
    model.optimizer.iterations.assign(50)
    callback.on_train_batch_begin(1)
    assert callback.factor == pytest.approx(0.5)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.5 * 0.1 * 0.5)
    scheduled = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    scheduled.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    with pytest.raises(ValueError, match="float `learning_rate`"):
        scheduled.fit(*regression(), epochs=1, verbose=0, callbacks=[kp.callbacks.LearningRateWarmupDecay(schedule)])


def test_lr_range_test_on_least_squares(tmp_path):
    # For mean squared error on standard-normal inputs the Hessian is ~2I: plain SGD diverges
    # above a rate of ~1 and learns slowly below ~1e-3, so the suggestion must fall in between.
    x, y = regression(n=256)
    y = y + np.random.default_rng(1).normal(scale=0.1, size=y.shape).astype("float32")
    model = linear_model()
    before = [w.copy() for w in model.get_weights()]
    rate = kp.training.find_learning_rate(model, x, y, batch_size=256, min_learning_rate=1e-5,
                                          max_learning_rate=10.0, num_steps=60, path=tmp_path / "lr.png",
                                          verbose=0)
    assert 1e-3 < rate < 1.0
    assert (tmp_path / "lr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for restored, original in zip(model.get_weights(), before):
        np.testing.assert_array_equal(restored, original)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="min_learning_rate"):
        kp.training.find_learning_rate(model, x, y, min_learning_rate=1.0, max_learning_rate=0.1)


def test_sweep_and_suggestion_reference():
    sweep = ExponentialSweep(1e-4, 1.0, 5, start_step=10)
    np.testing.assert_allclose([float(sweep(10 + i)) for i in range(5)], np.logspace(-4, 0, 5), rtol=1e-5)
    rates = np.logspace(-4, 0, 50)
    losses = 1 / (1 + np.exp(4 * (np.log10(rates) + 2)))  # falls steepest at 1e-2
    assert suggest_learning_rate(rates, losses, smoothing=0.0, skip_start=0) == pytest.approx(1e-2, rel=0.25)


def test_suggestion_stays_a_decade_below_a_dip_right_before_divergence():
    # Fine-tuning's typical curve: flat, one dip, then divergence. The steepest drop is the dip
    # itself (index 40), at the edge of divergence; the suggestion is capped at a tenth of it.
    rates = np.logspace(-6, 0, 60)
    losses = np.full(60, 1.38) + np.random.default_rng(0).normal(0, 0.005, 60)
    losses[40] = 1.2
    losses[41:] = np.linspace(1.6, 11.0, 19)
    suggestion = suggest_learning_rate(rates, losses, smoothing=0.0, skip_start=0)
    assert suggestion == pytest.approx(rates[40] / 10, rel=1e-6)


def test_suggestion_on_a_plateau_is_a_decade_below_where_the_loss_climbs():
    # Fine-tuning a tiny BERT gave this curve: the loss never falls (ln 4 for 4 classes, batch
    # noise) until it climbs from ~2e-2. The minimum is noise; the climb's onset is not.
    rates = np.logspace(-6, -0.5, 60)
    losses = np.log(4) + np.random.default_rng(0).normal(0, 0.02, 60)
    onset = int(np.searchsorted(rates, 2e-2))
    losses[onset:] += np.geomspace(0.1, 4.0, 60 - onset)
    suggestion = suggest_learning_rate(rates, losses)
    # A decade below the onset, give or take the two or three steps the smoothing lags.
    assert rates[onset] / 10 <= suggestion <= rates[onset] / 4, suggestion


@pytest.mark.slow
def test_gradual_unfreezing_trains_the_top_block_first(toy_vocabulary):
    backbone = Bert(vocabulary_size=len(toy_vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                    intermediate_dim=32, max_sequence_length=12)
    classifier = text_classifier(backbone, 2, vocabulary=toy_vocabulary, sequence_length=12, learning_rate=1e-2,
                                 verbose=False)
    texts = ["the cat sat on the mat", "the dog lay on the rug"] * 8
    labels = np.array([1, 0] * 8)
    callback = kp.callbacks.GradualUnfreezing(backbone, layers_per_epoch=1)
    snapshots = []

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append({w.path: keras.ops.convert_to_numpy(w).copy() for w in backbone.weights})

    start = {w.path: keras.ops.convert_to_numpy(w).copy() for w in backbone.weights}
    classifier.fit(texts, labels, batch_size=8, epochs=2, verbose=0, callbacks=[callback, Snapshot()])
    assert callback.unfrozen == [1, 1]

    def changed(before, after, part):
        return any(not np.array_equal(before[p], after[p]) for p in before if part in p)

    # One block: epoch 0 trains it (and the pooler), epoch 1 the embeddings too.
    assert changed(start, snapshots[0], "transformer_layer_0")
    assert changed(start, snapshots[0], "pooled_dense")
    assert not changed(start, snapshots[0], "token_embedding")
    assert changed(snapshots[0], snapshots[1], "token_embedding")
    assert all(w.trainable for w in backbone.weights)


def test_plot_history_writes_a_png(tmp_path):
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8], "learning_rate": [1e-3, 5e-4]}
    path = kp.training.plot_history(history, tmp_path / "h.png")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="history"):
        kp.training.plot_history({}, tmp_path / "x.png")


def test_time_budget_stops_within_one_batch_of_the_budget():
    import keras_ptft.training.callbacks as callbacks

    seen = []
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    counter = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: seen.append(batch))
    history = model.fit(np.zeros((40, 2)), np.zeros(40), batch_size=4, epochs=3, verbose=0,
                        callbacks=[callbacks.TimeBudget(1e-9), counter])
    assert seen == [0] and len(history.history["loss"]) == 1  # one batch, then stopped
    with pytest.raises(ValueError, match="`minutes`"):
        callbacks.TimeBudget(0)
def _pruning_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def test_magnitude_pruning_follows_zhu_gupta_and_reaches_the_target():
    pruning = kp.callbacks.MagnitudePruning(0.75, begin_step=2, end_step=12, initial_sparsity=0.1, frequency=2)
    for step in [0, 2, 5, 12, 20]:
        progress = min(1.0, max(0, step - 2) / 10)
        want = 0.0 if step < 2 else 0.75 + (0.1 - 0.75) * (1 - progress) ** 3
        assert pruning.sparsity_at(step) == pytest.approx(want)
    model = _pruning_model()
    x = np.random.default_rng(0).normal(size=(64, 6)).astype("float32")
    history = model.fit(x, x.sum(-1), batch_size=4, epochs=2, verbose=0, callbacks=[pruning])  # 32 steps
    kernels = [layer.kernel.numpy() for layer in model.layers]
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert zeros == pytest.approx(history.history["sparsity"][-1]) and zeros >= 0.74
    # The same entries stay zero after more training: the masks are kept.
    pruned = [k == 0 for k in kernels]
    model.fit(x, x.sum(-1), batch_size=4, epochs=1, verbose=0, callbacks=[pruning])
    for layer, mask in zip(model.layers, pruned):
        assert (layer.kernel.numpy()[mask] == 0).all()


@pytest.mark.parametrize("kwargs, match", [
    ({"target_sparsity": 1.0}, "`target_sparsity` must be a number in \\[0, 1\\)"),
    ({"target_sparsity": -0.1}, "`target_sparsity` must be a number in \\[0, 1\\)"),
    ({"target_sparsity": 0.5, "begin_step": 10, "end_step": 5}, "`end_step` must be greater than"),
    ({"target_sparsity": 0.5, "initial_sparsity": 0.6}, "`initial_sparsity` must be at most"),
])
def test_magnitude_pruning_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kp.callbacks.MagnitudePruning(**kwargs)
