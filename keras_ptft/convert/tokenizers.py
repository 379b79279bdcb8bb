"""Tokenizers from Hugging Face folders: `vocab.txt` or `tokenizer.json` → keras_ptft preprocessors.

Token ids equal the Hugging Face tokenizer's: the vocabulary keeps HF's id order and the
normalisation flags (lower-casing, accent stripping) are read from the folder, not guessed.
"""

from __future__ import annotations

import json
import os
import re

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.utils.tensor_utils import preprocessing_function

from keras_ptft.data.preprocessing import BertPreprocessor


def read_wordpiece_vocabulary(path: str) -> list[str]:
    """The WordPiece vocabulary of a HF folder, in id order, from `vocab.txt` or `tokenizer.json`."""
    vocab_file = os.path.join(path, "vocab.txt")
    if os.path.exists(vocab_file):
        with open(vocab_file, encoding="utf-8") as f:
            # HF reads one token per line and keeps the line number as the id; only the newline
            # is stripped (a token may be a lone space-like character).
            return [line.rstrip("\n").rstrip("\r") for line in f]
    tokenizer = _tokenizer_json(path)
    if tokenizer is None:
        raise FileNotFoundError(
            f"{path!r} has no tokenizer: expected vocab.txt or tokenizer.json (WordPiece)."
        )
    model = tokenizer.get("model") or {}
    if model.get("type") != "WordPiece":
        raise ValueError(
            f"{os.path.join(path, 'tokenizer.json')!r} holds a {model.get('type')!r} tokenizer model; "
            "a BERT folder needs a WordPiece one."
        )
    vocab = model.get("vocab") or {}
    ids = sorted(vocab.values())
    if ids != list(range(len(ids))):
        raise ValueError(
            f"The vocabulary in {os.path.join(path, 'tokenizer.json')!r} must use the ids 0..{len(ids) - 1} "
            "without gaps."
        )
    tokens = [""] * len(ids)
    for token, index in vocab.items():
        tokens[index] = token
    return tokens


def bert_normalization(path: str) -> dict:
    """`lowercase` and `strip_accents` of a HF BERT tokenizer, from tokenizer_config.json or
    tokenizer.json (HF's defaults: lower-case; strip accents when lower-casing)."""
    lowercase, strip_accents, split_cjk = True, None, True
    tokenizer = _tokenizer_json(path)
    if tokenizer is not None and isinstance(tokenizer.get("normalizer"), dict):
        normalizer = tokenizer["normalizer"]
        if normalizer.get("type") == "BertNormalizer":
            lowercase = normalizer.get("lowercase", lowercase)
            strip_accents = normalizer.get("strip_accents", strip_accents)
            split_cjk = normalizer.get("handle_chinese_chars", split_cjk)
    config_file = os.path.join(path, "tokenizer_config.json")
    if os.path.exists(config_file):
        with open(config_file, encoding="utf-8") as f:
            config = json.load(f)
        lowercase = config.get("do_lower_case", lowercase)
        strip_accents = config.get("strip_accents", strip_accents)
        split_cjk = config.get("tokenize_chinese_chars", split_cjk)
    if not split_cjk:
        raise ValueError(
            f"The tokenizer in {path!r} sets tokenize_chinese_chars=False; keras_ptft's BERT "
            "preprocessor always splits CJK characters, so its ids would differ."
        )
    # HF: strip_accents=None means "follow do_lower_case".
    strip_accents = lowercase if strip_accents is None else strip_accents
    return {"lowercase": bool(lowercase), "strip_accents": bool(strip_accents)}


def bert_preprocessor(path: str, sequence_length: int, vocabulary_size: int | None = None) -> BertPreprocessor:
    """A `BertPreprocessor` with the vocabulary and normalisation of a HF BERT folder.

    Args:
        path: str. The Hugging Face folder.
        sequence_length: int. The length rows are padded/truncated to.
        vocabulary_size: int or None. The model's `vocab_size`; the tokenizer must match it.
    """
    vocabulary = read_wordpiece_vocabulary(path)
    if vocabulary_size is not None and len(vocabulary) != vocabulary_size:
        raise ValueError(
            f"The tokenizer in {path!r} has {len(vocabulary)} tokens but config.json has "
            f"vocab_size={vocabulary_size}; they must match (is this the right tokenizer?)."
        )
    return HuggingFaceBertPreprocessor(vocabulary, sequence_length=sequence_length, **bert_normalization(path))


@keras.saving.register_keras_serializable(package="keras_ptft")
class HuggingFaceBertPreprocessor(BertPreprocessor):
    """A `BertPreprocessor` whose text normalisation is Hugging Face's `BertTokenizer`'s.

    keras-hub lower-cases with `case_fold_utf8`, which also applies NFKC: "…" becomes "...",
    "ＡＢＣ" becomes "abc", "²" becomes "2", so ids differ from the checkpoint's tokenizer. HF
    lower-cases with plain Unicode `lower()` and first drops control and format characters (e.g.
    the zero-width joiner inside emoji sequences). This layer does the same in TensorFlow, then
    hands the text to keras-hub's tokenizer with its own lower-casing off. Same arguments as
    `BertPreprocessor`.

    Example:
    ```python
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "…", "ａ"]
    HuggingFaceBertPreprocessor(vocabulary, sequence_length=5)(["… Ａ"])["token_ids"]
    # [[2, 5, 6, 3, 0]]
    ```
    """

    def __init__(self, vocabulary, sequence_length: int = 128, lowercase: bool = True,
                 strip_accents: bool | None = None, **kwargs):
        strip_accents = lowercase if strip_accents is None else strip_accents
        super().__init__(vocabulary, sequence_length=sequence_length, lowercase=False,
                         strip_accents=strip_accents, **kwargs)
        self.lowercase = bool(lowercase)

    def _pack(self, *segments):
        return super()._pack(*(self._normalize(segment) for segment in segments))

    def _normalize(self, text):
        # HF `_clean_text`: tab/newline/CR are whitespace; other control (Cc) and format (Cf)
        # characters and U+FFFD are removed.
        text = tf.strings.regex_replace(text, r"[\t\n\r]", " ")
        text = tf.strings.regex_replace(text, r"[\p{Cc}\p{Cf}\x{FFFD}]", "")
        if self.lowercase:
            text = tf.strings.lower(text, encoding="utf-8")
        return text


