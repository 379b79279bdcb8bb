"""BERT quickstart: tokenizer → masked-LM pretraining → fine-tuning vs scratch → export → parity.

Runs on the embedded default data (standard-library docstrings), so it needs no download.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras
import numpy as np

from keras_ptft.quickstart import CheckFailed


@dataclasses.dataclass(frozen=True)
class Settings:
    """The budget of one quickstart run; `fast()` is the ≤ 2-minute version the tests use."""

    size: str = "tiny"
    vocabulary_size: int = 4000
    sequence_length: int = 64
    max_documents: int | None = None
    pretrain_epochs: int = 8
    finetune_epochs: int = 5
    batch_size: int = 32
    pretrain_learning_rate: float = 1e-3
    # Tiny BERTs fine-tune best with larger rates than BERT-base's 2e-5..5e-5 (Turc et al., 2019
    # searched up to 1e-4 for 2 epochs on large sets; with ~1k examples, 1e-3 converged in 5).
    finetune_learning_rate: float = 1e-3
    max_train_examples: int | None = None

    @classmethod
    def fast(cls) -> "Settings":
        return cls(vocabulary_size=2000, sequence_length=32, max_documents=1500, pretrain_epochs=2,
                   finetune_epochs=4)


def _phase(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def run(settings: Settings, output_dir: str = "saved_models", seed: int = 0) -> dict:
    """Runs every phase and returns the summary figures; raises `CheckFailed` on a failed check."""
    import tensorflow as tf

    import keras_ptft as kp

    started = time.perf_counter()
    keras.utils.set_random_seed(seed)
    results: dict = {"settings": dataclasses.asdict(settings), "backend": keras.config.backend()}

    _phase("1/6 Loading the embedded corpus (standard-library docstrings and help topics)")
    task = kp.data.load_embedded_classification(seed=seed)
    train_texts, train_labels = list(task.train_texts), task.train_labels
    # The classifier's training texts join the unlabeled corpus (task-adaptive pretraining, as
    # in Gururangan et al., 2020); its test texts never do.
    corpus = kp.data.load_embedded_corpus(max_documents=settings.max_documents, seed=seed) + train_texts
    if settings.max_train_examples is not None:
        train_texts = train_texts[: settings.max_train_examples]
        train_labels = train_labels[: settings.max_train_examples]
    print(f"corpus: {len(corpus)} documents; classification: {len(train_texts)} train / "
          f"{len(task.test_texts)} test examples, classes {task.label_names}")

    _phase(f"2/6 Training a WordPiece vocabulary (at most {settings.vocabulary_size} tokens)")
    vocabulary = kp.data.train_wordpiece(corpus, vocabulary_size=settings.vocabulary_size)
    print(f"vocabulary: {len(vocabulary)} tokens, e.g. {vocabulary[100:110]}")

    _phase(f"3/6 Pretraining a {settings.size} BERT with masked LM ({settings.pretrain_epochs} epochs)")
    backbone = kp.models.Bert.from_size(
        settings.size, vocabulary_size=len(vocabulary), max_sequence_length=settings.sequence_length
    )
    mlm = kp.tasks.MaskedLM(backbone, vocabulary=vocabulary, sequence_length=settings.sequence_length)
    steps = settings.pretrain_epochs * int(np.ceil(len(corpus) / settings.batch_size))
    mlm.compile(
        optimizer=kp.training.make_adamw(
            kp.training.WarmupDecay(settings.pretrain_learning_rate, total_steps=steps, warmup_ratio=0.06),
            clipnorm=1.0,
        )
    )
    corpus_ds = tf.data.Dataset.from_tensor_slices(corpus).shuffle(len(corpus), seed=seed).batch(settings.batch_size)
    history = mlm.fit(corpus_ds, epochs=settings.pretrain_epochs, verbose=2)
    results["pretrain_loss"] = [round(v, 4) for v in history.history["loss"]]
    held_out_ds = tf.data.Dataset.from_tensor_slices(list(task.test_texts)).batch(settings.batch_size)
    results["masked_accuracy"] = float(mlm.evaluate(held_out_ds, verbose=0, return_dict=True)["masked_accuracy"])
    print(f"masked-token accuracy on held-out docstrings: {results['masked_accuracy']:.3f}")
    pretrained_path = os.path.join(output_dir, "quickstart_bert")
    mlm.save_to_preset(pretrained_path)
    print(f"pretrained backbone and tokenizer saved to {pretrained_path}/")

    def finetune(backbone_or_path, name: str):
        keras.utils.set_random_seed(seed + 1)
        classifier = kp.recipes.text_classifier(
            backbone_or_path,
            num_classes=len(task.label_names),
            vocabulary=vocabulary if not isinstance(backbone_or_path, str) else None,
            sequence_length=settings.sequence_length,
            label_names=task.label_names,
            learning_rate=settings.finetune_learning_rate,
        )
        print(f"--- {name}")
        start = time.perf_counter()
        classifier.fit(train_texts, train_labels, batch_size=settings.batch_size,
                       epochs=settings.finetune_epochs, verbose=2)
        metrics = classifier.evaluate(list(task.test_texts), task.test_labels, batch_size=settings.batch_size,
                                      verbose=0, return_dict=True)
        metrics["seconds"] = time.perf_counter() - start
        return classifier, metrics

    _phase("4/6 Fine-tuning the pretrained BERT, and the same classifier from scratch")
    classifier, pretrained_metrics = finetune(pretrained_path, "from the pretrained backbone")
    scratch_backbone = kp.models.Bert.from_size(
        settings.size, vocabulary_size=len(vocabulary), max_sequence_length=settings.sequence_length
    )
    _, scratch_metrics = finetune(scratch_backbone, "from scratch (random init, same budget)")
    results["pretrained"] = pretrained_metrics
    results["scratch"] = scratch_metrics

    _phase(f"5/6 Exporting the fine-tuned classifier to {output_dir}/quickstart/")
    export_path = os.path.join(output_dir, "quickstart")
    saved_model_path = kp.export.export_text_classifier(classifier, export_path)
    print(f"SavedModel: {saved_model_path}; Keras model: {export_path}/model.keras")

    _phase("6/6 Reloading the SavedModel with plain TensorFlow and comparing predictions")
    parity = kp.export.saved_model_parity(saved_model_path, classifier, list(task.test_texts))
    results["export_parity"] = parity
    results["wall_seconds"] = time.perf_counter() - started

    print_summary(results, len(task.label_names))
    chance = 1.0 / len(task.label_names)
    failures = []
    if parity["max_abs_diff"] > 1e-4 or parity["label_agreement"] < 1.0:
        failures.append(f"the SavedModel's predictions differ from the Keras model's: {parity}")
    if results["masked_accuracy"] <= 0.05:
        failures.append(f"masked-LM pretraining did not learn (masked accuracy {results['masked_accuracy']:.3f})")
    if pretrained_metrics["accuracy"] <= chance + 0.1:
        failures.append(
            f"the fine-tuned classifier is near chance ({pretrained_metrics['accuracy']:.3f} vs {chance:.3f})"
        )
    if failures:
        raise CheckFailed("; ".join(failures))
    return results


def print_summary(results: dict, num_classes: int) -> None:
    rows = [
        ("masked-token accuracy after pretraining (held-out)", f"{results['masked_accuracy']:.3f}"),
        ("classifier accuracy, pretrained + fine-tuned", f"{results['pretrained']['accuracy']:.3f}"),
        ("classifier accuracy, from scratch (same budget)", f"{results['scratch']['accuracy']:.3f}"),
        ("chance accuracy", f"{1.0 / num_classes:.3f}"),
    ]
    if "macro_f1" in results["pretrained"]:
        rows.append(("macro-F1, pretrained / scratch",
                     f"{results['pretrained']['macro_f1']:.3f} / {results['scratch']['macro_f1']:.3f}"))
    parity = results["export_parity"]
    rows += [
        ("SavedModel vs Keras: max |Δ probability|", f"{parity['max_abs_diff']:.2e}"),
        ("SavedModel vs Keras: label agreement", f"{parity['label_agreement']:.1%} of {parity['examples']}"),
        ("backend", results["backend"]),
        ("wall time", f"{results['wall_seconds']:.0f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    print("\n" + "=" * (width + 16))
    print("keras-ptft quickstart summary")
    print("=" * (width + 16))
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def pretrain(texts: list[str], settings: Settings, output_dir: str, seed: int = 0,
             checkpoint_dir: str | None = None) -> dict:
    """Trains a WordPiece vocabulary and a BERT with masked LM on `texts` (the last 10% held out
    for the masked-token accuracy); saves the backbone and tokenizer to `output_dir`. Backs
    `keras-ptft pretrain bert --corpus FILES`.

    With `checkpoint_dir`, the run is resumable: started again with the same arguments after a
    crash, it reuses the vocabulary stored there and continues from the last completed epoch.
    """
    import tensorflow as tf

    import keras_ptft as kp

    keras.utils.set_random_seed(seed)
    if len(texts) < 10:
        raise ValueError(f"The corpus has {len(texts)} non-empty lines; at least 10 are needed.")
    split = max(1, len(texts) // 10)
    train_texts, held_out = texts[:-split], texts[-split:]
    results: dict = {"train_texts": len(train_texts), "held_out_texts": len(held_out)}

    # A resumed run must see the same token ids as the killed one: the vocabulary is kept in the
    # checkpoint folder rather than trained again.
    vocabulary_path = os.path.join(checkpoint_dir, "vocabulary.txt") if checkpoint_dir else None
    if vocabulary_path and os.path.exists(vocabulary_path):
        _phase(f"Reusing the vocabulary of the checkpoint in {checkpoint_dir}")
        vocabulary = kp.data.load_vocabulary(vocabulary_path)
    else:
        _phase(f"Training a WordPiece vocabulary (at most {settings.vocabulary_size} tokens)")
        vocabulary = kp.data.train_wordpiece(train_texts, vocabulary_size=settings.vocabulary_size)
    print(f"vocabulary: {len(vocabulary)} tokens")

    _phase(f"Pretraining a {settings.size} BERT with masked LM ({settings.pretrain_epochs} epochs, "
           f"{len(train_texts)} texts)")
    backbone = kp.models.Bert.from_size(settings.size, vocabulary_size=len(vocabulary),
                                        max_sequence_length=settings.sequence_length)
    mlm = kp.tasks.MaskedLM(backbone, vocabulary=vocabulary, sequence_length=settings.sequence_length,
                            checkpoint_dir=checkpoint_dir)
    if vocabulary_path and not os.path.exists(vocabulary_path):
        kp.data.save_vocabulary(vocabulary, vocabulary_path)
    steps = settings.pretrain_epochs * int(np.ceil(len(train_texts) / settings.batch_size))
    mlm.compile(optimizer=kp.training.make_adamw(
        kp.training.WarmupDecay(settings.pretrain_learning_rate, total_steps=steps, warmup_ratio=0.06), clipnorm=1.0
    ))
    train_ds = tf.data.Dataset.from_tensor_slices(train_texts).shuffle(len(train_texts), seed=seed)
    started = time.perf_counter()
    history = mlm.fit(train_ds.batch(settings.batch_size), epochs=settings.pretrain_epochs, verbose=2)
    results["train_seconds"] = time.perf_counter() - started
    results["loss"] = [round(v, 4) for v in history.history.get("loss", [])]
    held_out_ds = tf.data.Dataset.from_tensor_slices(held_out).batch(settings.batch_size)
    results["masked_accuracy"] = float(mlm.evaluate(held_out_ds, verbose=0, return_dict=True)["masked_accuracy"])
    print(f"held-out masked-token accuracy: {results['masked_accuracy']:.3f}")

    os.makedirs(output_dir, exist_ok=True)
    mlm.save_to_preset(output_dir)
    print(f"\nSaved to {output_dir} (fine-tune with kp.recipes.text_classifier or `keras-ptft finetune`).")
    return results
