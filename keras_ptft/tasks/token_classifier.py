"""Token classification (named-entity recognition): one tag per word, entities with offsets."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np

from keras_ptft.data.token_alignment import (
    WordPieceOffsets,
    check_label_names,
    check_scheme,
    check_words_and_tags,
    encode_tagged_words,
    warn_truncated,
)
from keras_ptft.tasks.base import EncodedBucketing, Task
from keras_ptft.tasks.metrics import entity_scores
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.schedules import WarmupDecay
from keras_ptft.validation import check_texts

MODEL_INPUTS = ("token_ids", "segment_ids", "padding_mask")


def word_tag_ids(logits, first_piece):
    """Per word, the tag id with the highest logit at the word's first piece (graph-friendly).

    Args:
        logits: float tensor `(batch, sequence_length, num_labels)`, the model's output.
        first_piece: int tensor `(batch, max_words)`: each word's row position, -1 for none.

    Returns:
        int32 tensor `(batch, max_words)`: tag ids, -1 where `first_piece` is -1.
    """
    first_piece = keras.ops.cast(first_piece, "int32")
    safe = keras.ops.maximum(first_piece, 0)
    gathered = keras.ops.take_along_axis(logits, keras.ops.expand_dims(safe, -1), axis=1)
    ids = keras.ops.cast(keras.ops.argmax(gathered, axis=-1), "int32")
    return keras.ops.where(first_piece >= 0, ids, -1)


PREFIX_CODES = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}


def tag_tables(label_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per tag id its prefix code (`PREFIX_CODES`) and entity-type id (0 for `"O"`, else 1 + the
    index of the type in sorted order): the constants `chunk_bounds` needs."""
    types = sorted({tag[2:] for tag in label_names if tag != "O"})
    prefixes = np.array([PREFIX_CODES[tag[0]] for tag in label_names], dtype="int32")
    type_ids = np.array([0 if tag == "O" else 1 + types.index(tag[2:]) for tag in label_names], dtype="int32")
    return prefixes, type_ids


def chunk_bounds(tag_ids, prefixes, type_ids):
    """Where entities start and end in rows of word tag ids, by seqeval's rules (graph-friendly).

    The k-th start of a row pairs with its k-th end (an entity ends before the next one starts),
    so an exported graph can cut entities out with two `where`s; `get_entities` is the reference.

    Args:
        tag_ids: int tensor `(batch, words)`, -1 for no word (read as `"O"`).
        prefixes, type_ids: int arrays from `tag_tables(label_names)`.

    Returns:
        `(starts, ends)`: bool tensors `(batch, words)`; `starts[i]` when an entity starts at word
        `i`, `ends[i]` when one ends at word `i` (inclusive).
    """
    ops = keras.ops
    tag_ids = ops.cast(tag_ids, "int32")
    safe = ops.maximum(tag_ids, 0)
    outside = tag_ids < 0
    prefix = ops.where(outside, 0, ops.take(ops.convert_to_tensor(prefixes), safe))
    kind = ops.where(outside, 0, ops.take(ops.convert_to_tensor(type_ids), safe))
    # Neighbours, with an "O" before the first and after the last word.
    pad = ops.zeros_like(prefix[:, :1])
    prev_prefix, prev_kind = ops.concatenate([pad, prefix[:, :-1]], 1), ops.concatenate([pad, kind[:, :-1]], 1)
    next_prefix, next_kind = ops.concatenate([prefix[:, 1:], pad], 1), ops.concatenate([kind[:, 1:], pad], 1)

    def isin(values, codes):
        return ops.any(ops.stack([values == PREFIX_CODES[code] for code in codes]), axis=0)

    starts = ops.logical_or(
        ops.logical_or(isin(prefix, "BS"), ops.logical_and(isin(prev_prefix, "ESO"), isin(prefix, "EI"))),
        ops.logical_and(prefix != 0, prev_kind != kind),
    )
    ends = ops.logical_or(
        ops.logical_or(isin(prefix, "ES"), ops.logical_and(isin(prefix, "BI"), isin(next_prefix, "BSO"))),
        ops.logical_and(prefix != 0, next_kind != kind),
    )
    return starts, ends


