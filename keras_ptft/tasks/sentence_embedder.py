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
import numpy as np

from keras_ptft.data.bucketing import (
    boundaries_for,
    bucketed_arrays,
    check_bucketing,
    length_sorted_batches,
    restore_order,
)
from keras_ptft.models.bert import Bert
from keras_ptft.tasks.base import BucketingOption, Task
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.validation import check_text_pairs, check_texts

_FEATURES = ("token_ids", "segment_ids", "padding_mask")
POOLINGS = ("mean", "cls")


@keras.saving.register_keras_serializable(package="keras_ptft")
class InBatchSimilarity(keras.layers.Layer):
    """`scale` x the dot products of every anchor with every positive: `(batch, batch)` logits.

    Args:
        scale: float. Inverse temperature; sentence-transformers uses 20 with cosine similarity.
    """

    def __init__(self, scale: float = 20.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, anchors, positives):
        return self.scale * keras.ops.matmul(anchors, keras.ops.transpose(positives))

    def get_config(self) -> dict:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_ptft")
class InBatchContrastiveLoss(keras.losses.Loss):
    """Cross-entropy of each row of an in-batch similarity matrix against its diagonal.

    `y_true` is ignored (the target of row i is column i); pass any array of batch size.
    """

    def __init__(self, name: str = "in_batch_contrastive", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        targets = keras.ops.arange(keras.ops.shape(y_pred)[0])
        return keras.losses.sparse_categorical_crossentropy(targets, y_pred, from_logits=True)


@keras.saving.register_keras_serializable(package="keras_ptft")
class SentenceEmbedder(BucketingOption, Task):
    """Text pairs in, in-batch similarity logits out; `encode` gives the sentence embeddings.

    The model itself is the contrastive trainer: its inputs are the preprocessed anchor and
    positive texts (`anchor_token_ids`, ..., `positive_padding_mask`) and `fit` takes
    `x=(anchors, positives)`, two lists of raw strings. `encoder` is the embedding model
    (backbone → masked mean pooling → L2 normalisation) shared with it; `encode(texts)` runs it.
    Build it with `keras_ptft.recipes.sentence_embedder`, which also compiles it.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with `token_ids`, `segment_ids`,
            `padding_mask` inputs and a `sequence_output`).
        preprocessor: `keras_ptft.data.BertPreprocessor` turning strings into the backbone inputs.
        pooling: str. `"mean"` (the mask-aware mean of the token vectors, as all-MiniLM-L6-v2) or
            `"cls"` (the first token's vector, sentence-transformers' CLS pooling).
        normalize: bool. Scale embeddings to unit L2 norm (as all-MiniLM-L6-v2 does).
        scale: float. Inverse temperature of the contrastive loss.
        checkpoint_dir: str or None. Makes `fit` resumable there. Not saved with the model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        bucketing: bool, int or list of int. Length-bucketed batches with dynamic padding, as in
            `TextClassifier`: `fit` groups the pairs by the longer side's length (each batch cut
            to its bucket), `encode` sorts the texts by length and returns them in the caller's
            order. False restores fixed padding to `sequence_length`. Not saved with the model.

    `fit(x=(anchors, positives), batch_size=32)` reshuffles the pairs every epoch and drops the
    last partial batch (of each bucket), so every anchor sees `batch_size - 1` negatives; a
    bucket too small for one batch is merged into the next longer one. Bucketed batches hold
    pairs of similar length, so length is no cue to tell a positive from the negatives.

    Example:
    ```python
    embedder = kp.recipes.sentence_embedder(kp.convert.from_huggingface("all-MiniLM-L6-v2"))
    embedder.encode(["A man is eating food."]).shape  # (1, 384)
    ```
    """

    backbone_cls = Bert

    def __init__(self, backbone: keras.Model, preprocessor: keras.layers.Layer, normalize: bool = True,
                 scale: float = 20.0, pooling: str = "mean", checkpoint_dir: str | os.PathLike | None = None,
                 monitor: str | None = None, seed: int | None = None, bucketing: bool | int | Sequence[int] = True,
                 **kwargs):
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received pooling={pooling!r}.")
        bucketing = check_bucketing(bucketing)
        # === Config === (set first: `Task.__init__` compiles)
        self.pooling = pooling
        self.normalize = bool(normalize)
        self.scale = float(scale)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        unit_norm = keras.layers.UnitNormalization(axis=-1, dtype="float32", name="l2_normalize")
        features = backbone.input
        sequence = backbone(features)["sequence_output"]
        if pooling == "mean":
            # Keras' masked global average is exactly sentence-transformers' mean pooling.
            mean = keras.layers.GlobalAveragePooling1D(dtype="float32", name="mean_pooling")
            embedding = mean(sequence, mask=keras.ops.cast(features["padding_mask"], "bool"))
        else:
            embedding = keras.ops.cast(sequence[:, 0, :], "float32")
        if normalize:
            embedding = unit_norm(embedding)
        self.encoder = encoder = keras.Model(features, embedding, name="encoder")
        similarity = InBatchSimilarity(scale, dtype="float32", name="similarity")

        # === Functional Model ===
        inputs = {f"{side}_{key}": keras.Input(shape=(None,), dtype="int32", name=f"{side}_{key}")
                  for side in ("anchor", "positive") for key in _FEATURES}
        anchors = encoder({key: inputs[f"anchor_{key}"] for key in _FEATURES})
        positives = encoder({key: inputs[f"positive_{key}"] for key in _FEATURES})
        super().__init__(inputs=inputs, outputs=similarity(anchors, positives), **kwargs)
        # === Training run === (not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)

    def compile(self, optimizer="auto", loss="auto", **kwargs):
        """Compiles with AdamW (lr 2e-5, weight decay 0.01) and the in-batch contrastive loss."""
        if optimizer == "auto":
            optimizer = make_adamw(2e-5)
        if loss == "auto":
            loss = InBatchContrastiveLoss()
        super().compile(optimizer=optimizer, loss=loss, **{**default_compile_kwargs(), **kwargs})

    def encode(self, texts: str | Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embeds texts: a `(len(texts), hidden_dim)` float32 array (unit rows if `normalize`).

        Example:
        ```python
        a, b = embedder.encode(["A cat.", "A kitten."])
        float(a @ b)  # cosine similarity
        ```
        """
        texts = check_texts(texts, "texts", allow_empty=True)
        if not texts:
            return np.zeros((0, self.encoder.output_shape[-1]), "float32")
        if not self.bucketing:
            outputs = []
            for start in range(0, len(texts), batch_size):
                features = self.preprocessor(texts[start:start + batch_size])
                outputs.append(keras.ops.convert_to_numpy(self.encoder(features, training=False)))
            return np.concatenate(outputs).astype("float32")
        features = self._features(texts)
        lengths = features["padding_mask"].astype(bool).sum(axis=1)
        boundaries = boundaries_for(self.bucketing, lengths, self.preprocessor.sequence_length)
        batches, order = length_sorted_batches(features, batch_size, boundaries)
        outputs = [keras.ops.convert_to_numpy(self.encoder(batch, training=False))
                   for batch in batches.as_numpy_iterator()]
        return restore_order(np.concatenate(outputs).astype("float32"), order)

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        """`x=(anchors, positives)`, two equally long lists of raw strings; `y` is unused."""
        return check_text_pairs(x, "x"), None, None

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        """Batches of tokenized pairs, reshuffled every epoch; the last partial batch is dropped
        so every anchor sees `batch_size - 1` negatives."""
        anchors, positives = x
        batch_size = 32 if batch_size is None else batch_size
        if batch_size < 2 or batch_size > len(anchors):
            raise ValueError(
                f"`batch_size` must be in [2, {len(anchors)}] (in-batch negatives need >= 2 pairs "
                f"per batch), received batch_size={batch_size}."
            )
        return self._pairs_dataset(anchors, positives, batch_size, shuffle)

    def _pairs_dataset(self, anchors, positives, batch_size, shuffle):
        import tensorflow as tf  # tf.data feeds every backend

        # Tokenized once, up front: re-running the string pipeline inside every epoch's iterator
        # costs more than the training steps of a small model.
        features = {f"{side}_{key}": value for side, texts in (("anchor", anchors), ("positive", positives))
                    for key, value in self._features(texts).items()}
        dummy = np.zeros(len(anchors), "int32")
        if self.bucketing:
            return bucketed_arrays(features, dummy, batch_size=batch_size, bucketing=self.bucketing,
                                   max_length=self.preprocessor.sequence_length, shuffle=shuffle, seed=self.seed,
                                   drop_remainder=True)
        ds = tf.data.Dataset.from_tensor_slices((features, dummy))
        if shuffle:
            ds = ds.shuffle(len(anchors), seed=self.seed, reshuffle_each_iteration=True)
        return ds.batch(batch_size, drop_remainder=True).prefetch(2)

    def _features(self, texts, chunk_size: int = 1024) -> dict:
        """The preprocessor's token arrays for all `texts`, run `chunk_size` texts at a time."""
        parts = [self.preprocessor(texts[start:start + chunk_size]) for start in range(0, len(texts), chunk_size)]
        return {key: np.concatenate([keras.ops.convert_to_numpy(part[key]) for part in parts]) for key in _FEATURES}

    def get_config(self) -> dict:
        return {
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "preprocessor": keras.saving.serialize_keras_object(self.preprocessor),
            "normalize": self.normalize,
            "scale": self.scale,
            "pooling": self.pooling,
            "name": self.name,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)
