"""The training toolkit on JAX and PyTorch, run by test_training_backends.py through
`run_on_backend`; returns the figures the test checks."""

import keras
import numpy as np

import keras_ptft as kp
from keras_ptft.models import Bert


def main(run: str) -> dict:
    """`run` is an empty folder for the resumable-pretraining check."""
    keras.utils.set_random_seed(0)
    results = {"backend": keras.backend.backend()}
    steps = [0, 3, 10, 25, 60, 100]
    schedules = {
        "warmup_cosine": kp.schedules.WarmupDecay(1e-3, total_steps=100, warmup_steps=10, decay="cosine"),
        "inverse_sqrt": kp.schedules.WarmupDecay(1e-3, warmup_steps=10, decay="inverse_sqrt"),
        "step": kp.schedules.StepDecay(1e-3, step_size=20, gamma=0.5),
        "restarts": kp.schedules.CosineRestarts(1e-3, cycle_steps=20, t_mul=2.0),
        "one_cycle": kp.schedules.OneCycle(1e-3, total_steps=100),
    }
    results["schedules"] = {
        name: [float(keras.ops.convert_to_numpy(s(step))) for step in steps] for name, s in schedules.items()
    }

    # Per-batch schedule callback + logger inside fit.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = (x @ rng.normal(size=(4, 1))).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    logger = kp.callbacks.LearningRateLogger()
    schedule = kp.schedules.WarmupDecay(0.05, total_steps=8, warmup_steps=2)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[kp.callbacks.LearningRateWarmupDecay(schedule), logger])
    results["logged_rates"] = logger.rates

    # A classifier with LoRA, lion, focal loss, accumulation and EMA trains.
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat"]
    bert = Bert(vocabulary_size=len(words), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=8)
    classifier = kp.recipes.text_classifier(bert, 2, vocabulary=words, sequence_length=8, optimizer="lion",
                                            learning_rate=3e-3, loss="focal", lora_rank=2,
                                            gradient_accumulation_steps=2, use_ema=True, verbose=False)
    history = classifier.fit(["the cat sat", "the dog sat"] * 8, np.array([1, 0] * 8), batch_size=4, epochs=2, verbose=0)
    results["classifier_loss"] = history.history["loss"]
    results["lora_trainable"] = classifier.trainable_parameters

    # Resumable pretraining: a MaskedLM trained 2 epochs in a checkpoint folder, then a new one asked
    # for 3 epochs in the same folder, restores the weights and trains epoch 3 only.
    texts = ["the cat sat", "the dog sat"] * 8

    def masked_lm():
        keras.utils.set_random_seed(0)
        backbone = Bert(vocabulary_size=len(words), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                        max_sequence_length=8)
        mlm = kp.tasks.MaskedLM(backbone, vocabulary=words, sequence_length=8, mask_rate=0.3, checkpoint_dir=run)
        mlm.compile(optimizer=kp.training.make_adamw(1e-2))
        return mlm

    first = masked_lm()
    first.fit(texts, batch_size=8, epochs=2, verbose=0)
    trained = keras.ops.convert_to_numpy(first.backbone.token_embedding.embeddings)
    second = masked_lm()
    seen = {}
    second.fit(texts, batch_size=8, epochs=3, verbose=0, callbacks=[keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: seen.update(start=keras.ops.convert_to_numpy(second.backbone.token_embedding.embeddings)),
        on_epoch_end=lambda epoch, logs: seen.setdefault("epochs", []).append(epoch + 1))])
    results["mlm_resume"] = {
        "epochs": seen["epochs"],
        "restored_max_diff": float(np.abs(seen["start"] - trained).max()),
        "iterations": int(keras.ops.convert_to_numpy(second.optimizer.iterations)),
        "history_epochs": kp.training.load_history(run)["epoch"],
    }
    return results
