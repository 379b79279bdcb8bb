"""WordPiece with character offsets, and word -> word-piece label alignment for token tagging.

`WordPieceOffsets` tokenizes as keras-hub's `BertTokenizer` does (split on whitespace,
punctuation and CJK characters; lower-casing and accent stripping; WordPiece), but splits the
*original* text, so every word and piece keeps its offsets into the string the user gave:
tf-text's `BertTokenizer.tokenize_with_offsets` reports offsets into the lower-cased,
accent-stripped text instead, which are wrong for accented words. Pieces of a word whose
normalised form has another byte length than the word (an accent stripped) all get the whole
word's span.

The TensorFlow part (`WordPieceOffsets.tokenize`) is graph-friendly for exports; the rest is
NumPy bookkeeping for `fit`/`predict` on in-memory lists.
"""

from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.word_piece_tokenizer import (
    PUNCTUATION_AND_CJK_REGEX,
    WHITESPACE_PUNCTUATION_AND_CJK_REGEX,
)

from keras_ptft.data.wordpiece import load_vocabulary

SCHEMES = ("IOB2", "IOBES")


class WordPieceOffsets:
    """BERT WordPiece tokenization that keeps each word's and piece's offsets.

    Args:
        vocabulary: list of str, or str / `os.PathLike`. The WordPiece vocabulary (with `[UNK]`).
        lowercase: bool. Lower-case (Unicode case folding) before WordPiece.
        strip_accents: bool or None. Remove accent marks; None follows `lowercase`.

    Example:
    ```python
    tokenizer = WordPieceOffsets(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "cafe", "open", "##s"])
    tokenizer.encode(["Café opens"])[0]["words"]  # [("Café", 0, 4), ("opens", 5, 10)]
    ```
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        lowercase: bool = True,
        strip_accents: bool | None = None,
    ):
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        self.vocabulary = [str(token) for token in vocabulary]
        if "[UNK]" not in self.vocabulary:
            raise ValueError("`vocabulary` must hold the unknown token '[UNK]'.")
        self.lowercase = bool(lowercase)
        self.strip_accents = self.lowercase if strip_accents is None else bool(strip_accents)
        self.token_to_id = {token: index for index, token in enumerate(self.vocabulary)}
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary, token_out_type=tf.int32, unknown_token="[UNK]", no_pretokenization=True
        )

    def tokenize(self, texts: tf.Tensor):
        """Splits and tokenizes a 1-D string tensor (TensorFlow ops only, graph-friendly).

        Returns:
            `(words, word_starts, word_ends, piece_ids, piece_starts, piece_ends)`: ragged
            tensors; `words` and the word offsets are `[batch, words]`, the pieces
            `[batch, words, pieces]`. Offsets are in bytes of the original UTF-8 text.
        """
        words, word_starts, word_ends = tf_text.regex_split_with_offsets(
            texts, WHITESPACE_PUNCTUATION_AND_CJK_REGEX, PUNCTUATION_AND_CJK_REGEX
        )
        piece_ids, piece_starts, piece_ends = self.tokenize_words(words.flat_values)
        shift = tf.expand_dims(tf.cast(word_starts.flat_values, piece_starts.dtype), -1)
        piece_starts, piece_ends = piece_starts + shift, piece_ends + shift
        regroup = lambda pieces: words.with_flat_values(pieces)  # noqa: E731
        return words, word_starts, word_ends, regroup(piece_ids), regroup(piece_starts), regroup(piece_ends)

    def tokenize_words(self, words: tf.Tensor):
        """WordPiece of a 1-D tensor of single words: ragged `[words, pieces]` ids, and each
        piece's byte offsets inside its (original, un-normalised) word."""
        normalised = words
        if self.strip_accents:
            normalised = tf.strings.regex_replace(tf_text.normalize_utf8(normalised, "NFD"), r"\p{Mn}", "")
        if self.lowercase:
            normalised = tf_text.case_fold_utf8(normalised)
        ids, starts, ends = self._wordpiece.tokenize_with_offsets(normalised)
        # Offsets into the normalised word are only offsets into the word when normalising kept
        # its length; otherwise every piece spans the whole word.
        length = tf.strings.length(words)
        same = tf.gather(tf.equal(tf.strings.length(normalised), length), ids.value_rowids())
        word_length = tf.gather(length, ids.value_rowids())
        starts = starts.with_flat_values(tf.where(same, starts.flat_values, tf.zeros_like(starts.flat_values)))
        ends = ends.with_flat_values(tf.where(same, ends.flat_values, tf.cast(word_length, ends.dtype)))
        return ids, starts, ends

    def encode(self, texts: Sequence[str]) -> list[dict]:
        """Per text: `"words"` as `(word, start, end)` character offsets and `"pieces"`, per word
        a list of `(piece_id, start, end)` (a word WordPiece cannot split is one `[UNK]`)."""
        outputs = self.tokenize(tf.constant(list(texts), dtype=tf.string, shape=(len(texts),)))
        word_starts, word_ends, ids, starts, ends = (nested_lists(part) for part in outputs[1:])
        unk = self.token_to_id["[UNK]"]
        encoded = []
        for index, text in enumerate(texts):
            to_char = byte_to_char_offsets(text).tolist()
            per_word = zip(ids[index], starts[index], ends[index], word_starts[index], word_ends[index])
            pieces = [
                [(i, to_char[s], to_char[e]) for i, s, e in zip(*word[:3])] or [(unk, to_char[word[3]], to_char[word[4]])]
                for word in per_word
            ]
            encoded.append({
                "words": [(text[to_char[s]:to_char[e]], to_char[s], to_char[e])
                          for s, e in zip(word_starts[index], word_ends[index])],
                "pieces": pieces,
            })
        return encoded

    def word_piece_ids(self, words: Sequence[Sequence[str]]) -> list[list[list[int]]]:
        """Piece ids of pre-split words: per sentence, per word, a list of ids (never empty).

        A word holding punctuation (`"U.S."`) is split further, as BERT would, and all its pieces
        belong to it.
        """
        flat = [word for sentence in words for word in sentence]
        if not flat:
            return [[] for _ in words]
        outputs = self.tokenize(tf.constant(flat, dtype=tf.string))
        ids = nested_lists(outputs[3].merge_dims(1, 2))
        unk = self.token_to_id["[UNK]"]
        result, position = [], 0
        for sentence in words:
            result.append([ids[position + k] or [unk] for k in range(len(sentence))])
            position += len(sentence)
        return result

    def get_config(self) -> dict:
        return {"vocabulary": self.vocabulary, "lowercase": self.lowercase, "strip_accents": self.strip_accents}


