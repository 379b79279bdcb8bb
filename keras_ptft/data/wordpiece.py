"""WordPiece vocabularies: training one on a corpus (with keras-hub's trainer), saving, loading."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf
from keras_hub.tokenizers import compute_word_piece_vocabulary

from keras_ptft.data.io import check_readable, iter_lines, text_file_paths

# BERT's special tokens. `train_wordpiece` puts them first, so "[PAD]" is id 0 and padding with
# zeros is padding with "[PAD]".
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# Texts are pre-tokenized in batches of this many: one TF op call per batch, not per text.
_BATCH = 1024


def train_wordpiece(
    texts_or_files,
    vocabulary_size: int,
    lowercase: bool = True,
    strip_accents: bool | None = None,
    reserved_tokens: Sequence[str] = SPECIAL_TOKENS,
    vocabulary_file: str | os.PathLike | None = None,
) -> list[str]:
    """Trains a WordPiece vocabulary on a corpus.

    The text is split exactly as keras-hub's `WordPieceTokenizer` (and so `BertPreprocessor`)
    splits it later: on whitespace and punctuation, with every CJK ideograph a word of its own, so
    each Chinese character lands in the vocabulary as a token. Then keras-hub's
    `compute_word_piece_vocabulary` (TensorFlow Text's learner) picks the subwords. By default the
    text is lower-cased and its accents stripped, BERT's "uncased" convention: "Café" → "cafe".

    Only the 1,000 most frequent characters are kept (the learner's limit); rarer characters
    become `[UNK]` when tokenizing.

    Args:
        texts_or_files: the corpus, one of: a list (or tuple, or array) of strings, one document
            each; a file path (str or `os.PathLike`) of a text file with one document per line,
            plain or gzip-compressed (`.gz`); a list of such paths (`os.PathLike` items, or str
            items that all name existing files); or a `tf.data.Dataset` of strings (scalars or
            batches). A list of strings that all look like paths (a separator and no spaces, or
            a `.txt`-like extension) while some do not exist is refused, naming them: it is a
            mistake, not a corpus.
        vocabulary_size: int. The largest vocabulary to return, reserved tokens included. A small
            corpus may give fewer tokens: subwords must occur about 10 times to be kept.
        lowercase: bool. Lower-case the text (Unicode case folding) before learning.
        strip_accents: bool or None. Remove accent marks ("é" → "e"). None follows `lowercase`.
        reserved_tokens: list of str. Tokens placed first, in this order (so the default puts
            `"[PAD]"` at id 0, `"[UNK]"` at 1, `"[CLS]"` at 2, `"[SEP]"` at 3, `"[MASK]"` at 4).
        vocabulary_file: str, `os.PathLike` or None. Also write the vocabulary to this file, one
            token per line (see `save_vocabulary`).

    Returns:
        The vocabulary, a list of tokens; a token's id is its index. Suffix pieces start with "##".

    Example:
    ```python
    import keras_ptft as kp

    corpus = ["the cat sat on the mat", "the dog sat on the log"] * 20
    vocabulary = kp.data.train_wordpiece(corpus, vocabulary_size=50)
    vocabulary[:5]  # ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    ```
    """
    reserved_tokens = _check_reserved_tokens(reserved_tokens)
    if (
        isinstance(vocabulary_size, bool)
        or not isinstance(vocabulary_size, (int, np.integer))
        or vocabulary_size <= len(reserved_tokens)
    ):
        raise ValueError(
            f"`vocabulary_size` must be an int larger than the number of reserved tokens "
            f"({len(reserved_tokens)}: {list(reserved_tokens)}), received "
            f"vocabulary_size={vocabulary_size!r}."
        )
    if strip_accents is None:
        strip_accents = lowercase
    dataset = _as_dataset(texts_or_files)
    try:
        vocabulary = compute_word_piece_vocabulary(
            dataset,
            int(vocabulary_size),
            lowercase=bool(lowercase),
            strip_accents=bool(strip_accents),
            split=True,
            # Must match the tokenizer's split, or CJK runs would be learned as whole words that
            # the tokenizer (which splits them per character) never looks up.
            split_on_cjk=True,
            reserved_tokens=list(reserved_tokens),
        )
    except StopIteration:  # the learner's word count found no word at all
        raise ValueError(
            "`texts_or_files` holds no text to learn from: it is empty or blank."
        ) from None
    if vocabulary_file is not None:
        save_vocabulary(vocabulary, vocabulary_file)
    return vocabulary


def save_vocabulary(vocabulary: Sequence[str], path: str | os.PathLike) -> None:
    """Writes a vocabulary one token per line, in id order (the format of BERT's `vocab.txt`).

    Args:
        vocabulary: list of str. The tokens; none may contain a line break.
        path: str or `os.PathLike`. The file to write (UTF-8); it is replaced if it exists.

    Example:
    ```python
    save_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the"], "vocab.txt")
    ```
    """
    for index, token in enumerate(vocabulary):
        if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
            raise ValueError(
                "`vocabulary` must hold non-empty strings without line breaks, received "
                f"{token!r} at index {index}."
            )
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(f"{token}\n" for token in vocabulary))


def load_vocabulary(path: str | os.PathLike) -> list[str]:
    """Reads a vocabulary file, one token per line (as written by `save_vocabulary`, or a BERT
    `vocab.txt`).

    Args:
        path: str or `os.PathLike`. The vocabulary file.

    Returns:
        The list of tokens; a token's id is its line number, from 0.

    Example:
    ```python
    vocabulary = load_vocabulary("vocab.txt")
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path`: there is no vocabulary file at {path!r}.")
    vocabulary = [line.rstrip("\r\n") for line in iter_lines(path, "path", newline="")]
    if not vocabulary:
        raise ValueError(f"`path`: the vocabulary file {path!r} is empty.")
    return vocabulary


def _check_reserved_tokens(reserved_tokens) -> tuple[str, ...]:
    if isinstance(reserved_tokens, str) or not isinstance(reserved_tokens, Sequence):
        raise ValueError(
            "`reserved_tokens` must be a list of strings, received "
            f"reserved_tokens={reserved_tokens!r}."
        )
    tokens = tuple(reserved_tokens)
    if not all(isinstance(t, str) and t for t in tokens) or len(set(tokens)) != len(tokens):
        raise ValueError(
            "`reserved_tokens` must hold distinct non-empty strings, received "
            f"reserved_tokens={reserved_tokens!r}."
        )
    return tokens


def _as_dataset(texts_or_files) -> tf.data.Dataset:
    """A `tf.data.Dataset` of 1-D string batches, from any accepted form of the corpus."""
    if isinstance(texts_or_files, tf.data.Dataset):
        spec = texts_or_files.element_spec
        if not isinstance(spec, tf.TensorSpec) or spec.dtype != tf.string:
            raise ValueError(
                "`texts_or_files`, a tf.data.Dataset, must yield string tensors, received elements "
                f"of spec {spec}."
            )
        return texts_or_files.batch(_BATCH) if spec.shape.rank == 0 else texts_or_files
    if isinstance(texts_or_files, (str, os.PathLike)):
        return _lines_of([texts_or_files])
    if isinstance(texts_or_files, np.ndarray):
        texts_or_files = texts_or_files.reshape(-1).tolist()
    if not isinstance(texts_or_files, (list, tuple)):
        raise ValueError(
            "`texts_or_files` must be a list of strings, a file path, a list of file paths or a "
            f"tf.data.Dataset of strings, received a {type(texts_or_files).__name__}."
        )
    items = list(texts_or_files)
    paths = text_file_paths(items, "texts_or_files")
    if paths is not None:
        return _lines_of(paths)
    for index, item in enumerate(items):
        if not isinstance(item, (str, bytes)):
            raise ValueError(
                "`texts_or_files` must hold strings (documents) or file paths, received "
                f"{item!r} of type {type(item).__name__} at index {index}."
            )
    if not any(item.strip() for item in items):
        raise ValueError(
            f"`texts_or_files` holds no text to learn from: received {len(items)} empty or blank "
            "strings."
        )
    return tf.data.Dataset.from_tensor_slices(tf.constant(items, dtype=tf.string)).batch(_BATCH)


def _lines_of(paths) -> tf.data.Dataset:
    """The lines of text files (gzip when the name ends in `.gz`), in batches."""
    paths = [os.fspath(path) for path in paths]
    # TextLineDataset would fail on a corrupt .gz deep inside the learner, without the file's
    # name: one pass through the data/ reader refuses it first, naming it.
    check_readable(paths, "texts_or_files")
    datasets = []
    for path in paths:
        compression = "GZIP" if path.endswith(".gz") else ""
        datasets.append(tf.data.TextLineDataset(path, compression_type=compression))
    dataset = datasets[0]
    for more in datasets[1:]:
        dataset = dataset.concatenate(more)
    return dataset.batch(_BATCH)
