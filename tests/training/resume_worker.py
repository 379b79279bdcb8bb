"""Fine-tunes a microscopic classifier with `checkpoint_dir`; run by test_checkpoints.py, which
kills it mid-run and starts it again. Prints one line per finished epoch."""

import sys
import time

import keras
import numpy as np

from keras_ptft.models import Bert
from keras_ptft.recipes import text_classifier

checkpoint_dir, epochs = sys.argv[1], int(sys.argv[2])
keras.utils.set_random_seed(0)
words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "on", "mat"]
backbone = Bert(vocabulary_size=len(words), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=8)
classifier = text_classifier(backbone, 2, vocabulary=words, sequence_length=8, learning_rate=1e-2,
                             checkpoint_dir=checkpoint_dir, verbose=False)
texts = ["the cat sat on the mat", "the dog sat on the mat"] * 16
labels = np.array([1, 0] * 16)


class Pace(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.2)  # leaves the killer time to land mid-epoch

    def on_epoch_end(self, epoch, logs=None):
        print(f"EPOCH_END {epoch + 1}", flush=True)


classifier.fit(texts, labels, batch_size=8, epochs=epochs, verbose=0, callbacks=[Pace()])
print(f"DONE iterations={int(keras.ops.convert_to_numpy(classifier.optimizer.iterations))}", flush=True)
