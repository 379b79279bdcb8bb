"""Multi-process JAX data parallelism on one machine (tests/training/test_distribution.py).

`single(OUT)` trains a MaskedLM three steps on a global batch of 8 in one process (the session's
JAX process, through `run_on_backend`); `python multihost_worker.py PROCESS_ID OUT PORT` is one of
two processes joined through `keras.distribution.initialize` (jax.distributed, coordinator on
127.0.0.1:PORT), each with one CPU device (XLA_FLAGS from the test) and its own half of the same
global batch. Both save their final weights to OUT (.npz).
"""

import sys

import keras
import numpy as np

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(27)]
TEXTS = [" ".join(f"w{(3 * i + j) % 27}" for j in range(4 + i % 4)) for i in range(8)]


def masked_batch(mlm):
    """One fixed, seeded masking of the eight texts (identical in every process)."""
    import tensorflow as tf

    tf.random.set_seed(0)
    x, y, weights = mlm.preprocessor(tf.constant(TEXTS))
    return ({k: np.asarray(v) for k, v in x.items()}, np.asarray(y), np.asarray(weights))


def single(out: str) -> dict:
    train("single", out)
    return {"backend": keras.config.backend(), "devices": len(keras.distribution.list_devices())}


def train(mode: str, out: str, port: str | None = None) -> None:
    if mode != "single":
        keras.distribution.initialize(job_addresses=f"127.0.0.1:{port}", num_processes=2,
                                      process_id=int(mode))
    import keras_ptft as kp
    from keras_ptft.training.distribution import distribution_scope, resolve_distribution

    distribution = None if mode == "single" else resolve_distribution("data_parallel")
    keras.utils.set_random_seed(0)
    with distribution_scope(distribution):
        bert = kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16,
                              intermediate_dim=32, max_sequence_length=12, dropout=0.0)
        mlm = kp.tasks.MaskedLM(bert, vocabulary=VOCAB, sequence_length=12, dropout=0.0)
        mlm.compile(optimizer=keras.optimizers.SGD(0.5))
        x, y, weights = masked_batch(mlm)
        mlm.preprocessor = None  # the batch is masked once above; keras-hub's Task would re-run it
        if mode != "single":  # each process feeds its own shard of the global batch
            rows = slice(4 * int(mode), 4 * int(mode) + 4)
            x, y, weights = {k: v[rows] for k, v in x.items()}, y[rows], weights[rows]
        losses = [float(np.ravel(mlm.train_on_batch(x, y, sample_weight=weights))[0]) for _ in range(3)]
    np.savez(out, losses=np.array(losses), *[np.asarray(w) for w in mlm.get_weights()])


if __name__ == "__main__":
    train(sys.argv[1], sys.argv[2], sys.argv[3])
