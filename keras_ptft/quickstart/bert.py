"""BERT quickstart: tokenizer → masked-LM pretraining → fine-tuning vs scratch → export → parity.

Runs on the embedded default data (standard-library docstrings), so it needs no download. The
pretraining is `keras_ptft.pipelines.pretrain_bert` (what `keras-ptft pretrain bert` runs) and the
export `keras_ptft.export.export`; this module keeps the demo: data, comparison, checks, printing.
"""

from __future__ import annotations

import dataclasses
import os
import time

import keras

from keras_ptft.quickstart import check, phase, start


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


def run(settings: Settings, output_dir: str = "saved_models", seed: int = 0) -> dict:
    """Runs every phase and returns the summary figures; raises `CheckFailed` on a failed check."""
    import keras_ptft as kp
    from keras_ptft.pipelines import pretrain_bert

    started = time.perf_counter()
    results = start(settings, seed)

    phase("1/6 Loading the embedded corpus (standard-library docstrings and help topics)")
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

    phase(f"2/6 Pretraining a {settings.size} BERT: a WordPiece vocabulary (at most {settings.vocabulary_size} "
           f"tokens), then masked LM ({settings.pretrain_epochs} epochs)")
    pretrained_path = os.path.join(output_dir, "quickstart_bert")
    pretrained = pretrain_bert(
        corpus, pretrained_path, size=settings.size, vocabulary_size=settings.vocabulary_size,
        sequence_length=settings.sequence_length, epochs=settings.pretrain_epochs, batch_size=settings.batch_size,
        learning_rate=settings.pretrain_learning_rate, held_out_texts=list(task.test_texts), seed=seed,
    )
    vocabulary = pretrained.task.preprocessor.tokenizer.get_vocabulary()
    results["pretrain_loss"] = pretrained.metrics["loss"]
    results["masked_accuracy"] = pretrained.metrics["masked_accuracy"]

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

    phase("3/6 Fine-tuning the pretrained BERT")
    classifier, pretrained_metrics = finetune(pretrained_path, "from the pretrained backbone")
    phase("4/6 Fine-tuning the same classifier from scratch (random init, same budget)")
    scratch_backbone = kp.models.Bert.from_size(
        settings.size, vocabulary_size=len(vocabulary), max_sequence_length=settings.sequence_length
    )
    _, scratch_metrics = finetune(scratch_backbone, "from scratch (random init, same budget)")
    results["pretrained"] = pretrained_metrics
    results["scratch"] = scratch_metrics

    phase(f"5/6 Exporting the fine-tuned classifier to {output_dir}/quickstart/ (verified on the test texts)")
    export_path = kp.export.export(classifier, os.path.join(output_dir, "quickstart"), formats=["saved_model"],
                                   verify_data=list(task.test_texts), overwrite=True)
    saved_model_path = os.path.join(export_path, "1")
    print(f"SavedModel: {saved_model_path}; Keras model, vocabulary and manifest.json beside it in {export_path}/")

    phase("6/6 Reloading the SavedModel with plain TensorFlow and comparing predictions")
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
    check(failures)
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
