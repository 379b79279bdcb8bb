"""Pretrains a microscopic BERT with `MaskedLM(checkpoint_dir=...)`; test_checkpoints.py runs it
in a subprocess, kills it mid-run, then resumes in its own process with `build`. Prints one line
per finished epoch."""

import sys

import keras

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "lay", "on", "mat", "rug"]
TEXTS = ["the cat sat on the mat", "the dog lay on the rug"] * 16  # 4 batches of 8 per epoch


def build(checkpoint_dir, hidden_dim=16):
    from keras_ptft.models import Bert
    from keras_ptft.tasks import MaskedLM
    from keras_ptft.training import make_adamw

    keras.utils.set_random_seed(0)
    backbone = Bert(vocabulary_size=len(WORDS), num_layers=1, num_heads=2, hidden_dim=hidden_dim,
                    intermediate_dim=32, max_sequence_length=8)
    mlm = MaskedLM(backbone, vocabulary=WORDS, sequence_length=8, mask_rate=0.3, checkpoint_dir=checkpoint_dir)
    mlm.compile(optimizer=make_adamw(1e-2))
    return mlm


if __name__ == "__main__":
    from tests.training.resume_worker import Pace

    checkpoint_dir, epochs = sys.argv[1], int(sys.argv[2])
    mlm = build(checkpoint_dir)
    mlm.fit(TEXTS, batch_size=8, epochs=epochs, verbose=0, callbacks=[Pace()])
    print(f"DONE iterations={int(keras.ops.convert_to_numpy(mlm.optimizer.iterations))}", flush=True)
