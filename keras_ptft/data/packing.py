"""Packed pretraining inputs: fill every row with consecutive text instead of padding.

Padding each line of a corpus to `sequence_length` wastes most of a pretraining step on short
documents (Tiny-Shakespeare lines are ~10 tokens). Packing concatenates the documents and cuts
the stream into full rows, as BERT's own pretraining data and Hugging Face's `group_texts` do:

- `pack_for_masked_lm`: documents joined by `[SEP]`, rows of `sequence_length` with `[CLS]` in
  front, optionally with a per-position document index (for block-diagonal attention later).
  `masked_lm_examples` then runs keras-hub's `MaskedLMMaskGenerator` over the packed rows, so
  masking (15%, 80/10/10, special tokens never selected) is exactly what it was before packing.
- `pack_for_causal_lm`: documents joined by the end token, cut into blocks of
  `sequence_length + 1` and shifted into `(inputs, next tokens, weights)`.

Both are `tf.data` transformations over tokenizer output (a dataset of ragged batches or 1-D
token-id rows, as keras-hub's `WordPieceTokenizer` / `BytePairTokenizer` return), and run on any
Keras backend.
"""

from __future__ import annotations

import tensorflow as tf


def pack_for_masked_lm(
    token_ids,
    sequence_length: int,
    cls_token_id: int,
    sep_token_id: int,
    pad_token_id: int = 0,
    drop_remainder: bool = False,
    return_document_ids: bool = False,
) -> tf.data.Dataset:
    """Packs tokenized documents into full BERT rows: `[CLS] doc1 [SEP] doc2 [SEP] doc3…`.

    Documents are concatenated, each followed by `[SEP]`, and the stream is cut every
    `sequence_length - 1` tokens; each row gets `[CLS]` in front. A document may continue in the
    next row (BERT's pretraining data is cut the same way). Empty documents are skipped. Only the
    last row can hold padding, and only when `drop_remainder=False`.

    Args:
        token_ids: tokenizer output: a `tf.data.Dataset` yielding ragged batches `(batch, None)`
            or 1-D rows of token ids (e.g. `texts.batch(256).map(tokenizer)`), or a list of lists
            of ids.
        sequence_length: int. The length of every row, `[CLS]` included; >= 2.
        cls_token_id: int. Id of `[CLS]`, put at the front of every row.
        sep_token_id: int. Id of `[SEP]`, put after every document.
        pad_token_id: int. Id used to pad the last row.
        drop_remainder: bool. Drop the last, partial row instead of padding it.
        return_document_ids: bool. Add `"document_ids"`: for each position, the index of its
            document within the row (0, 1, …; `[CLS]` shares the first document's, padding is 0),
            so attention can later be limited to one document (Krell et al., 2021).

    Returns:
        A `tf.data.Dataset` of unbatched dicts of int32 tensors of shape `(sequence_length,)`:
        `"token_ids"`, `"padding_mask"` (1 on tokens), `"segment_ids"` (all 0) and, if asked,
        `"document_ids"`.

    Raises:
        ValueError: `token_ids` is empty, holds only empty documents, or (with
            `drop_remainder=True`) too few tokens for one row.

    Example:
    ```python
    import keras_hub
    import tensorflow as tf
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary)
    documents = tf.data.Dataset.from_tensor_slices(["the cat", "sat", "the cat sat"])
    rows = kp.data.pack_for_masked_lm(
        documents.batch(2).map(tokenizer), sequence_length=6, cls_token_id=2, sep_token_id=3
    )
    [row["token_ids"].tolist() for row in rows.as_numpy_iterator()]
    # [[2, 5, 6, 3, 7, 3], [2, 5, 6, 7, 3, 0]]
    ```
    """
    sequence_length = _check_length(sequence_length, 2)
    documents = _documents(token_ids)
    documents = documents.enumerate().map(
        lambda index, ids: (
            tf.concat([ids, [tf.cast(sep_token_id, tf.int32)]], 0),
            tf.fill([tf.size(ids) + 1], tf.cast(index, tf.int32)),
        )
    )
    # `rebatch` carries the rest of one document over into the next row and copies once
    # (`unbatch().batch()` would make every token a dataset element).
    rows = documents.rebatch(sequence_length - 1, drop_remainder=drop_remainder)

    def finish(ids, document_index):
        real = tf.size(ids) + 1
        padding = sequence_length - real
        token_row = tf.concat([[tf.cast(cls_token_id, tf.int32)], ids, tf.fill([padding], tf.cast(pad_token_id, tf.int32))], 0)
        mask = tf.concat([tf.ones([real], tf.int32), tf.zeros([padding], tf.int32)], 0)
        row = {
            "token_ids": tf.ensure_shape(token_row, [sequence_length]),
            "padding_mask": tf.ensure_shape(mask, [sequence_length]),
            "segment_ids": tf.zeros([sequence_length], tf.int32),
        }
        if return_document_ids:
            local = document_index - document_index[0]
            row["document_ids"] = tf.ensure_shape(
                tf.concat([[0], local, tf.zeros([padding], tf.int32)], 0), [sequence_length]
            )
        return row

    rows = rows.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    _check_not_empty(rows, drop_remainder, sequence_length - 1)
    return rows


