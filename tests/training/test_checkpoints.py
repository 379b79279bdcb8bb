import importlib.util
import json
import os
import signal
import subprocess
import sys

import pytest

import keras
import numpy as np

import keras_ptft as kp
from keras_ptft.models import Bert
from keras_ptft.recipes import text_classifier

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resume_worker.py")
MLM_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mlm_resume_worker.py")


def run_worker(checkpoint_dir, epochs, kill_after_epoch=None, worker=WORKER):
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen([sys.executable, worker, str(checkpoint_dir), str(epochs)], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, env=env)
    lines = []
    for line in process.stdout:
        lines.append(line.strip())
        if kill_after_epoch is not None and line.strip() == f"EPOCH_END {kill_after_epoch}":
            os.kill(process.pid, signal.SIGKILL)  # mid-way through the next epoch
            break
    process.wait(timeout=300)
    return process.returncode, lines


@pytest.mark.slow
def test_a_killed_run_resumes_and_finishes(tmp_path):
    checkpoint_dir = tmp_path / "run"
    code, lines = run_worker(checkpoint_dir, 4, kill_after_epoch=2)
    assert code == -signal.SIGKILL and "DONE" not in " ".join(lines)
    # The same "command" again, in this process (a second subprocess would cost its start-up).
    worker = _load_worker(WORKER)
    classifier = worker.build(checkpoint_dir)
    epochs = []
    classifier.fit(worker.TEXTS, worker.LABELS, batch_size=8, epochs=4, verbose=0,
                   callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(epoch + 1))])
    # The second run trained epochs 3 and 4 only, and the optimizer's step count continued.
    assert epochs == [3, 4]
    assert int(keras.ops.convert_to_numpy(classifier.optimizer.iterations)) == 16  # 4 epochs x 4 batches
    history = kp.training.load_history(checkpoint_dir)
    assert history["epoch"] == [0, 1, 2, 3]
    losses = history["loss"]
    # Continuous: the resumed epochs go on from the trained weights, not from scratch.
    assert losses[2] < losses[0] and losses[3] < losses[0]
    assert (checkpoint_dir / "best.keras").exists()


def test_a_checkpoint_of_another_model_is_refused(tmp_path, toy_vocabulary):
    def model(hidden):
        backbone = Bert(vocabulary_size=len(toy_vocabulary), num_layers=1, num_heads=2, hidden_dim=hidden,
                        intermediate_dim=32, max_sequence_length=12)
        return backbone

    first = text_classifier(model(16), 2, vocabulary=toy_vocabulary, sequence_length=12,
                            checkpoint_dir=tmp_path / "run", verbose=False)
    first.fit(["the cat sat", "the dog lay"], [0, 1], epochs=1, verbose=0)
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert any(p.name == "model.json" for p in before) and any("backup" in str(p) for p in before)
    with pytest.raises(ValueError, match="`checkpoint_dir`=.*different model.*nothing was overwritten"):
        text_classifier(model(8), 2, vocabulary=toy_vocabulary, sequence_length=12,
                        checkpoint_dir=tmp_path / "run", verbose=False)
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert after == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="not empty"):
        kp.training.resumable_callbacks(plain, tmp_path / "other")


def _load_worker(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_killed_masked_lm_pretraining_resumes_and_keeps_the_best_model(tmp_path):
    checkpoint_dir = tmp_path / "mlm"
    code, lines = run_worker(checkpoint_dir, 4, kill_after_epoch=2, worker=MLM_WORKER)
    assert code == -signal.SIGKILL and "DONE" not in " ".join(lines)

    # The same "command" again, in this process: it trains epochs 3 and 4 only.
    worker = _load_worker(MLM_WORKER)
    mlm = worker.build(checkpoint_dir)
    epochs = []
    mlm.fit(worker.TEXTS, batch_size=8, epochs=4, verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(epoch + 1))])
    assert epochs == [3, 4]
    assert int(keras.ops.convert_to_numpy(mlm.optimizer.iterations)) == 16  # 4 epochs x 4 batches, continued
    history = kp.training.load_history(checkpoint_dir)
    assert history["epoch"] == [0, 1, 2, 3]
    losses = history["loss"]
    assert losses[2] < losses[0] and losses[3] < losses[0]  # resumed from trained weights, not from scratch

    # The best model (by training loss: no validation data) is the epoch with the lowest loss.
    best = json.loads((checkpoint_dir / "best.json").read_text())
    assert best["monitor"] == "loss"
    assert best["best"] == pytest.approx(min(losses), rel=1e-5)
    assert best["epoch"] == 1 + int(np.argmin(losses))
    restored = keras.saving.load_model(checkpoint_dir / "best.keras")
    assert isinstance(restored, kp.tasks.MaskedLM)

    # Another architecture in the same folder is refused, and nothing there changes.
    before = {p: p.read_bytes() for p in checkpoint_dir.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="`checkpoint_dir`=.*different model.*nothing was overwritten"):
        worker.build(checkpoint_dir, hidden_dim=8)
    assert {p: p.read_bytes() for p in checkpoint_dir.rglob("*") if p.is_file()} == before