def nested_lists(ragged) -> list:
    """A ragged tensor as nested Python lists, from its flat values and row splits (tf's own
    `to_list` slices row by row, ~50x slower on a few thousand texts)."""
    values = ragged.flat_values.numpy().tolist()
    for splits in reversed(ragged.nested_row_splits):
        bounds = splits.numpy().tolist()
        values = [values[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    return values


def byte_to_char_offsets(text: str) -> np.ndarray:
    """Maps each UTF-8 byte offset of `text` (0 to its byte length) to a character offset.

    Example:
    ```python
    byte_to_char_offsets("é!")  # array([0, 1, 1, 2])  (é is two bytes)
    ```
    """
    lengths = np.fromiter((len(character.encode("utf-8")) for character in text), dtype=np.int64, count=len(text))
    mapping = np.repeat(np.arange(len(text), dtype=np.int64), lengths)
    # A byte inside a multi-byte character maps to the next character, so a span never cuts one.
    starts = np.concatenate([[0], np.cumsum(lengths)])
    inside = np.ones(len(mapping), dtype=bool)
    inside[starts[:-1]] = False
    mapping[inside] += 1
    return np.concatenate([mapping, [len(text)]])


# === Tag schemes ===


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"`scheme` must be one of {SCHEMES}, received scheme={scheme!r}.")
    return scheme


def check_label_names(label_names: Sequence[str], scheme: str) -> list[str]:
    """Checks that `label_names` are tags of `scheme` and hold `"O"`; returns them as a list."""
    if isinstance(label_names, str) or not isinstance(label_names, (list, tuple)) or not label_names:
        raise ValueError(f"`label_names` must be a non-empty list of tags, received {label_names!r:.100}.")
    prefixes = "BI" if scheme == "IOB2" else "BIES"
    for tag in label_names:
        if not isinstance(tag, str) or (tag != "O" and (len(tag) < 3 or tag[0] not in prefixes or tag[1] != "-")):
            raise ValueError(
                f"`label_names` must hold {scheme} tags ('O' or {'/'.join(prefixes)}-TYPE), received {tag!r}."
            )
    if "O" not in label_names:
        raise ValueError(f"`label_names` must include the outside tag 'O', received {list(label_names)}.")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"`label_names` holds a tag twice: {list(label_names)}.")
    return list(label_names)


