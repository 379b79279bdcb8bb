"""Fine-tunes a microscopic classifier with `checkpoint_dir`; test_checkpoints.py runs it in a
subprocess, kills it mid-run, then resumes in its own process with `build`. Prints one line per
finished epoch."""

import sys
import time

import keras
import numpy as np

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat"]
TEXTS = ["the cat sat on the mat", "the dog sat on the mat"] * 16  # 4 batches of 8 per epoch
LABELS = np.array([1, 0] * 16)


def build(checkpoint_dir):
    from keras_ptft.models import Bert
    from keras_ptft.recipes import text_classifier

    keras.utils.set_random_seed(0)
    backbone = Bert(vocabulary_size=len(WORDS), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                    max_sequence_length=8)
    return text_classifier(backbone, 2, vocabulary=WORDS, sequence_length=8, learning_rate=1e-2,
                           checkpoint_dir=checkpoint_dir, verbose=False)


class Pace(keras.callbacks.Callback):
    """Prints each finished epoch; after `slow_from` epochs, slows the batches down so that the
    killer, which waits for that epoch's line, lands mid-epoch."""

    def __init__(self, slow_from=2):
        super().__init__()
        self.slow_from, self.epoch = slow_from, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch >= self.slow_from:
            time.sleep(0.2)

    def on_epoch_end(self, epoch, logs=None):
        print(f"EPOCH_END {epoch + 1}", flush=True)


if __name__ == "__main__":
    checkpoint_dir, epochs = sys.argv[1], int(sys.argv[2])
    classifier = build(checkpoint_dir)
    classifier.fit(TEXTS, LABELS, batch_size=8, epochs=epochs, verbose=0, callbacks=[Pace()])
    print(f"DONE iterations={int(keras.ops.convert_to_numpy(classifier.optimizer.iterations))}", flush=True)
