"""Sentence embeddings: mean-pooled, L2-normalised encoder outputs, fine-tuned contrastively.

This is the sentence-transformers recipe of all-MiniLM-L6-v2 and its kin (Reimers & Gurevych,
2019): the attention-masked mean of the token vectors, scaled to unit length, so a dot product is
a cosine similarity. Fine-tuning uses in-batch negatives ("MultipleNegativesRankingLoss"): for
text pairs (a_i, b_i) each a_i must pick its own b_i among all b_j of the batch.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras

from keras_ptft.convert.huggingface import Converted
from keras_ptft.data.bucketing import check_bucketing
from keras_ptft.recipes.text_classifier import resolve_backbone, resolve_pooling
from keras_ptft.tasks.sentence_embedder import InBatchContrastiveLoss, InBatchSimilarity, SentenceEmbedder  # noqa: F401
from keras_ptft.training.optimization import make_adamw


def sentence_embedder(
    source,
    *,
    vocabulary: Sequence[str] | str | None = None,
    preprocessor: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    pooling: str = "auto",
    normalize: bool = True,
    scale: float = 20.0,
    learning_rate: float = 2e-5,
    weight_decay: float = 0.01,
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    distribution=None,
    bucketing: bool | int | Sequence[int] = True,
    **compile_kwargs,
) -> SentenceEmbedder:
    """A compiled `SentenceEmbedder`: `encode()` texts now, or `fit()` on text pairs first.

    Args:
        source: where the encoder comes from: a `keras_ptft.convert.Converted` (from
            `from_huggingface` / `from_keras_hub`), any checkpoint folder
            (`keras_ptft.convert.load_checkpoint`: saved here, a keras-hub preset, a Hugging Face or
            a sentence-transformers folder), or a backbone object (then pass `preprocessor=` or
            `vocabulary=`).
        vocabulary: list of str or str. Builds the preprocessor for a backbone object.
        preprocessor: `BertPreprocessor` or None. Overrides the one that comes with `source`.
        sequence_length: int or None. Row length when the preprocessor is built here; defaults to
            min(128, the backbone's `max_sequence_length`), and a longer one is refused.
        pooling: str. `"mean"`, `"cls"` or `"auto"`: the pooling a sentence-transformers folder
            declares in its `1_Pooling/config.json`, else `"mean"`.
        normalize: bool. L2-normalise the embeddings.
        scale: float. Inverse temperature of the in-batch contrastive loss.
        learning_rate: float. AdamW learning rate for fine-tuning.
        weight_decay: float. AdamW weight decay.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
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
    check_bucketing(bucketing)  # refused before any model is loaded

    if isinstance(source, Converted):
        preprocessor = preprocessor or source.preprocessor
    backbone_or_path = source.backbone if isinstance(source, Converted) else source
    backbone, preprocessor = resolve_backbone(backbone_or_path, vocabulary, preprocessor, sequence_length, True)
    pooling = resolve_pooling(pooling, source, default="mean")
    embedder = SentenceEmbedder(backbone, preprocessor, normalize=normalize, scale=scale, pooling=pooling,
                                distribution=distribution)
    compile_kwargs.setdefault("optimizer", make_adamw(learning_rate, weight_decay=weight_decay))
    embedder.compile(**compile_kwargs)
    embedder.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)
    return embedder
