"""Training byte-level BPE and SentencePiece vocabularies for generative models.

keras-hub can *load* a byte-pair vocabulary (`BytePairTokenizer`) but not train one (keras-hub
issue #426), so `train_bpe` learns the merges here. It pre-splits text with keras-hub's own
splitter, so the merges learned are exactly the ones the tokenizer will later apply.
"""

from __future__ import annotations

import collections
import os
from typing import Iterable, Sequence

import keras
import keras_hub
import tensorflow as tf
from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode, split_strings_for_bpe

from keras_ptft.data.io import read_lines, text_file_paths

END_OF_TEXT = "<|endoftext|>"
PADDING = "<|pad|>"


@keras.saving.register_keras_serializable(package="keras_ptft")
class BPETokenizer(keras_hub.tokenizers.BytePairTokenizer):
    """keras-hub's byte-level BPE tokenizer with `<|endoftext|>` as start/end and `<|pad|>` as padding.

    keras-hub's `GPT2Tokenizer` pads with id 0 whatever token that is; generation stops on the end
    token and treats padding equal to it as "already stopped", so the two must differ. This class
    names both explicitly; `train_bpe` puts `<|pad|>` at id 0 and `<|endoftext|>` at id 1.

    Args:
        vocabulary: dict token → id, or a `vocabulary.json` path. Must contain both special tokens.
        merges: list of `"a b"` rules, or a `merges.txt` path.
        sequence_length: int or None. Pad/truncate outputs to this length.

    Example:
    ```python
    vocab, merges = kp.data.train_bpe(texts, vocabulary_size=1000)
    tokenizer = kp.data.BPETokenizer(vocab, merges)
    tokenizer.detokenize(tokenizer("héllo 世界 🙂"))  # 'héllo 世界 🙂'
    ```
    """

    def __init__(self, vocabulary=None, merges=None, **kwargs):
        self._add_special_token(END_OF_TEXT, "end_token")
        self._add_special_token(END_OF_TEXT, "start_token")
        self._add_special_token(PADDING, "pad_token")
        super().__init__(vocabulary=vocabulary, merges=merges, **kwargs)

    def set_vocabulary_and_merges(self, vocabulary, merges):
        super().set_vocabulary_and_merges(vocabulary, merges)
        if vocabulary is not None:
            for token in (END_OF_TEXT, PADDING):
                if token not in self.vocabulary:
                    raise ValueError(
                        f"`vocabulary` must contain the special token {token!r} (train_bpe adds it)."
                    )


def train_bpe(
    texts_or_files: Sequence[str] | str | os.PathLike,
    vocabulary_size: int,
    special_tokens: Sequence[str] = (PADDING, END_OF_TEXT),
    min_frequency: int = 2,
    verbose: bool = True,
) -> tuple[dict[str, int], list[str]]:
    """Learns a byte-level BPE vocabulary and merge list, GPT-2 style.

    The vocabulary starts with the special tokens (ids 0, 1, …), then all 256 bytes (so any UTF-8
    text, Chinese and emoji included, round-trips losslessly), then one token per learned merge,
    most frequent first.

    Args:
        texts_or_files: list of str, or a path / list of paths of UTF-8 text files (one document
            per line). The training corpus.
        vocabulary_size: int. Total number of tokens wanted, special tokens and bytes included;
            must exceed `256 + len(special_tokens)`.
        special_tokens: list of str. Tokens kept whole, given the first ids. `BPETokenizer` needs
            the default two: `<|pad|>` (padding) and `<|endoftext|>` (start and end of text).
        min_frequency: int. A pair seen fewer times than this is never merged.
        verbose: bool. Print progress.

    Returns:
        `(vocabulary, merges)`: a dict token → id and a list of `"a b"` merge rules, the two
        arguments of keras-hub's `BytePairTokenizer` / `GPT2Tokenizer`.

    Raises:
        ValueError: if `vocabulary_size` is too small, or the corpus has too few distinct pairs
            to learn `vocabulary_size` tokens.

    Example:
    ```python
    import keras_ptft as kp

    vocab, merges = kp.data.train_bpe(["the cat sat on the mat"] * 10, vocabulary_size=270)
    tokenizer = kp.data.bpe_tokenizer(vocab, merges)
    tokenizer.detokenize(tokenizer("the cat 🐱"))  # 'the cat 🐱'
    ```
    """
    special_tokens = list(special_tokens)
    base = len(special_tokens) + 256
    if not isinstance(vocabulary_size, int) or vocabulary_size <= base:
        raise ValueError(
            f"`vocabulary_size` must be an integer larger than 256 bytes + {len(special_tokens)} "
            f"special tokens = {base}, received vocabulary_size={vocabulary_size!r}."
        )
    if not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"`min_frequency` must be a positive integer, received {min_frequency!r}.")
    texts = _read_texts(texts_or_files)

    word_counts = _count_words(texts, special_tokens)
    byte_chars = bytes_to_unicode()[1]  # keras-hub's byte -> printable-char table
    vocabulary = {token: i for i, token in enumerate(special_tokens)}
    for char in byte_chars:
        vocabulary.setdefault(char, len(vocabulary))

    words = [list(word) for word in word_counts]
    counts = list(word_counts.values())
    pair_counts: collections.Counter = collections.Counter()
    where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
    for index, (symbols, count) in enumerate(zip(words, counts)):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += count
            where[pair].add(index)

    merges: list[str] = []
    wanted = vocabulary_size - len(vocabulary)
    progress = keras.utils.Progbar(wanted) if verbose else None
    while len(merges) < wanted:
        if not pair_counts:
            break
        # Ties are broken by the pair itself so the result does not depend on dict order.
        pair, frequency = max(pair_counts.items(), key=lambda item: (item[1], item[0]))
        if frequency < min_frequency:
            break
        merged = pair[0] + pair[1]
        merges.append(f"{pair[0]} {pair[1]}")
        vocabulary.setdefault(merged, len(vocabulary))
        for index in list(where.pop(pair, ())):
            symbols, count = words[index], counts[index]
            for old in zip(symbols, symbols[1:]):
                pair_counts[old] -= count
                if pair_counts[old] <= 0:
                    del pair_counts[old]
            symbols = _merge(symbols, pair, merged)
            words[index] = symbols
            for new in zip(symbols, symbols[1:]):
                pair_counts[new] += count
                where[new].add(index)
        pair_counts.pop(pair, None)
        if progress is not None:
            progress.update(len(merges))
    if len(vocabulary) < vocabulary_size:
        raise ValueError(
            f"The corpus is too small for vocabulary_size={vocabulary_size}: only "
            f"{len(vocabulary)} tokens could be learned (no pair left that occurs at least "
            f"min_frequency={min_frequency} times). Use more text or a smaller `vocabulary_size`."
        )
    return vocabulary, merges


