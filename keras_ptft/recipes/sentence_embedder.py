"""Sentence embeddings: mean-pooled, L2-normalised encoder outputs, fine-tuned contrastively.

This is the sentence-transformers recipe of all-MiniLM-L6-v2 and its kin (Reimers & Gurevych,
2019): the attention-masked mean of the token vectors, scaled to unit length, so a dot product is
a cosine similarity. Fine-tuning uses in-batch negatives ("MultipleNegativesRankingLoss"): for
text pairs (a_i, b_i) each a_i must pick its own b_i among all b_j of the batch.
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import keras

from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.models.presets import load_backbone, load_tokenizer
from keras_ptft.tasks.sentence_embedder import InBatchContrastiveLoss, InBatchSimilarity, SentenceEmbedder  # noqa: F401
from keras_ptft.training.optimization import make_adamw
from keras_ptft.validation import check_sequence_length


def sentence_embedder(
    source,
    *,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    normalize: bool = True,
    scale: float = 20.0,
    learning_rate: float = 2e-5,
    weight_decay: float = 0.01,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    bucketing: bool | int | Sequence[int] = True,
    **compile_kwargs,
) -> SentenceEmbedder:
    """A compiled `SentenceEmbedder`: `encode()` texts now, or `fit()` on text pairs first.

    Args:
        source: where the encoder comes from: a `keras_ptft.convert.Converted` (from
            `from_huggingface` / `from_keras_hub`), a Hugging Face folder (has config.json with a
            `model_type`), a folder saved with `save_to_preset`, or a backbone object (then pass
            `preprocessor=`).
        preprocessor: `BertPreprocessor` or None. Overrides the one that comes with `source`.
        sequence_length: int or None. Row length when the preprocessor is built here; defaults to
            min(128, the backbone's `max_sequence_length`), and a longer one is refused.
        normalize: bool. L2-normalise the embeddings.
        scale: float. Inverse temperature of the in-batch contrastive loss.
        learning_rate: float. AdamW learning rate for fine-tuning.
        weight_decay: float. AdamW weight decay.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        bucketing: bool, int or list of int. Length-bucketed `fit` and length-sorted `encode`
            (see `SentenceEmbedder`); False for fixed padding to `sequence_length`.
        **compile_kwargs: passed to `compile()`, overriding any default.

    Example:
    ```python
    embedder = kp.recipes.sentence_embedder("path/to/all-MiniLM-L6-v2")
    embedder.fit((["a cat sits", "stocks fell"], ["a kitten sitting", "markets dropped"]), batch_size=2)
    embedder.encode(["a cat"]).shape  # (1, 384)
    ```
    """
    from keras_ptft.convert.huggingface import Converted, from_huggingface

    check_bucketing(bucketing)  # refused before any model is loaded

    if isinstance(source, (str, os.PathLike)):
        source = os.fspath(source)
        config_file = os.path.join(source, "config.json")
        is_hf = os.path.exists(config_file) and "model_type" in json.load(open(config_file, encoding="utf-8"))
        if is_hf:
            source = from_huggingface(source, sequence_length=sequence_length)
        else:
            backbone, tokenizer = load_backbone(source), load_tokenizer(source)
            if preprocessor is None and tokenizer is not None:
                from keras_ptft.data.preprocessing import BertPreprocessor

                preprocessor = BertPreprocessor(
                    tokenizer.get_vocabulary(), sequence_length=check_sequence_length(sequence_length, backbone),
                    lowercase=tokenizer.lowercase, strip_accents=tokenizer.strip_accents,
                )
            source = Converted(backbone, preprocessor)
    if isinstance(source, Converted):
        backbone, preprocessor = source.backbone, preprocessor or source.preprocessor
    elif isinstance(source, keras.Model):
        backbone = source
    else:
        raise ValueError(
            "`source` must be a Converted, a model folder or a backbone, received "
            f"{type(source).__name__}."
        )
    if preprocessor is None:
        raise ValueError("`sentence_embedder` needs a `preprocessor` (the source has no tokenizer).")
    if preprocessor.vocabulary_size != backbone.vocabulary_size:
        raise ValueError(
            f"The preprocessor's vocabulary has {preprocessor.vocabulary_size} tokens but the "
            f"backbone's `vocabulary_size` is {backbone.vocabulary_size}; they must match."
        )
    embedder = SentenceEmbedder(backbone, preprocessor, normalize=normalize, scale=scale)
    compile_kwargs.setdefault("optimizer", make_adamw(learning_rate, weight_decay=weight_decay))
    embedder.compile(**compile_kwargs)
    embedder.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)
    return embedder

