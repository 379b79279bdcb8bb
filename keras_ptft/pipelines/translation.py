"""Fine-tuning a translator on sentence pairs: what `keras-ptft finetune translator` runs.

From a pretrained folder (`pretrain_seq2seq`, or any `save_to_preset` of a `Seq2Seq` task), or
from scratch (a SentencePiece vocabulary trained on both sides of the pairs, then a fresh
backbone). The budget is epochs and, optionally, wall-clock minutes (`TimeBudget`), so a CPU run
is promised to end in time.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence

import keras

from keras_ptft.data.seq2seq_preprocessing import train_seq2seq_tokenizer
from keras_ptft.models.seq2seq import SEQ2SEQ_SIZES, Seq2Seq
from keras_ptft.recipes.translator import translator as translator_recipe
from keras_ptft.tasks.translation_metrics import translation_scores
from keras_ptft.tasks.translator import Translator
from keras_ptft.training.callbacks import TimeBudget
from keras_ptft.validation import check_texts


@dataclasses.dataclass
class TranslatorResult:
    """What `finetune_translator` returns.

    Attributes:
        task: the trained `Translator`.
        metrics: dict. `loss` per epoch, `train_seconds`, and with validation pairs `bleu` / `chrf`
            (greedy) and `samples` (source, translation, reference).
    """

    task: Translator
    metrics: dict


def finetune_translator(
    sources: Sequence[str],
    targets: Sequence[str],
    output_dir: str | os.PathLike | None = None,
    backbone: str | os.PathLike | None = None,
    size: str = "mini",
    vocabulary_size: int = 8000,
    sequence_length: int = 48,
    epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    max_minutes: float | None = None,
    validation: tuple[Sequence[str], Sequence[str]] | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    samples: int = 5,
    distribution=None,
) -> TranslatorResult:
    """Fine-tunes (or trains from scratch) a `Translator` on `(sources, targets)` and saves it.

    Args:
        sources, targets: lists of non-empty str, as many of each.
        output_dir: str or None. Save `model.keras` here (for `keras-ptft translate` / `export`).
        backbone: str or None. A pretrained folder (tokenizer inside); None trains a tokenizer and
            a fresh `size` backbone.
        size: str. A `SEQ2SEQ_SIZES` name (from scratch only).
        vocabulary_size: int. SentencePiece pieces wanted (from scratch only).
        sequence_length: int. Source and target length in tokens; longer ones are truncated.
        epochs, batch_size: int. The budget.
        learning_rate: float. AdamW learning rate.
        max_minutes: float or None. Also stop after this many minutes of training.
        validation: `(sources, targets)` or None. Scored (BLEU, chrF) after training.
        seed: int. Seeds weights and the shuffle.
        checkpoint_dir: str or None. Resumable run: the same call again continues from its last epoch.
        samples: int. Validation translations printed and returned.
        distribution: None, "data_parallel", or a `keras.distribution.Distribution` /
            `tf.distribute.Strategy` (see `kp.recipes.translator`); `batch_size` is then global.

    Returns:
        A `TranslatorResult`.

    Example:
    ```python
    result = kp.pipelines.finetune_translator(english, chinese, "saved_models/en_zh", max_minutes=30)
    result.task.translate("I am here.")
    ```
    """
    sources, targets = check_texts(sources, "sources", allow_blank=False), check_texts(targets, "targets",
                                                                                      allow_blank=False)
    if len(sources) != len(targets):
        raise ValueError(f"`sources` and `targets` must hold as many texts, received {len(sources)} sources and "
                         f"{len(targets)} targets.")
    if backbone is None and size not in SEQ2SEQ_SIZES:
        raise ValueError(f"`size` must be one of {list(SEQ2SEQ_SIZES)}, received {size!r}.")
    callbacks = [TimeBudget(max_minutes)] if max_minutes is not None else []
    keras.utils.set_random_seed(seed)
    if backbone is None:
        print(f"--- training a SentencePiece vocabulary (at most {vocabulary_size} pieces) on both sides", flush=True)
        tokenizer = train_seq2seq_tokenizer(sources + targets, vocabulary_size=vocabulary_size)
        model = Seq2Seq.from_size(size, vocabulary_size=tokenizer.vocabulary_size(),
                                  max_sequence_length=sequence_length)
        translator = translator_recipe(model, tokenizer, sequence_length=sequence_length, learning_rate=learning_rate,
                                       distribution=distribution)
        print(f"--- a {size} Seq2Seq from scratch ({model.count_params():,} parameters, "
              f"{tokenizer.vocabulary_size()} pieces)", flush=True)
    else:
        translator = translator_recipe(backbone, sequence_length=sequence_length, learning_rate=learning_rate,
                                       distribution=distribution)
        print(f"--- fine-tuning the backbone of {os.fspath(backbone)!r}", flush=True)
    translator.set_run_options(checkpoint_dir, seed=seed)
    budget = f"{epochs} epochs" + (f", at most {max_minutes:g} minutes" if max_minutes is not None else "")
    print(f"--- training on {len(sources)} pairs ({budget})", flush=True)
    started = time.perf_counter()
    history = translator.fit((sources, targets), epochs=epochs, batch_size=batch_size, callbacks=callbacks,
                             verbose=2)
    metrics = {"train_seconds": round(time.perf_counter() - started, 1), "train_pairs": len(sources),
               "loss": [round(v, 4) for v in history.history.get("loss", [])]}
    if validation is not None:
        val_sources, val_targets = validation
        hypotheses = translator.translate(list(val_sources), batch_size=batch_size)
        metrics.update(translation_scores(hypotheses, list(val_targets)))
        metrics["samples"] = list(zip(val_sources, hypotheses, val_targets))[:samples]
        print(f"validation ({len(val_sources)} pairs, greedy): BLEU {metrics['bleu']:.2f}, chrF "
              f"{metrics['chrf']:.2f}", flush=True)
        for source, hypothesis, reference in metrics["samples"]:
            print(f"  {source}  →  {hypothesis}   (reference: {reference})", flush=True)
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(os.fspath(output_dir), "model.keras")
        translator.save(path)
        print(f"\nSaved to {path} (translate with `keras-ptft translate {os.fspath(output_dir)} --text ...`, "
              f"export with `keras-ptft export {path} saved_models/NAME`).", flush=True)
    return TranslatorResult(translator, metrics)
