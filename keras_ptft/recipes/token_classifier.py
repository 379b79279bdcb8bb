"""Token classification (NER): word lists and tags in, entities with character offsets out."""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.recipes.text_classifier import resolve_backbone
from keras_ptft.tasks.token_classifier import TokenClassifier
from keras_ptft.training.optimization import make_adamw
from keras_ptft.training.schedules import WarmupDecay


def token_classifier(
    backbone_or_path: keras.Model | str | os.PathLike,
    label_names: Sequence[str],
    *,
    vocabulary: Sequence[str] | str | None = None,
    sequence_length: int | None = None,
    scheme: str = "IOB2",
    label_all_pieces: bool = False,
    strict_scheme: bool = False,
    learning_rate: float = 5e-5,
    warmup_ratio: float = 0.1,
    total_steps: int | None = None,
    weight_decay: float = 0.01,
    clipnorm: float | None = 1.0,
    dropout: float = 0.1,
    lowercase: bool = True,
    distribution=None,
    bucketing: bool | int | Sequence[int] = True,
    **compile_kwargs,
) -> TokenClassifier:
    """A compiled token classifier (NER tagger), ready for `fit(words, tags)`.

    Defaults follow BERT's CoNLL-2003 fine-tuning: the tag of each word learned on its first
    WordPiece, AdamW 5e-5 (weight decay 0.01, none on LayerNorm and biases), linear warm-up over
    10% of the steps then linear decay, clipping at global norm 1. The schedule's length comes
    from the first `fit()` unless `total_steps` is given.

    Args:
        backbone_or_path: a backbone object, or any checkpoint folder
            (`keras_ptft.convert.load_checkpoint`: saved here with `save_to_preset`, a keras-hub
            preset, a Hugging Face or sentence-transformers BERT folder); its tokenizer's vocabulary
            and casing are used.
        label_names: list of str. The tags, `"O"` included (`kp.data.label_names_from_tags`
            collects them from training tags).
        vocabulary: list of str or str. Needed with a backbone object.
        sequence_length: int or None. Pieces per sentence; defaults to the backbone's
            `max_sequence_length`, capped at 128.
        scheme: str. `"IOB2"` (BIO) or `"IOBES"`.
        label_all_pieces: bool. Train all pieces of a word, not only its first.
        strict_scheme: bool. Reject training tags that break `scheme` (else read as seqeval).
        learning_rate: float. Peak learning rate.
        warmup_ratio: float. Fraction of the steps spent warming up.
        total_steps: int or None. Length of the schedule; None takes it from `fit()`.
        weight_decay: float. AdamW weight decay.
        clipnorm: float or None. Clip gradients to this global norm.
        dropout: float. Dropout before the tag layer.
        lowercase: bool. Used with `vocabulary` (a folder's tokenizer brings its own).
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
        bucketing: bool, int or list of int. Length-bucketed batches for `fit`, `evaluate` and
            `predict` (True: 4 buckets from the sentences' length quantiles; a number of buckets;
            explicit bucket lengths; False: every row padded to `sequence_length`). A run option,
            not saved with the model.
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    words, tags = kp.data.read_conll("conll2003/train.txt.gz")
    tagger = kp.recipes.token_classifier("saved_models/my_bert", kp.data.label_names_from_tags(tags))
    tagger.fit(words, tags, epochs=1)
    tagger.predict(["Angela Merkel visited Paris."])  # [[{"text": "Angela Merkel", "label": "PER", ...}, ...]]
    ```
    """
    check_bucketing(bucketing)  # refused before any model is built
    backbone, vocabulary, lowercase, strip_accents, sequence_length = resolve_word_piece_backbone(
        backbone_or_path, vocabulary, sequence_length, lowercase, default_length=128)
    tagger = TokenClassifier(
        backbone, label_names, vocabulary=vocabulary, sequence_length=sequence_length, lowercase=lowercase,
        strip_accents=strip_accents, scheme=scheme, label_all_pieces=label_all_pieces,
        strict_scheme=strict_scheme, dropout=dropout, compile=False, distribution=distribution,
    )
    tagger.set_run_options(bucketing=bucketing)
    compile_with_schedule(tagger, compile_kwargs, learning_rate, warmup_ratio, total_steps, weight_decay, clipnorm)
    return tagger


def resolve_word_piece_backbone(backbone_or_path, vocabulary, sequence_length, lowercase, default_length: int):
    """The backbone, its vocabulary, casing and accent stripping, and the sequence length (the
    backbone's `max_sequence_length` capped at `default_length` when None); shared with the QA
    recipe."""
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, None, sequence_length, lowercase)
    if sequence_length is None:
        sequence_length = min(default_length, getattr(backbone, "max_sequence_length", None) or default_length)
    return backbone, preprocessor.vocabulary, preprocessor.lowercase, preprocessor.strip_accents, sequence_length


def compile_with_schedule(
    task, compile_kwargs, learning_rate, warmup_ratio, total_steps, weight_decay, clipnorm
) -> None:
    """Compiles `task` with AdamW on a warm-up/linear-decay schedule unless `compile_kwargs`
    brings an optimizer."""
    if "optimizer" not in compile_kwargs:
        schedule = WarmupDecay(learning_rate, total_steps=total_steps, warmup_ratio=warmup_ratio)
        # The global norm, as the docstrings say (Keras' `clipnorm` clips each gradient alone).
        compile_kwargs["optimizer"] = make_adamw(schedule, weight_decay=weight_decay, global_clipnorm=clipnorm)
    task.compile(**compile_kwargs)
