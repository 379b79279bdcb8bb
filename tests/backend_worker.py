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

    # 4. Hidden-state distillation (kp.recipes.distill, hidden_weight) into a narrower student: the
    # student and its 8 -> 16 projection train, the teacher does not.
    keras.utils.set_random_seed(1)
    small = kp.models.Bert(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
                           intermediate_dim=16, max_sequence_length=16, dropout=0.0)
    student = kp.recipes.distill(classifier, small, vocabulary=vocabulary, sequence_length=16, hidden_weight=1.0,
                                 learning_rate=1e-2)
    trainer = student.target_source.training_model
    features = {k: keras.ops.convert_to_numpy(v) for k, v in student.preprocessor(corpus[:8]).items()}
    teacher_before = [keras.ops.convert_to_numpy(v).copy() for v in classifier.weights]
    projection_before = keras.ops.convert_to_numpy(trainer.projections[0].kernel).copy()
    hidden_before = float(keras.ops.convert_to_numpy(trainer.hidden_loss(features)))
    student.fit(corpus, batch_size=16, epochs=3, verbose=0)
    report["distill_hidden_loss"] = [hidden_before, float(keras.ops.convert_to_numpy(trainer.hidden_loss(features)))]
    report["distill_projection_change"] = float(np.abs(
        keras.ops.convert_to_numpy(trainer.projections[0].kernel) - projection_before).max())
    report["distill_teacher_change"] = max(float(np.abs(keras.ops.convert_to_numpy(v) - before).max())
                                           for v, before in zip(classifier.weights, teacher_before))

    # 5. prune_heads' importance of head 0 (|dL/d gate|) against a central difference of the loss
    # in that head's gate, on this backend's gradients.
    from keras_ptft.recipes.compression import head_importance

    head_labels = labels[:8]
    scores = head_importance(classifier, corpus[:8], head_labels, batch_size=8, normalize=False)
    kernel = next(v for v in classifier.backbone.weights if v.path.endswith("attention_output/kernel"))
    base = keras.ops.convert_to_numpy(kernel).astype("float64")
    loss = keras.losses.SparseCategoricalCrossentropy()
    head_features = classifier.preprocessor(corpus[:8])

    def loss_at(gate):
        value = base.copy()
        value[0] *= gate
        kernel.assign(value.astype("float32"))
        return float(keras.ops.convert_to_numpy(loss(head_labels, classifier(head_features, training=False))))

    eps = 1e-2
    report["head_importance"] = float(scores[0][0])
    report["head_importance_numeric"] = abs(loss_at(1 + eps) - loss_at(1 - eps)) / (2 * eps)
    kernel.assign(base.astype("float32"))
    return report
