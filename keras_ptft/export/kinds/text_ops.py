"""BERT tokenization from tensorflow-text ops that TFLite can run (`FastBertTokenizer`).

keras-hub's `BertTokenizer` splits words with regular expressions (`regex_split`), which TFLite
cannot run. `FastBertTokenizer` does the normalization, word splitting and WordPiece in one
TFLite custom op. On English, accented Latin and Chinese text it produces the same ids as
keras-hub's tokenizer (tests/export/test_text_ops.py proves it on such a set). It differs on
rare characters, because keras-hub applies NFKC case folding *after* splitting words while
FastBert lower-cases and strips accents with NFD only and splits on Unicode (not just ASCII)
white space: non-ASCII spaces (no-break space, em space ...), invisible format characters
(zero-width space, soft hyphen ...), and compatibility characters (ligatures, spacing
diacritics, "…"). `KNOWN_DIFFERENCES` lists examples; the manifest records the caveat.
"""

from __future__ import annotations

import tensorflow as tf

# Examples of characters tokenized differently by FastBert and keras-hub (see module docstring).
KNOWN_DIFFERENCES = ("\u00a0", "\u2003", "\u200b", "\u00ad", "\u2026", "\u00b4")


class FastBertPacker(tf.Module):
    """Raw strings → `token_ids`, `segment_ids`, `padding_mask` of a single-segment BERT input.

    The packing (`[CLS] tokens [SEP]`, truncated and padded to `sequence_length`) is written with
    dense ops only: slicing a ragged tensor lowers to `RaggedRange`, which TFLite cannot run.

    Args:
        vocabulary: list of str. The WordPiece vocabulary, in id order.
        sequence_length: int. Length of every output row, special tokens included.
        lowercase: bool. Lower-case and strip accents (FastBert does both or neither).

    Example:
    ```python
    packer = FastBertPacker(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hi"], 6, True)
    packer(tf.constant(["Hi hi"]))["token_ids"]   # [[2, 5, 5, 3, 0, 0]]
    ```
    """

    def __init__(self, vocabulary: list[str], sequence_length: int, lowercase: bool):
        super().__init__(name="fast_bert_packer")
        import tensorflow_text as tf_text

        vocabulary = list(vocabulary)
        self.sequence_length = int(sequence_length)
        self.pad_id = vocabulary.index("[PAD]")
        self.cls_id = vocabulary.index("[CLS]")
        self.sep_id = vocabulary.index("[SEP]")
        self.tokenizer = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            suffix_indicator="##",
            unknown_token="[UNK]",
            # keras-hub maps words longer than 100 bytes to [UNK]; so does FastWordpiece here.
            max_bytes_per_word=100,
            token_out_type=tf.int32,
            lower_case_nfd_strip_accents=bool(lowercase),
        )

    def __call__(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = self.tokenizer.tokenize(texts)
        lengths = tf.cast(tf.minimum(ids.row_lengths(), self.sequence_length - 2), tf.int32)
        return pack_single_segment(ids, lengths, self.sequence_length, self.cls_id, self.sep_id, self.pad_id)


def pack_single_segment(ids, lengths, sequence_length: int, cls_id: int, sep_id: int, pad_id: int) -> dict:
    """`[CLS] ids[:length] [SEP] [PAD]...` rows of `sequence_length` (dense ops only, TFLite-safe).

    Args:
        ids: int ragged tensor `(batch, pieces)`.
        lengths: int32 tensor `(batch,)`: the pieces kept per row, at most `sequence_length - 2`.
    """
    body = ids.to_tensor(default_value=pad_id, shape=[None, sequence_length - 2])
    rows = tf.shape(body)[0]
    token_ids = tf.concat([tf.fill([rows, 1], cls_id), tf.cast(body, tf.int32), tf.fill([rows, 1], pad_id)], axis=1)
    positions = tf.range(sequence_length, dtype=tf.int32)[None, :]
    inside = positions <= lengths[:, None] + 1
    token_ids = tf.where(inside, token_ids, pad_id)
    token_ids = tf.where(positions == lengths[:, None] + 1, sep_id, token_ids)
    return {"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids), "padding_mask": tf.cast(inside, tf.int32)}


def word_pieces(tokenizer, texts: tf.Tensor):
    """`WordPieceOffsets.tokenize(texts)` with a word WordPiece leaves empty given one `[UNK]`
    spanning the word, as `WordPieceOffsets.encode` does (graph-friendly).

    Returns:
        `(word_starts, word_ends, piece_ids, piece_starts, piece_ends)`: ragged `[batch, words]`
        byte offsets and ragged `[batch, words, pieces]` pieces.
    """
    _, word_starts, word_ends, ids, starts, ends = tokenizer.tokenize(texts)
    unk = tokenizer.token_to_id["[UNK]"]
    lengths = ids.values.row_lengths()
    # Append one [UNK] to every word and keep it only where the word had no piece.
    keep = tf.ragged.range(lengths + 1) < tf.maximum(lengths, 1)[:, None]

    def filled(inner, value):
        extra = tf.RaggedTensor.from_row_lengths(tf.cast(value, inner.dtype), tf.ones_like(lengths))
        return ids.with_values(tf.ragged.boolean_mask(tf.concat([inner, extra], axis=1), keep))

    flat_starts, flat_ends = word_starts.flat_values, word_ends.flat_values
    return (word_starts, word_ends, filled(ids.values, tf.fill(tf.shape(lengths), unk)),
            filled(starts.values, flat_starts), filled(ends.values, flat_ends))


def char_offsets(texts: tf.Tensor, byte_offsets: tf.Tensor) -> tf.Tensor:
    """UTF-8 byte offsets `(batch, k)` into `texts` as character offsets (int32); negative
    offsets (padding) stay as they are. A byte inside a character maps to the next character,
    as `keras_ptft.data.token_alignment.byte_to_char_offsets` does."""
    _, char_starts = tf.strings.unicode_decode_with_offsets(texts, "UTF-8")
    sorted_starts = char_starts.to_tensor(default_value=tf.int64.max)
    offsets = tf.cast(byte_offsets, tf.int64)
    counts = tf.searchsorted(sorted_starts, offsets, side="left", out_type=tf.int32)
    return tf.where(offsets < 0, tf.cast(byte_offsets, tf.int32), counts)


def check_fast_tokenizer_compatible(preprocessor) -> None:
    """Raises ValueError when FastBert cannot reproduce the preprocessor's normalization."""
    if preprocessor.lowercase != preprocessor.strip_accents:
        raise ValueError(
            "The string-input TFLite export (format 'tflite_text') needs a preprocessor with "
            "`lowercase` equal to `strip_accents` (FastBertTokenizer does both or neither); "
            f"received lowercase={preprocessor.lowercase}, strip_accents={preprocessor.strip_accents}."
        )