def masked_lm_examples(rows: tf.data.Dataset, masker) -> tf.data.Dataset:
    """Masks packed rows: `(features, mask_ids, mask_weights)` as keras-hub's masked-LM task takes.

    The masking is keras-hub's own `MaskedLMMaskGenerator` (give it the special tokens, `[CLS]`,
    `[SEP]` and `[PAD]`, as `unselectable_token_ids`); packing only changes what fills the rows.
    Masks are drawn anew each time a row is seen, so every epoch masks differently.

    Args:
        rows: `tf.data.Dataset` from `pack_for_masked_lm`, batched or not.
        masker: `keras_hub.layers.MaskedLMMaskGenerator`.

    Returns:
        A `tf.data.Dataset` of `(features, mask_ids, mask_weights)`; `features` holds the masked
        `"token_ids"`, `"padding_mask"`, `"segment_ids"`, `"mask_positions"` (and
        `"document_ids"` when the rows have them).

    Example:
    ```python
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=8, mask_selection_rate=0.15, mask_selection_length=4,
        mask_token_id=4, unselectable_token_ids=[0, 2, 3])
    examples = kp.data.masked_lm_examples(rows.batch(32), masker)
    ```
    """
    if not isinstance(rows, tf.data.Dataset) or not isinstance(rows.element_spec, dict) or "token_ids" not in rows.element_spec:
        raise ValueError(
            "`rows` must be a tf.data.Dataset of dicts holding 'token_ids' (from pack_for_masked_lm), "
            f"received {type(rows).__name__}."
        )

    def mask(row):
        masked = masker(row["token_ids"])
        features = dict(row, token_ids=masked["token_ids"], mask_positions=masked["mask_positions"])
        return features, masked["mask_ids"], masked["mask_weights"]

    return rows.map(mask, num_parallel_calls=tf.data.AUTOTUNE)


