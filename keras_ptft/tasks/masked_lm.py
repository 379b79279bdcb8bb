"""Masked language modeling: the BERT pretraining task, plus fill-mask and cloze scoring."""

from __future__ import annotations

import math
import os
import warnings
from typing import Any, Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.data.bucketing import boundaries_for, check_bucketing, length_sorted_batches, restore_order
from keras_ptft.data.packing import masked_lm_examples, pack_for_masked_lm
from keras_ptft.tasks.base import BucketingOption, TrainingMixin
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.validation import check_sequence_length, check_text_dataset, check_texts

MASK_TOKEN = "[MASK]"


@keras.saving.register_keras_serializable(package="keras_ptft")
class MaskedLM(BucketingOption, TrainingMixin, keras_hub.models.MaskedLM):
    """Masked-LM pretraining of a BERT-style backbone on raw strings.

    Each batch is tokenized and masked on the fly inside `tf.data` (keras-hub's
    `MaskedLMMaskGenerator`): `mask_rate` of the tokens are selected (special tokens never are), of
    those 80% become `[MASK]`, 10% a random token and 10% stay as they are. Masks are drawn anew
    every time a batch is seen, so every epoch masks differently; `keras.utils.set_random_seed`
    makes them reproducible. The loss and accuracy count masked positions only. The output
    projection is tied to the backbone's token embedding.

    Args:
        backbone: `keras_ptft.models.Bert` (any backbone with `token_ids`, `segment_ids`,
            `padding_mask` inputs, a `sequence_output` and a `token_embedding` layer).
        vocabulary: list of str or str. The WordPiece vocabulary (or its file), used to build the
            preprocessor when `preprocessor` is not given.
        preprocessor: a `keras_hub.models.BertMaskedLMPreprocessor`, or None to build one.
        sequence_length: int or None. Texts are truncated/padded to this many tokens; defaults to
            min(128, `backbone.max_sequence_length`). A longer one than the backbone's is refused.
        mask_rate: float. The fraction of (non-special) tokens selected for prediction.
        lowercase: bool. Lower-case (and, by default, strip accents) before tokenizing.
        strip_accents: bool or None. Defaults to `lowercase` (BERT's uncased convention).
        checkpoint_dir: str or None. Makes `fit` resumable there: a run killed at any moment and
            started again with the same command continues from its last completed epoch, and the
            best model is kept as `best.keras` (`keras_ptft.training.resumable_callbacks`). A
            folder holding another model's checkpoint is refused. Not saved with the model.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets validation
            data, else `"loss"`.
        seed: int or None. Seed of the shuffling; None follows `keras.utils.set_random_seed`.
        packing: bool. How `fit` lays out a corpus of raw strings (a list, array or
            `tf.data.Dataset` of str). True (the default): every training row is filled with
            consecutive text, `[CLS] doc1 [SEP] doc2 [SEP] ...` cut at `sequence_length` (a document
            may continue in the next row, as in BERT's own pretraining data), so almost no position
            is padding; documents are reshuffled before packing every epoch. False: one document per
            row, truncated/padded to `sequence_length`. Validation, `evaluate` and `predict` always
            use one document per row. A run option like `seed`: not saved with the model.
        bucketing: bool, int or list of int. `fill_mask` and `score_candidates` sort their texts
            by length and run each batch cut to a length bucket (True: 4 buckets from the texts'
            own lengths; or a number of buckets, or bucket lengths), returning results in the
            caller's order; False pads every text to `sequence_length`. A run option: not saved.

    Example:
    ```python
    import keras_ptft as kp

    texts = ["the cat sat on the mat", "the dog sat on the log"] * 16
    vocab = kp.data.train_wordpiece(texts, vocabulary_size=64)
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocab), max_sequence_length=16)
    mlm = kp.tasks.MaskedLM(bert, vocabulary=vocab, sequence_length=16)
    mlm.fit(texts, batch_size=8, epochs=1)
    mlm.fill_mask(["the cat sat on the [MASK]"], top_k=3)
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        vocabulary: Sequence[str] | str | None = None,
        preprocessor: keras.layers.Layer | None = None,
        sequence_length: int | None = None,
        mask_rate: float = 0.15,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        seed: int | None = None,
        packing: bool = True,
        bucketing: bool | int | Sequence[int] = True,
        **kwargs,
    ):
        bucketing = check_bucketing(bucketing)
        if preprocessor is None:
            if vocabulary is None:
                raise ValueError(
                    "`MaskedLM` needs a `vocabulary` (list of tokens or vocabulary file) or a "
                    "`preprocessor`; received neither."
                )
            preprocessor = masked_lm_preprocessor(
                vocabulary,
                sequence_length=check_sequence_length(sequence_length, backbone, minimum=3),
                mask_rate=mask_rate,
                lowercase=lowercase,
                strip_accents=strip_accents,
            )
        else:
            check_sequence_length(preprocessor.sequence_length, backbone, "preprocessor.sequence_length", minimum=3)
        # While a `.keras` file loads, the tokenizer exists before its vocabulary asset is
        # restored; the sizes matched when the model was saved.
        has_vocabulary = getattr(preprocessor.tokenizer, "vocabulary", None) is not None
        tokenizer_size = preprocessor.tokenizer.vocabulary_size() if has_vocabulary else backbone.vocabulary_size
        if tokenizer_size != backbone.vocabulary_size:
            raise ValueError(
                f"The vocabulary has {tokenizer_size} tokens but the backbone's "
                f"`vocabulary_size` is {backbone.vocabulary_size}; they must match."
            )

        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.masked_lm_head = keras_hub.layers.MaskedLMHead(
            vocabulary_size=backbone.vocabulary_size,
            token_embedding=backbone.token_embedding,
            intermediate_activation="gelu",
            layer_norm_epsilon=getattr(backbone, "layer_norm_epsilon", 1e-12),
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            dtype=backbone.dtype_policy,
            name="mlm_head",
        )

        # === Functional Model ===
        inputs = {
            **backbone.input,
            "mask_positions": keras.Input(shape=(None,), dtype="int32", name="mask_positions"),
        }
        sequence_output = backbone(backbone.input)["sequence_output"]
        logits = self.masked_lm_head(sequence_output, inputs["mask_positions"])
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Training run === (a property of this run, not of the model: not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)
        self.packing = check_packing(packing)

    def compile(self, optimizer="auto", loss="auto", *, weighted_metrics="auto", **kwargs):
        """Compiles with pretraining defaults: AdamW (lr 5e-4, weight decay 0.01, no decay on
        LayerNorm/bias), cross-entropy and accuracy on masked positions, XLA where it helps.

        Every argument of `keras.Model.compile` may be passed to override a default.
        """
        if optimizer == "auto":
            optimizer = make_adamw(5e-4)
        if loss == "auto":
            # Averaged over the masked tokens only: the default reduction would also count the
            # empty prediction slots and report a loss that shrinks with the masking rate.
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="masked_accuracy")]
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        return check_corpus(x), y, sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        # Only training batches (`augment=True`, i.e. `fit`'s own data) are packed: validation,
        # `evaluate` and `predict` keep one document per row.
        if augment and self.packing and y is None and sample_weight is None and is_text_corpus(x):
            import tensorflow as tf

            tokenizer = self.preprocessor.tokenizer
            if not self.preprocessor.built:
                self.preprocessor.build(None)  # creates keras-hub's masker
            documents, num_tokens = shuffled_documents(tokenizer, x, seed=self.seed, shuffle=shuffle,
                                                       separator=1)
            rows = pack_for_masked_lm(documents, self.sequence_length, tokenizer.cls_token_id,
                                      tokenizer.sep_token_id, tokenizer.pad_token_id)
            rows = shuffled_rows(rows, num_tokens, self.sequence_length - 1, seed=self.seed, shuffle=shuffle)
            # The packed rows are masked here, once: keras-hub's masker is the preprocessor's, so
            # `preprocess_samples` must not run over them again.
            batches = masked_lm_examples(rows.batch(batch_size or 32), self.preprocessor.masker)
            return batches.prefetch(tf.data.AUTOTUNE)
        return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)

    def fit(self, *args, **kwargs):
        with warnings.catch_warnings():
            # The pooler is not part of the masked-LM objective; Keras would warn about it on
            # every run.
            warnings.filterwarnings("ignore", message="Gradients do not exist for variables.*pooled_dense")
            return super().fit(*args, **kwargs)

    # === Inference: fill-mask and cloze ===

    def fill_mask(self, texts: str | Sequence[str], top_k: int = 5) -> list[list[list[tuple[str, float]]]]:
        """Predicts the most likely tokens for every `[MASK]` in each text.

        Args:
            texts: str or list of str. Each must contain at least one `[MASK]`.
            top_k: int. How many candidates to return per mask.

        Returns:
            For each text, for each `[MASK]` in order, a list of `(token, probability)` pairs,
            most likely first.

        Example:
        ```python
        mlm.fill_mask("the cat sat on the [MASK]", top_k=3)
        # [[[('mat', 0.61), ('log', 0.2), ('the', 0.03)]]]
        ```
        """
        texts = check_texts(texts, "texts")
        if not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"`top_k` must be a positive integer, received top_k={top_k!r}.")
        encoded = [self._encode_with_masks(text, "texts") for text in texts]
        log_probs = self._masked_log_probs([ids for ids, _ in encoded], [pos for _, pos in encoded])
        vocabulary = self.preprocessor.tokenizer.get_vocabulary()
        results = []
        for text_log_probs in log_probs:
            per_mask = []
            for row in text_log_probs:
                best = np.argsort(-row)[:top_k]
                per_mask.append([(vocabulary[i], float(np.exp(row[i]))) for i in best])
            results.append(per_mask)
        return results

    def score_candidates(self, text_with_one_blank: str, candidates: Sequence[str]) -> list[tuple[str, float]]:
        """Ranks candidate fillers of a one-`[MASK]` text: the cloze / gap-filling task.

        A candidate may tokenize into several word pieces. Its score is the pseudo-log-likelihood
        of Salazar et al. (2020): the candidate is put in the gap, then each of its pieces is masked
        in turn and the log-probability of the right piece is summed. Single-piece candidates thus
        get exactly `log p(piece | context)`.

        Args:
            text_with_one_blank: str. A text with exactly one `[MASK]` marking the gap.
            candidates: list of str. The words (or phrases) that could fill the gap.

        Returns:
            `(candidate, score)` pairs, best first; `result[0][0]` is the model's pick.

        Example:
        ```python
        mlm.score_candidates("the cat sat on the [MASK]", ["mat", "log", "sky"])[0][0]
        ```
        """
        (text,) = check_texts(text_with_one_blank, "text_with_one_blank")
        if text.count(MASK_TOKEN) != 1:
            raise ValueError(
                f"`text_with_one_blank` must contain exactly one {MASK_TOKEN}, received "
                f"{text.count(MASK_TOKEN)} in {text!r}."
            )
        candidates = check_texts(candidates, "candidates")
        before, after = text.split(MASK_TOKEN)
        tokenizer = self.preprocessor.tokenizer
        mask_id = tokenizer.mask_token_id
        sequences, positions, targets, owners = [], [], [], []
        for index, candidate in enumerate(candidates):
            pieces = self._token_ids(candidate)
            if not pieces:
                raise ValueError(f"`candidates` contains {candidate!r}, which has no tokens.")
            head, tail = self._token_ids(before), self._token_ids(after)
            ids = [tokenizer.cls_token_id, *head, *pieces, *tail, tokenizer.sep_token_id]
            if len(ids) > self.sequence_length:
                raise ValueError(
                    f"`text_with_one_blank` with candidate {candidate!r} is {len(ids)} tokens, "
                    f"longer than the model's sequence_length={self.sequence_length}."
                )
            for offset, piece in enumerate(pieces):
                position = 1 + len(head) + offset
                masked = list(ids)
                masked[position] = mask_id
                sequences.append(masked)
                positions.append([position])
                targets.append(piece)
                owners.append(index)
        log_probs = self._masked_log_probs(sequences, positions)
        scores = np.zeros(len(candidates))
        for row, target, owner in zip(log_probs, targets, owners):
            scores[owner] += row[0][target]
        order = np.argsort(-scores, kind="stable")
        return [(candidates[i], float(scores[i])) for i in order]

    @property
    def sequence_length(self) -> int:
        return self.preprocessor.sequence_length

    def _token_ids(self, text: str) -> list[int]:
        if not text.strip():
            return []
        ids = self.preprocessor.tokenizer([text])
        return [int(i) for i in keras.ops.convert_to_numpy(to_dense_row(ids))]

    def _encode_with_masks(self, text: str, argument: str) -> tuple[list[int], list[int]]:
        # `[MASK]` is split out before tokenizing: lower-casing would otherwise turn it into an
        # ordinary word.
        if MASK_TOKEN not in text:
            raise ValueError(f"`{argument}` must contain {MASK_TOKEN}; received {text!r}.")
        tokenizer = self.preprocessor.tokenizer
        ids, positions = [tokenizer.cls_token_id], []
        pieces = text.split(MASK_TOKEN)
        for i, piece in enumerate(pieces):
            ids.extend(self._token_ids(piece))
            if i < len(pieces) - 1:
                positions.append(len(ids))
                ids.append(tokenizer.mask_token_id)
        ids.append(tokenizer.sep_token_id)
        if len(ids) > self.sequence_length:
            raise ValueError(
                f"`{argument}` entry {text!r} is {len(ids)} tokens, longer than the model's "
                f"sequence_length={self.sequence_length}."
            )
        return ids, positions

    def _masked_log_probs(self, sequences: list[list[int]], positions: list[list[int]], batch_size: int = 64):
        """Log-probabilities over the vocabulary at the given positions of each sequence."""
        length = self.sequence_length
        width = max(len(p) for p in positions)
        pad = self.preprocessor.tokenizer.pad_token_id
        token_ids = np.full((len(sequences), length), pad, "int32")
        mask_positions = np.zeros((len(sequences), width), "int32")
        for row, (ids, pos) in enumerate(zip(sequences, positions)):
            token_ids[row, : len(ids)] = ids
            mask_positions[row, : len(pos)] = pos
        features = {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                    "padding_mask": (token_ids != pad).astype("int32"), "mask_positions": mask_positions}
        order = None
        if self.bucketing:
            lengths = np.array([len(ids) for ids in sequences])
            batches, order = length_sorted_batches(features, batch_size,
                                                   boundaries_for(self.bucketing, lengths, length))
            batches = batches.as_numpy_iterator()
        else:
            batches = ({key: value[start : start + batch_size] for key, value in features.items()}
                       for start in range(0, len(sequences), batch_size))
        outputs = []
        for batch in batches:
            logits = keras.ops.convert_to_numpy(keras.ops.cast(self(batch, training=False), "float32"))
            outputs.append(logits - _logsumexp(logits))
        log_probs = np.concatenate(outputs)
        if order is not None:
            log_probs = restore_order(log_probs, order)
        return [lp[: len(pos)] for lp, pos in zip(log_probs, positions)]


def check_packing(packing) -> bool:
    """Validates the `packing` option of the pretraining tasks."""
    if not isinstance(packing, (bool, np.bool_)):
        raise ValueError(f"`packing` must be True or False, received packing={packing!r}.")
    return bool(packing)


def is_text_corpus(x) -> bool:
    """True for what packing applies to: a non-empty list / tuple / 1-D array of str, or a
    `tf.data.Dataset` of strings (one per element, or batches of them)."""
    if hasattr(x, "element_spec"):
        spec = x.element_spec
        return getattr(spec, "dtype", None) is not None and spec.dtype.name == "string" and spec.shape.rank in (0, 1)
    if isinstance(x, np.ndarray):
        x = x.tolist() if x.ndim == 1 else None
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, str) for t in x)


def check_corpus(x: Any) -> Any:
    """`x` of a pretraining language model's `fit` / `evaluate` / `predict`: texts (a single str,
    a list / tuple / array of str, empty allowed) become a list (`check_texts`), a dataset must
    yield strings or feature dicts (`check_text_dataset`); anything else (token-id dicts) passes.

    Example:
    ```python
    check_corpus("the cat sat")  # ["the cat sat"]
    ```
    """
    if isinstance(x, (str, list, tuple, np.ndarray)):
        return check_texts(x, "x", allow_empty=True)
    if hasattr(x, "element_spec"):
        check_text_dataset(x)
    return x


def shuffled_rows(rows, num_tokens: int | None, tokens_per_row: int, seed: int | None = None, shuffle: bool = True):
    """Packed rows (a `tf.data.Dataset`), told how many there are when the corpus was in memory
    (`num_tokens` from `shuffled_documents`, `tokens_per_row` text tokens per row) so that a
    schedule can be sized from them, and reshuffled every epoch when `shuffle`.

    Example:
    ```python
    rows = shuffled_rows(pack_for_causal_lm(documents, 16, end_id, pad_id), num_tokens, 17, seed=0)
    ```
    """
    import tensorflow as tf

    if num_tokens is not None:
        rows = rows.apply(tf.data.experimental.assert_cardinality(math.ceil(num_tokens / tokens_per_row)))
    if shuffle:
        rows = rows.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    return rows


def shuffled_documents(tokenizer, texts, seed: int | None = None, shuffle: bool = True, separator: int = 1):
    """A corpus as a `tf.data.Dataset` of token-id documents, ready for `keras_ptft.data` packing.

    In-memory texts are tokenized once, eagerly (tracing a byte-pair tokenizer into `tf.data`
    costs seconds per call), and reshuffled as whole documents every epoch before they are packed.
    A dataset of strings is tokenized inside `tf.data`, in its own order.

    Args:
        tokenizer: a keras-hub tokenizer (no `sequence_length`, so documents are not cut).
        texts: list of str or a `tf.data.Dataset` of strings (see `is_text_corpus`).
        seed: int or None. Seed of the shuffling.
        shuffle: bool. Reshuffle the documents every epoch (in-memory texts only).
        separator: int. Tokens packing adds after each document (`[SEP]`, the end token).

    Returns:
        `(documents, num_tokens)`: the dataset of 1-D int32 rows, and for in-memory texts the
        packed stream's length (non-empty documents' tokens plus their separators), else None.

    Example:
    ```python
    documents, num_tokens = shuffled_documents(mlm.preprocessor.tokenizer, ["the cat", "sat"], seed=0)
    ```
    """
    import tensorflow as tf

    if hasattr(texts, "element_spec"):
        if texts.element_spec.shape.rank == 0:
            texts = texts.batch(256)
        return texts.map(tokenizer, num_parallel_calls=tf.data.AUTOTUNE), None
    texts = check_texts(texts, "x")
    chunks = []
    for start in range(0, len(texts), 1024):
        ids = tokenizer(texts[start : start + 1024])
        if isinstance(ids, tf.RaggedTensor):
            chunks.append(tf.cast(ids, tf.int32))
        elif hasattr(ids, "shape") and len(ids.shape) == 2:  # dense when all rows have one length
            chunks.append(tf.RaggedTensor.from_tensor(tf.cast(np.asarray(ids), tf.int32)))
        else:  # lists of lists outside TensorFlow
            chunks.append(tf.ragged.constant([list(np.asarray(row).reshape(-1)) for row in ids], dtype=tf.int32))
    ids = tf.concat(chunks, axis=0)
    lengths = ids.row_lengths().numpy()
    num_tokens = int(lengths.sum() + separator * np.count_nonzero(lengths))
    if num_tokens == 0:
        raise ValueError("`x`: every text is empty after tokenization; there is nothing to train on.")
    documents = tf.data.Dataset.from_tensor_slices(ids)
    if shuffle:
        documents = documents.shuffle(len(texts), seed=seed, reshuffle_each_iteration=True)
    return documents, num_tokens


def masked_lm_preprocessor(
    vocabulary: Sequence[str] | str,
    sequence_length: int = 128,
    mask_rate: float = 0.15,
    lowercase: bool = True,
    strip_accents: bool | None = None,
) -> keras_hub.models.BertMaskedLMPreprocessor:
    """Builds keras-hub's masked-LM preprocessor (tokenize, pack, mask) for a WordPiece vocabulary."""
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(f"`mask_rate` must be in (0, 1), received mask_rate={mask_rate!r}.")
    if not isinstance(sequence_length, int) or sequence_length < 3:
        raise ValueError(
            f"`sequence_length` must be an integer >= 3, received sequence_length={sequence_length!r}."
        )
    tokenizer = keras_hub.models.BertTokenizer(
        vocabulary=list(vocabulary) if not isinstance(vocabulary, str) else vocabulary,
        lowercase=lowercase,
        strip_accents=lowercase if strip_accents is None else strip_accents,
    )
    return keras_hub.models.BertMaskedLMPreprocessor(
        tokenizer=tokenizer,
        sequence_length=sequence_length,
        mask_selection_rate=mask_rate,
        mask_selection_length=mask_slots(sequence_length, mask_rate),
    )