def _tokenizer_json(path: str) -> dict | None:
    tokenizer_file = os.path.join(path, "tokenizer.json")
    if not os.path.exists(tokenizer_file):
        return None
    with open(tokenizer_file, encoding="utf-8") as f:
        return json.load(f)


# === GPT-2's byte-level BPE ===

# GPT-2 pre-splits text with `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
# RE2 has no look-ahead; `\s+(?!\S)` means "a whitespace run gives its last character to the word
# after it". So a marker is put before that last character, the rest is split with the plain
# alternatives, and the markers are dropped. (keras-hub's own emulation merges exactly two spaces
# before a word into one token, e.g. "a  b" → "a", "  ", "b" where GPT-2 gives "a", " ", " b".)
_MARK = "\ue000"  # a private-use character: it never occurs in real text
_RUN_BEFORE_WORD = r"(\s+)(\s\S)"
_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}\x{E000}]+|\s+|\x{E000}"


def split_like_gpt2(inputs, unsplittable_tokens=()):
    """Splits a batch of strings into GPT-2's pre-tokens (a ragged `(batch, pieces)` tensor)."""
    import tensorflow_text as tf_text
    from keras_hub.src.tokenizers.byte_pair_tokenizer import (
        create_alts_for_unsplittable_tokens,
        remove_strings_from_inputs,
    )

    alts = create_alts_for_unsplittable_tokens(list(unsplittable_tokens or ()))
    inputs = tf.strings.regex_replace(inputs, _RUN_BEFORE_WORD, "\\1" + _MARK + "\\2")
    for token, alt in zip(unsplittable_tokens or (), alts):
        # A special token stands alone; its letter-only stand-in survives the split whole.
        inputs = tf_text.regex_split(inputs, re.escape(token), re.escape(token))
        inputs = tf.strings.regex_replace(inputs, re.escape(token), alt)
    pieces = tf_text.regex_split(inputs, _GPT2_SPLIT, _GPT2_SPLIT)
    for token, alt in zip(unsplittable_tokens or (), alts):
        pieces = tf.strings.regex_replace(pieces, re.escape(alt), token)
    while pieces.shape.rank > 2:
        pieces = pieces.merge_dims(1, 2)
    return remove_strings_from_inputs(pieces, _MARK)


@keras.saving.register_keras_serializable(package="keras_ptft")
class HuggingFaceGPT2Tokenizer(keras_hub.models.GPT2Tokenizer):
    """keras-hub's `GPT2Tokenizer` with Hugging Face's exact pre-split (see `split_like_gpt2`).

    Same arguments as `keras_hub.models.GPT2Tokenizer` (`vocabulary`, `merges`); ids equal
    `transformers.GPT2Tokenizer`'s on any text, runs of spaces included.

    Example:
    ```python
    tokenizer = HuggingFaceGPT2Tokenizer(vocabulary="vocab.json", merges="merges.txt")
    tokenizer("a  b")  # the ids of "a", " ", " b", as transformers gives
    ```
    """

    def __init__(self, vocabulary=None, merges=None, **kwargs):
        # The pure-Python path (HF `tokenizers`) and the TF path must agree; keep the TF one.
        kwargs.setdefault("_allow_python_workflow", False)
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

    # keras-hub 0.32 `BytePairTokenizer._tokenize_tf`, with only the pre-split replaced.
    @preprocessing_function
    def _tokenize_tf(self, inputs):
        self._maybe_initialized_tf()
        if self.add_prefix_space:
            inputs = tf.strings.join([" ", inputs])
        inputs = tf.convert_to_tensor(inputs)
        unbatched = inputs.shape.rank == 0
        if unbatched:
            inputs = tf.expand_dims(inputs, 0)
        if inputs.shape.rank > 1:
            raise ValueError(f"`tokenize()` takes a string or a list of strings, received {inputs}.")
        raw_tokens = split_like_gpt2(inputs, self.unsplittable_tokens)
        token_row_splits = raw_tokens.row_splits
        flat_tokens = raw_tokens.flat_values
        cache_lookup = self.cache.lookup(flat_tokens)
        cache_mask = cache_lookup == ""
        has_unseen_words = tf.math.reduce_any((cache_lookup == "") & (flat_tokens != ""))

        def process_unseen_tokens():
            self._bpe_merge_and_update_cache_tf(tf.boolean_mask(flat_tokens, cache_mask))
            return self.cache.lookup(flat_tokens)

        tokenized_words = tf.cond(has_unseen_words, process_unseen_tokens, lambda: cache_lookup)
        tokens = tf.strings.split(tokenized_words, sep=" ")
        if self.compute_dtype != tf.string:
            tokens = self.token_to_id_map.lookup(tokens)
        tokens = tf.RaggedTensor.from_row_splits(tokens.flat_values, tf.gather(tokens.row_splits, token_row_splits))
        if self.sequence_length:
            output_shape = tokens.shape.as_list()
            output_shape[-1] = self.sequence_length
            tokens = tokens.to_tensor(shape=output_shape)
        if unbatched:
            tokens = tf.squeeze(tokens, 0)
            tf.ensure_shape(tokens, shape=[self.sequence_length])
        return tokens