def pack_for_causal_lm(
    token_ids,
    sequence_length: int,
    end_token_id: int,
    pad_token_id: int = 0,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """Packs tokenized documents into causal-LM blocks (Hugging Face's `group_texts`).

    Documents are concatenated, each followed by the end token, and cut into blocks of
    `sequence_length + 1` tokens; block `b` becomes the inputs `b[:-1]` and the next-token labels
    `b[1:]`, so every input position is trained. Empty documents are skipped.

    Args:
        token_ids: tokenizer output: a `tf.data.Dataset` yielding ragged batches or 1-D rows of
            token ids, or a list of lists of ids.
        sequence_length: int. Model input length; >= 1.
        end_token_id: int. Id put after every document (GPT-2's `<|endoftext|>`).
        pad_token_id: int. Id used to pad the last block when `drop_remainder=False`.
        drop_remainder: bool. Drop the last, partial block (the `group_texts` default) instead of
            padding it; its padding then gets sample weight 0.

    Returns:
        A `tf.data.Dataset` of unbatched `(features, labels, sample_weight)`: `features` holds
        int32 `"token_ids"` and `"padding_mask"` of shape `(sequence_length,)`, `labels` the next
        token ids, `sample_weight` float32 (1 where the label is a real token).

    Raises:
        ValueError: `token_ids` is empty, holds only empty documents, or (with
            `drop_remainder=True`) too few tokens for one block.

    Example:
    ```python
    vocab, merges = kp.data.train_bpe(texts, vocabulary_size=300)
    tokenizer = kp.data.bpe_tokenizer(vocab, merges)
    examples = kp.data.pack_for_causal_lm(
        tf.data.Dataset.from_tensor_slices(texts).batch(256).map(tokenizer),
        sequence_length=64, end_token_id=tokenizer.end_token_id)
    ```
    """
    sequence_length = _check_length(sequence_length, 1)
    block = sequence_length + 1
    documents = _documents(token_ids).map(lambda ids: tf.concat([ids, [tf.cast(end_token_id, tf.int32)]], 0))
    blocks = documents.rebatch(block, drop_remainder=drop_remainder)

    def shift(ids):
        real = tf.size(ids)
        padding = block - real
        ids = tf.concat([ids, tf.fill([padding], tf.cast(pad_token_id, tf.int32))], 0)
        mask = tf.concat([tf.ones([real], tf.int32), tf.zeros([padding], tf.int32)], 0)
        ids, mask = tf.ensure_shape(ids, [block]), tf.ensure_shape(mask, [block])
        features = {"token_ids": ids[:-1], "padding_mask": mask[:-1]}
        return features, ids[1:], tf.cast(mask[1:], tf.float32)

    examples = blocks.map(shift, num_parallel_calls=tf.data.AUTOTUNE)
    _check_not_empty(examples, drop_remainder, block)
    return examples


def _documents(token_ids) -> tf.data.Dataset:
    """Tokenizer output → a dataset of non-empty 1-D int32 documents."""
    if isinstance(token_ids, (list, tuple)):
        if len(token_ids) == 0:
            raise ValueError("`token_ids` must hold at least one document, received an empty list.")
        token_ids = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(token_ids, dtype=tf.int32))
    if not isinstance(token_ids, tf.data.Dataset):
        raise ValueError(
            "`token_ids` must be a tf.data.Dataset of tokenizer output (ragged batches or 1-D rows of "
            f"ids) or a list of lists of ids, received {type(token_ids).__name__}."
        )
    spec = token_ids.element_spec
    if not isinstance(spec, (tf.TensorSpec, tf.RaggedTensorSpec)) or not spec.dtype.is_integer or spec.shape.rank not in (1, 2):
        raise ValueError(
            "`token_ids` must yield integer token ids, a ragged batch (batch, None) or a 1-D row per "
            f"document, received elements of spec {spec}. Map a tokenizer over the texts first."
        )
    if int(token_ids.cardinality()) == 0:
        raise ValueError("`token_ids` is empty: the corpus must hold at least one document.")
    documents = token_ids.unbatch() if spec.shape.rank == 2 else token_ids
    documents = documents.map(_as_int32).filter(_is_not_empty)
    # One cheap look ahead (it stops at the first non-empty document) turns an all-empty corpus
    # into a clear error here instead of a dataset that silently yields nothing.
    if next(iter(documents.take(1)), None) is None:
        raise ValueError(
            "`token_ids`: every document is empty after tokenization (or the corpus has none); "
            "there is nothing to pack."
        )
    return documents


def _as_int32(ids):
    return tf.cast(ids, tf.int32)


def _is_not_empty(ids):
    return tf.size(ids) > 0


def _check_not_empty(rows: tf.data.Dataset, drop_remainder: bool, needed: int) -> None:
    if drop_remainder and next(iter(rows.take(1)), None) is None:
        raise ValueError(
            f"`token_ids` holds fewer than the {needed} tokens (separators included) of one full row; "
            "pass drop_remainder=False or a shorter sequence_length."
        )


def _check_length(sequence_length, minimum: int) -> int:
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < minimum:
        raise ValueError(
            f"`sequence_length` must be an int >= {minimum}, received sequence_length={sequence_length!r}."
        )
    return sequence_length
