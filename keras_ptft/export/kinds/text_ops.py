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
        length = self.sequence_length
        ids = self.tokenizer.tokenize(texts)
        lengths = tf.cast(tf.minimum(ids.row_lengths(), length - 2), tf.int32)
        body = ids.to_tensor(default_value=self.pad_id, shape=[None, length - 2])
        rows = tf.shape(body)[0]
        token_ids = tf.concat(
            [tf.fill([rows, 1], self.cls_id), body, tf.fill([rows, 1], self.pad_id)], axis=1
        )
        positions = tf.range(length, dtype=tf.int32)[None, :]
        token_ids = tf.where(positions == lengths[:, None] + 1, self.sep_id, token_ids)
        padding_mask = tf.cast(positions <= lengths[:, None] + 1, tf.int32)
        return {
            "token_ids": token_ids,
            "segment_ids": tf.zeros_like(token_ids),
            "padding_mask": padding_mask,
        }


def check_fast_tokenizer_compatible(preprocessor) -> None:
    """Raises ValueError when FastBert cannot reproduce the preprocessor's normalization."""
    if preprocessor.lowercase != preprocessor.strip_accents:
        raise ValueError(
            "The string-input TFLite export (format 'tflite_text') needs a preprocessor with "
            "`lowercase` equal to `strip_accents` (FastBertTokenizer does both or neither); "
            f"received lowercase={preprocessor.lowercase}, strip_accents={preprocessor.strip_accents}."
        )