def bounds_to_entities(text: str, words: Sequence[tuple], labels: Sequence[str], starts, ends) -> list[dict]:
    """Entities of one text from `chunk_bounds`' rows, with character offsets into `text`.

    Args:
        text: str. The text the words come from.
        words: list of `(word, start, end)`, character offsets.
        labels: list of str. Each word's tag (the entity type is read at the entity's start).
        starts, ends: bool arrays over the words, from `chunk_bounds`.

    Returns:
        A list of `{"text", "label", "start", "end"}` dicts; `text[start:end]` is the entity.
    """
    entities = []
    for first, last in zip(np.flatnonzero(starts[:len(words)]), np.flatnonzero(ends[:len(words)])):
        start, end = int(words[first][1]), int(words[last][2])
        entities.append({"text": text[start:end], "label": labels[first][2:], "start": start, "end": end})
    return entities


def encode_texts(tokenizer: WordPieceOffsets, texts: Sequence[str], sequence_length: int) -> tuple[list, dict]:
    """Raw texts as model rows: `(tokenized, encoded)`, `tokenizer.encode`'s words and pieces with
    their offsets, and `encode_tagged_words`' arrays (with each word's `first_piece`)."""
    tokenized = tokenizer.encode(texts)
    pieces = [[[piece[0] for piece in word] for word in item["pieces"]] for item in tokenized]
    return tokenized, encode_tagged_words(pieces, None, sequence_length, tokenizer.token_to_id)


def entities_from_logits(texts: Sequence[str], tokenized: list, first_piece, logits,
                         label_names: Sequence[str]) -> list[list[dict]]:
    """Per text its entities `{"text", "label", "start", "end"}` from per-piece tag scores (logits
    or probabilities, `(batch, sequence_length, tags)`) and `encode_texts`' outputs."""
    ids = keras.ops.convert_to_numpy(word_tag_ids(logits, first_piece))
    starts, ends = (keras.ops.convert_to_numpy(part) for part in chunk_bounds(ids, *tag_tables(label_names)))
    return [
        bounds_to_entities(text, item["words"], [label_names[i] if i >= 0 else "O" for i in row], row_starts, row_ends)
        for text, item, row, row_starts, row_ends in zip(texts, tokenized, ids, starts, ends)
    ]


