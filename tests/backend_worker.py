"""The backbone, task and recipe check, run on JAX and PyTorch by tests/test_backends.py through
`run_on_backend` (tests/backend_server.py). It reads WORK_DIR/bert_config.json, bert.weights.h5
and inputs.npz written by the TensorFlow side and returns the outputs and training figures.
"""

import json
import os

import numpy as np


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    backend = keras.config.backend()
    report = {"backend": backend}

    # 1. The same weights give the same outputs.
    with open(os.path.join(work_dir, "bert_config.json")) as handle:
        bert = kp.models.Bert.from_config(json.load(handle))
    bert.load_weights(os.path.join(work_dir, "bert.weights.h5"))
    inputs = dict(np.load(os.path.join(work_dir, "inputs.npz")))
    outputs = bert(inputs, training=False)
    report.update({name: keras.ops.convert_to_numpy(value) for name, value in outputs.items()})

    # 2. Masked-LM pretraining on raw strings learns on this backend.
    import tensorflow as tf

    words = [("cat", "sat", "mat"), ("dog", "lay", "rug"), ("bird", "stood", "branch")]
    corpus = [f"the {a} {b} on the {c}" for a, b, c in words] * 16
    vocabulary = kp.data.train_wordpiece(corpus, vocabulary_size=60)
    keras.utils.set_random_seed(0)
    backbone = kp.models.Bert(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                              intermediate_dim=32, max_sequence_length=16, dropout=0.0)
    # One sentence per row: the fill-mask check below is tuned for that step budget (packing gives a
    # third as many steps); packed training is tested on its own in tests/tasks/test_packing_fit.py.
    mlm = kp.tasks.MaskedLM(backbone, vocabulary=vocabulary, sequence_length=16, mask_rate=0.3, packing=False)
    mlm.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = mlm.fit(tf.data.Dataset.from_tensor_slices(corpus).batch(16), epochs=12, verbose=0)
    report["mlm_loss"] = history.history["loss"]
    report["fill_mask"] = [token for token, _ in mlm.fill_mask("the cat sat on the [MASK]", top_k=3)[0][0]]

    # 3. The classifier recipe fits and predicts on raw strings.
    labels = np.array([i % 3 for i in range(len(corpus))], "int32")
    classifier = kp.recipes.text_classifier(backbone, 3, vocabulary=vocabulary, sequence_length=16,
                                            learning_rate=1e-2)
    history = classifier.fit(corpus, labels, batch_size=16, epochs=10, verbose=0)
    report["classifier_accuracy"] = history.history["accuracy"]
    probabilities = classifier.predict(corpus[:3], verbose=0)
    report["classifier_predict_shape"] = list(probabilities.shape)
    report["classifier_predict_sums"] = probabilities.sum(-1).tolist()
    return report