def label_names_from_tags(tags: Sequence[Sequence[str]]) -> list[str]:
    """The sorted tag set of a corpus with `"O"` first, e.g. for `token_classifier(label_names=...)`.

    Example:
    ```python
    label_names_from_tags([["B-PER", "I-PER", "O"]])  # ["O", "B-PER", "I-PER"]
    ```
    """
    found = {tag for sentence in tags for tag in sentence} - {"O"}
    return ["O"] + sorted(found, key=lambda tag: (tag[2:], tag[0]))


def check_words_and_tags(words, tags, label_names: Sequence[str] | None = None, scheme: str = "IOB2",
                         strict: bool = False) -> None:
    """Validates `fit`'s `(words, tags)`: lists of word lists and tag lists of equal lengths, tags
    in `label_names`. With `strict`, a sequence breaking the scheme (`I-X` not after `B-X`/`I-X`)
    is an error; otherwise it is allowed and read as seqeval does (the `I-X` opens an entity).

    Raises:
        ValueError: naming the argument, the sentence index and (for tags) the word index.
    """
    for name, value in (("words", words), ("tags", tags)):
        if value is None and name == "tags":
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ValueError(f"`{name}` must be a list of lists of str (one list per sentence), "
                             f"received {type(value).__name__}.")
    if tags is not None and len(words) != len(tags):
        raise ValueError(f"`words` has {len(words)} sentences but `tags` has {len(tags)}.")
    known = set(label_names) if label_names is not None else None
    for index, sentence in enumerate(words):
        if isinstance(sentence, str) or not isinstance(sentence, (list, tuple)):
            raise ValueError(f"`words[{index}]` must be a list of words, received {type(sentence).__name__}"
                             + (" (a sentence string: split it, or call `predict` on raw text)." if
                                isinstance(sentence, str) else "."))
        for position, word in enumerate(sentence):
            if not isinstance(word, str) or not word.strip():
                raise ValueError(f"`words[{index}][{position}]` must be a non-blank str, received {word!r}.")
        if tags is None:
            continue
        sentence_tags = tags[index]
        if isinstance(sentence_tags, str) or len(sentence_tags) != len(sentence):
            raise ValueError(f"`tags[{index}]` must be a list of {len(sentence)} tags (one per word of "
                             f"`words[{index}]`), received {sentence_tags!r:.100}.")
        previous = "O"
        for position, tag in enumerate(sentence_tags):
            if known is not None and tag not in known:
                raise ValueError(f"`tags[{index}][{position}]`={tag!r} is not in `label_names` {sorted(known)}.")
            if strict and not _continues(previous, tag, scheme):
                raise ValueError(
                    f"`tags[{index}][{position}]`={tag!r} after {previous!r} breaks the {scheme} scheme "
                    "(pass strict=False to read it as seqeval does)."
                )
            previous = tag
        if strict and scheme == "IOBES" and previous[:1] in ("B", "I"):
            raise ValueError(f"`tags[{index}]` ends inside an entity ({previous!r}), which breaks IOBES.")


def _continues(previous: str, tag: str, scheme: str) -> bool:
    if tag[:1] not in ("I", "E"):
        return scheme == "IOB2" or previous[:1] not in ("B", "I")
    return previous[:1] in ("B", "I") and previous[2:] == tag[2:]


def continuation_tags(label_names: Sequence[str], scheme: str) -> np.ndarray:
    """For each tag id, the tag id its word's later pieces get with `label_all_pieces=True`: inside
    an entity the pieces after the first continue it (`B-X` -> `I-X`; in IOBES the middle pieces
    of `S-X`/`E-X` words are `I-X` too, and `_fix_iobes_ends` sets their first/last piece)."""
    index = {tag: position for position, tag in enumerate(label_names)}

    def lookup(tag, fallback):
        return index.get(tag, index[fallback])

    table = []
    for tag in label_names:
        kind, type_ = tag[:1], tag[2:]
        if kind == "B":
            table.append(lookup(f"I-{type_}", tag))
        elif kind in ("S", "E"):
            table.append(lookup(f"I-{type_}", tag))  # the first / last piece is fixed by `_fix_iobes_ends`
        else:
            table.append(index[tag])
    return np.asarray(table, dtype=np.int32)