@keras.saving.register_keras_serializable(package="keras_ptft")
class TokenClassifier(EncodedBucketing, Task):
    """A tag per word: a backbone's token vectors, dropout and a dense layer over the tags.

    `fit(words, tags)` takes sentences as lists of words with one tag per word (what
    `keras_ptft.data.read_conll` returns); each word is split into WordPiece pieces and its tag
    is learned on its first piece (the other pieces get sample weight 0), or on every piece with
    `label_all_pieces=True` (later pieces continue the entity: `B-X` -> `I-X`). `predict(texts)`
    takes raw sentences, splits them into words at whitespace and punctuation as BERT's tokenizer
    does, and returns the entities with character offsets. Calling the model directly takes the
    token dict (`token_ids`, `segment_ids`, `padding_mask`) and returns tag logits per piece.
    Build it with `keras_ptft.recipes.token_classifier`, which also compiles it.

    Sentences are batched by length (`bucketing`, on by default, a run option as for the text
    tasks): `fit` / `evaluate` draw each batch from one length bucket and cut it, labels and
    weights included, to that bucket's length; `predict` / `predict_tags` sort the sentences by
    length and return them in the caller's order. CoNLL sentences average ~20 pieces, so at
    `sequence_length=128` most of a fixed-padding step is padding. `set_run_options(bucketing=False)`
    pads every row to `sequence_length`.

    Tag sequences are read as `seqeval` reads them (see `keras_ptft.tasks.metrics`): an `I-X`
    after `O` opens an entity. `strict_scheme=True` rejects such training sequences instead.

    Args:
        backbone: a `keras_ptft.models.Bert` (any backbone with a `sequence_output`).
        label_names: list of str. The tags, `"O"` included, e.g. `["O", "B-PER", "I-PER"]`.
        vocabulary: list of str. The backbone's WordPiece vocabulary.
        sequence_length: int. Pieces per row, `[CLS]` and `[SEP]` included; words that do not
            fit are counted in a warning (and tagged `"O"` by `predict`).
        lowercase: bool. Lower-case before WordPiece; must match the vocabulary.
        strip_accents: bool or None. Remove accents; None follows `lowercase`.
        scheme: str. `"IOB2"` (BIO) or `"IOBES"`.
        label_all_pieces: bool. Train every piece of a word, not only the first.
        strict_scheme: bool. `fit` raises on tag sequences that break `scheme`.
        dropout: float. Dropout before the tag layer.

    Example:
    ```python
    tagger = TokenClassifier(bert, ["O", "B-PER", "I-PER"], vocabulary=vocab, sequence_length=32)
    tagger.fit([["Angela", "Merkel", "spoke"]], [["B-PER", "I-PER", "O"]])
    tagger.predict(["Angela Merkel spoke"])  # [[{"text": "Angela Merkel", "label": "PER", ...}]]
    ```
    """

    def __init__(
        self,
        backbone: keras.Model,
        label_names: Sequence[str],
        vocabulary: Sequence[str] | str | os.PathLike,
        sequence_length: int = 128,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        scheme: str = "IOB2",
        label_all_pieces: bool = False,
        strict_scheme: bool = False,
        dropout: float = 0.1,
        preprocessor=None,
        **kwargs,
    ):
        scheme = check_scheme(scheme)
        label_names = check_label_names(label_names, scheme)
        check_sequence_length(sequence_length, backbone)
        # === Config === (set first: `Task.__init__` compiles, and `compile` reads them)
        self.label_names = label_names
        self.sequence_length = int(sequence_length)
        self.scheme = scheme
        self.label_all_pieces = bool(label_all_pieces)
        self.strict_scheme = bool(strict_scheme)
        self.dropout = dropout
        self.tokenizer = offsets_tokenizer(backbone, vocabulary, lowercase, strip_accents)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = None  # strings are encoded in NumPy before `fit`/`predict` (see module doc)
        self.output_dropout = keras.layers.Dropout(dropout, dtype=backbone.dtype_policy, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            len(label_names),
            # Glorot, not BERT's normal(0.02): with 0.02 a small BERT trained from scratch stays at
            # the all-"O" majority (CoNLL-2003, 2,000 sentences, hidden 64: entity F1 0.000 after 3
            # epochs; 0.4-0.5 with Glorot, the same data and optimizer).
            kernel_initializer="glorot_uniform",
            dtype="float32",  # logits in float32 even under mixed precision
            name="logits",
        )
        # === Functional Model ===
        inputs = {name: backbone.input[name] for name in MODEL_INPUTS}
        outputs = self.output_dense(self.output_dropout(backbone(inputs)["sequence_output"]))
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """Compiles with fine-tuning defaults: AdamW 5e-5 with warm-up then linear decay, clipping at
        norm 1, cross-entropy on the tag logits, and word-level tag accuracy."""
        if optimizer == "auto":
            optimizer = make_adamw(WarmupDecay(5e-5, warmup_ratio=0.1), global_clipnorm=1.0)
        if loss == "auto":
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics == "auto":
            metrics = None
            # Weighted by the sample weights, so only the trained pieces (one per word) count.
            kwargs.setdefault("weighted_metrics", [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def encode(self, words: Sequence[Sequence[str]], tags: Sequence[Sequence[str]] | None = None) -> dict:
        """Word lists (and their tags) as model inputs, labels and sample weights (NumPy)."""
        check_words_and_tags(words, tags, self.label_names, self.scheme, strict=self.strict_scheme)
        index = {tag: position for position, tag in enumerate(self.label_names)}
        tag_ids = None if tags is None else [[index[tag] for tag in sentence] for sentence in tags]
        return encode_tagged_words(
            self.tokenizer.word_piece_ids(words), tag_ids, self.sequence_length, self.tokenizer.token_to_id,
            label_all_pieces=self.label_all_pieces, label_names=self.label_names, scheme=self.scheme,
        )

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets: bool = False):
        """The shared fit path's hook: sentences as lists of words (`x`) and their tag lists (`y`)
        become word-piece features, labels on the scheme's pieces and a loss weight that is 0 on
        the pieces not labelled (`fit(words, tags, validation_data=(words, tags))`)."""
        if hasattr(x, "element_spec"):  # already encoded batches
            return x, y, sample_weight
        if sample_weight is not None:
            raise ValueError("`sample_weight` is not supported: the loss weights come from the word-piece "
                             "alignment (0 on the pieces that carry no label).")
        encoded = self.encode(x, y)
        warn_truncated(encoded["truncated_words"], self.sequence_length, "left out of training")
        if y is None:
            return _inputs(encoded), None, None
        return _inputs(encoded), encoded["labels"], encoded["sample_weight"]

    def predict_tags(self, words: Sequence[Sequence[str]], batch_size: int | None = None) -> list[list[str]]:
        """One tag per word of pre-split sentences (e.g. a CoNLL dev set)."""
        encoded = self.encode(words)
        warn_truncated(encoded["truncated_words"], self.sequence_length, 'tagged "O"')
        return self._decode(encoded, [len(sentence) for sentence in words], batch_size)

    def predict(self, x, batch_size: int | None = None, **kwargs) -> list[list[dict]]:
        """Entities of raw texts: per text a list of `{"text", "label", "start", "end"}` dicts,
        `start`/`end` character offsets into that text.

        Args:
            x: str or list of str. Raw sentences.
            batch_size: int or None. Rows per model call.
        """
        texts = check_texts(x, "x", allow_empty=True)
        tokenized, encoded = encode_texts(self.tokenizer, texts, self.sequence_length)
        warn_truncated(encoded["truncated_words"], self.sequence_length, 'tagged "O"')
        if not texts:
            return []
        logits = self.token_outputs(_inputs(encoded), batch_size)
        return entities_from_logits(texts, tokenized, encoded["first_piece"], logits, self.label_names)

    def evaluate_entities(self, words, tags, batch_size: int | None = None) -> dict:
        """Entity precision/recall/F1 (as seqeval computes them), per type, and token accuracy of
        the predicted tags of `words` against `tags` (see `keras_ptft.tasks.metrics.entity_scores`)."""
        check_words_and_tags(words, tags, self.label_names, self.scheme)
        return entity_scores(tags, self.predict_tags(words, batch_size))

    def _word_tag_ids(self, encoded: dict, batch_size) -> np.ndarray:
        if len(encoded["token_ids"]) == 0:
            return np.zeros((0, encoded["first_piece"].shape[1]), "int32")
        logits = self.token_outputs(_inputs(encoded), batch_size)
        return keras.ops.convert_to_numpy(word_tag_ids(logits, encoded["first_piece"]))

    def _decode(self, encoded: dict, lengths: list[int], batch_size) -> list[list[str]]:
        ids = self._word_tag_ids(encoded, batch_size)
        return [[self.label_names[i] if i >= 0 else "O" for i in row[:length]] for row, length in zip(ids, lengths)]

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("preprocessor", None)
        config.update({
            **self.tokenizer.get_config(),
            "label_names": self.label_names,
            "sequence_length": self.sequence_length,
            "scheme": self.scheme,
            "label_all_pieces": self.label_all_pieces,
            "strict_scheme": self.strict_scheme,
            "dropout": self.dropout,
        })
        return config


def _inputs(encoded: dict) -> dict:
    return {name: encoded[name] for name in MODEL_INPUTS}


def check_sequence_length(sequence_length, backbone) -> None:
    """`sequence_length` must be an int >= 3 and fit the backbone's position embeddings."""
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, (int, np.integer)) or sequence_length < 3:
        raise ValueError(f"`sequence_length` must be an int >= 3, received sequence_length={sequence_length!r}.")
    limit = getattr(backbone, "max_sequence_length", None)
    if limit is not None and sequence_length > limit:
        raise ValueError(
            f"`sequence_length`={sequence_length} is longer than the backbone's max_sequence_length={limit}."
        )


def offsets_tokenizer(backbone, vocabulary, lowercase: bool, strip_accents) -> WordPieceOffsets:
    """The `WordPieceOffsets` of `vocabulary`, which must have the backbone's vocabulary size."""
    tokenizer = WordPieceOffsets(vocabulary, lowercase=lowercase, strip_accents=strip_accents)
    if len(tokenizer.vocabulary) != backbone.vocabulary_size:
        raise ValueError(
            f"`vocabulary` has {len(tokenizer.vocabulary)} tokens but the backbone's "
            f"`vocabulary_size` is {backbone.vocabulary_size}; they must match."
        )
    return tokenizer