def mask_slots(sequence_length: int, mask_rate: float) -> int:
    """How many prediction slots a masked sequence gets.

    A fixed number keeps shapes static (one XLA compilation). Tokens are selected independently
    with probability `mask_rate`, so the count varies per sequence; the mean plus three standard
    deviations leaves room for almost every draw. Capping at the mean would bias the rate down
    (≈13.8% instead of 15% at length 64).
    """
    mean = mask_rate * sequence_length
    return min(sequence_length, max(1, math.ceil(mean + 3 * math.sqrt(mean * (1 - mask_rate)))))


def to_dense_row(ids) -> np.ndarray:
    """The first row of a tokenizer's output as an int32 array."""
    # The tokenizer returns a ragged batch on TF and a list of lists elsewhere.
    if hasattr(ids, "to_list"):
        return np.array(ids.to_list()[0], "int32")
    if isinstance(ids, list):
        return np.array(ids[0], "int32")
    return np.asarray(ids)[0]


# The old private name, still imported by `export/masked_lm.py`; use `to_dense_row`.
_to_dense_row = to_dense_row


def _logsumexp(x: np.ndarray) -> np.ndarray:
    peak = x.max(axis=-1, keepdims=True)
    return peak + np.log(np.exp(x - peak).sum(axis=-1, keepdims=True))