def encode_tagged_words(
    pieces: Sequence[Sequence[Sequence[int]]],
    tag_ids: Sequence[Sequence[int]] | None,
    sequence_length: int,
    special_ids: dict,
    label_all_pieces: bool = False,
    label_names: Sequence[str] | None = None,
    scheme: str = "IOB2",
) -> dict:
    """Packs sentences of word pieces as `[CLS] pieces [SEP] [PAD]...` rows and aligns word tags.

    Args:
        pieces: per sentence, per word, its piece ids.
        tag_ids: per sentence, per word, its tag id; None for prediction.
        sequence_length: int. Row length, special tokens included.
        special_ids: dict with the ids of `"[CLS]"`, `"[SEP]"` and `"[PAD]"`.
        label_all_pieces: bool. Train every piece (later pieces continue the word's entity)
            instead of the first piece only.
        label_names, scheme: needed with `label_all_pieces` to build continuation tags.

    Returns:
        A dict of NumPy arrays: `"token_ids"`, `"segment_ids"`, `"padding_mask"` (int32,
        `(n, sequence_length)`), `"first_piece"` (int32 `(n, max_words)`: the row position of
        each word's first piece, -1 for a word cut by truncation or padding), and with tags
        `"labels"` (int32) and `"sample_weight"` (float32, 1 on trained pieces, 0 elsewhere);
        `"truncated_words"` counts the words that did not fit.
    """
    count = len(pieces)
    token_ids = np.full((count, sequence_length), special_ids["[PAD]"], dtype=np.int32)
    labels = np.zeros((count, sequence_length), dtype=np.int32)
    weights = np.zeros((count, sequence_length), dtype=np.float32)
    max_words = max([len(sentence) for sentence in pieces] + [1])
    first_piece = np.full((count, max_words), -1, dtype=np.int32)
    continuation = continuation_tags(label_names, scheme) if label_all_pieces and tag_ids is not None else None
    truncated = 0
    room = sequence_length - 1  # positions before the final [SEP]
    for row, sentence in enumerate(pieces):
        token_ids[row, 0] = special_ids["[CLS]"]
        position = 1
        for word_index, word_pieces in enumerate(sentence):
            if position + len(word_pieces) > room:
                truncated += len(sentence) - word_index
                break
            first_piece[row, word_index] = position
            token_ids[row, position:position + len(word_pieces)] = word_pieces
            if tag_ids is not None:
                tag = tag_ids[row][word_index]
                labels[row, position] = tag
                weights[row, position] = 1.0
                if continuation is not None and len(word_pieces) > 1:
                    rest = slice(position + 1, position + len(word_pieces))
                    labels[row, rest] = continuation[tag]
                    weights[row, rest] = 1.0
                    _fix_iobes_ends(labels, row, position, len(word_pieces), tag, label_names, scheme)
            position += len(word_pieces)
        token_ids[row, position] = special_ids["[SEP]"]
    padding_mask = (token_ids != special_ids["[PAD]"]).astype(np.int32)
    encoded = {
        "token_ids": token_ids,
        "segment_ids": np.zeros_like(token_ids),
        "padding_mask": padding_mask,
        "first_piece": first_piece,
        "truncated_words": truncated,
    }
    if tag_ids is not None:
        encoded.update(labels=labels, sample_weight=weights)
    return encoded


def _fix_iobes_ends(labels, row, position, length, tag, label_names, scheme) -> None:
    """IOBES pieces of one word: `S-X` -> `B-X I-X.. E-X`, `E-X` -> `I-X.. E-X`. The word's tag
    is read back from its first piece, so such words predict `B-X`/`I-X`: the same entities
    (seqeval's reading), another token accuracy."""
    if scheme != "IOBES":
        return
    name = label_names[tag]
    kind, type_ = name[:1], name[2:]
    index = {t: i for i, t in enumerate(label_names)}
    if kind not in ("S", "E"):
        return
    first = f"B-{type_}" if kind == "S" else f"I-{type_}"
    labels[row, position] = index.get(first, tag)
    labels[row, position + length - 1] = index.get(f"E-{type_}", tag)


def warn_truncated(count: int, sequence_length: int, what: str) -> None:
    """Says how many words did not fit, instead of dropping them silently."""
    if count:
        warnings.warn(
            f"{count} word(s) did not fit in sequence_length={sequence_length} and were {what}; "
            "raise `sequence_length` to keep them.",
            stacklevel=3,
        )