def bpe_tokenizer(
    vocabulary: dict[str, int] | str, merges: Sequence[str] | str, sequence_length: int | None = None
) -> BPETokenizer:
    """Shorthand for `BPETokenizer(vocabulary, merges, sequence_length=...)`.

    Example:
    ```python
    tokenizer = bpe_tokenizer(*train_bpe(texts, vocabulary_size=1000))
    ```
    """
    return BPETokenizer(vocabulary=vocabulary, merges=merges, sequence_length=sequence_length)


def train_sentencepiece(
    texts_or_files: Sequence[str] | str | os.PathLike,
    vocabulary_size: int,
    model_type: str = "unigram",
    lowercase: bool = False,
) -> bytes:
    """Trains a SentencePiece model with keras-hub's `compute_sentence_piece_proto`.

    Args:
        texts_or_files: list of str, or a path / list of paths of UTF-8 text files.
        vocabulary_size: int. The number of pieces.
        model_type: str. `"unigram"` or `"bpe"`.
        lowercase: bool. Lower-case text before training.

    Returns:
        The serialized model proto, which `keras_hub.tokenizers.SentencePieceTokenizer(proto=...)`
        loads.

    Example:
    ```python
    proto = train_sentencepiece(texts, vocabulary_size=500)
    tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(proto=proto)
    ```
    """
    if model_type not in ("unigram", "bpe"):
        raise ValueError(f"`model_type` must be 'unigram' or 'bpe', received model_type={model_type!r}.")
    if not isinstance(vocabulary_size, int) or vocabulary_size < 4:
        raise ValueError(f"`vocabulary_size` must be an integer >= 4, received {vocabulary_size!r}.")
    texts = _read_texts(texts_or_files)
    try:
        return keras_hub.tokenizers.compute_sentence_piece_proto(
            tf.data.Dataset.from_tensor_slices(texts), vocabulary_size, model_type=model_type, lowercase=lowercase
        )
    except RuntimeError as error:  # sentencepiece reports "Vocabulary size too high" this way
        raise ValueError(
            f"SentencePiece could not learn vocabulary_size={vocabulary_size} pieces from this corpus "
            f"(too small?): {error}"
        ) from None


def _read_texts(texts_or_files) -> list[str]:
    if isinstance(texts_or_files, (str, os.PathLike)) and (
        isinstance(texts_or_files, os.PathLike) or text_file_paths([texts_or_files], "texts_or_files")
    ):
        texts_or_files = [texts_or_files]
    if isinstance(texts_or_files, (str, bytes)) or not isinstance(texts_or_files, Iterable):
        raise ValueError(
            "`texts_or_files` must be a list of strings or of existing file paths, received "
            f"{texts_or_files!r}."
        )
    texts = list(texts_or_files)
    if not texts:
        raise ValueError("`texts_or_files` is empty; a corpus is needed to train a vocabulary.")
    paths = text_file_paths(texts, "texts_or_files")
    if paths is not None:
        texts = [line for path in paths for line in read_lines(path, "texts_or_files")]
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"`texts_or_files` must contain strings, received {type(text).__name__}.")
    return texts


def _count_words(texts: list[str], special_tokens: list[str]) -> collections.Counter:
    """Pre-splits with keras-hub's splitter and counts words as byte-character strings."""
    byte_encoder = {raw[0]: char for raw, char in zip(*bytes_to_unicode())}
    counter: collections.Counter = collections.Counter()
    special = set(special_tokens)
    for start in range(0, len(texts), 1024):
        batch = tf.constant(texts[start : start + 1024])
        for row in split_strings_for_bpe(batch, special_tokens or None).to_list():
            for word in row:
                if word.decode("utf-8", "ignore") in special:
                    continue
                counter["".join(byte_encoder[b] for b in word)] += 1
    return counter


def _merge(symbols: list[str], pair: tuple[str, str], merged: str) -> list[str]:
    out, i = [], 0
    while i < len(symbols):
        if i + 1 < len(symbols) and symbols[i] == pair[0] and symbols[i + 1] == pair[1]:
            out.append(merged)
            i += 2
        else:
            out.append(symbols[i])
            i += 1
    return out
