"""Raw strings (or pairs of them) → BERT inputs, eagerly or inside `tf.data`, on every backend."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_ptft.data.wordpiece import SPECIAL_TOKENS, load_vocabulary

TRUNCATE_MODES = ("round_robin", "waterfall")


@keras.saving.register_keras_serializable(package="keras_ptft")
class BertPreprocessor(keras.layers.Layer):
    """Tokenizes raw strings with WordPiece and packs them as BERT inputs.

    One text becomes `[CLS] a [SEP]`, a pair becomes `[CLS] a [SEP] b [SEP]`, and every row is
    padded with `[PAD]` to `sequence_length`. Tokenizing is keras-hub's `BertTokenizer`
    (lower-casing, accent stripping, splitting on whitespace, punctuation and each CJK character,
    then WordPiece); packing is keras-hub's `MultiSegmentPacker`.

    Truncation: a text too long for `sequence_length` loses tokens from its end, never the `[CLS]`
    or `[SEP]` tokens. With a pair, `truncate="round_robin"` (default) hands out the room one token
    at a time to each text in turn, so the longer text is cut first and both keep at least half
    of the room if they need it; `"waterfall"` fills the first text first and cuts the second.

    The work is TensorFlow ops, so the layer runs inside `tf.data.Dataset.map` whatever the Keras
    backend, and outside `tf.data` returns tensors of the current backend. Eager calls run the very
    same TensorFlow graph (not keras-hub's separate pure-Python path), so ids never depend on
    where the layer is called. The first eager call for each kind of input (one text or a pair; a
    batch or a single unbatched example) builds that graph, which takes a second or two.

    Args:
        vocabulary: list of str, or str / `os.PathLike`. The WordPiece vocabulary, or its file (one
            token per line). It must hold `"[PAD]"`, `"[UNK]"`, `"[CLS]"`, `"[SEP]"` and
            `"[MASK]"`.
        sequence_length: int. The length of every output row, special tokens included; >= 3.
        lowercase: bool. Lower-case the text before tokenizing. Must match how the vocabulary
            was trained.
        strip_accents: bool or None. Remove accent marks ("é" → "e"). None follows `lowercase`.
        truncate: str. `"round_robin"` or `"waterfall"` (see above).
        **kwargs: other `keras.layers.Layer` arguments, e.g. `name`.

    Call arguments:
        inputs: the texts: a str, a list or 1-D array of str, a 1-D string `tf.Tensor`, or a
            tuple (or a list of two lists) of two such batches for text pairs. A single `str`
            gives a batch of one; a scalar string tensor (an unbatched `tf.data` element) gives
            unbatched rows of shape `(sequence_length,)`.
        y: optional labels, returned untouched: the call then returns `(features, y)`, so
            `ds.map(preprocessor)` works on a dataset of `(texts, labels)`. Map a dataset of pairs
            with `lambda a, b: preprocessor((a, b))`.
        sample_weight: optional sample weights, returned untouched after `y`.

    Returns:
        A dict of int32 tensors of shape `(batch, sequence_length)`: `"token_ids"`,
        `"segment_ids"` (0 for `[CLS]`, the first text and its `[SEP]`; 1 for the second text and
        its `[SEP]`; 0 for padding) and `"padding_mask"` (1 on tokens, 0 on padding).

    Example:
    ```python
    import tensorflow as tf
    import keras_ptft as kp

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "mat"]
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=8)
    preprocessor(["The cat sat"])["token_ids"]           # [[2, 5, 6, 7, 3, 0, 0, 0]]
    preprocessor((["the cat"], ["sat"]))["segment_ids"]  # [[0, 0, 0, 0, 1, 1, 0, 0]]
    ds = tf.data.Dataset.from_tensor_slices((["the cat", "a mat"], [0, 1])).batch(2)
    ds = ds.map(preprocessor)                            # ({"token_ids": ..., ...}, labels)
    ```
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | os.PathLike,
        sequence_length: int = 128,
        lowercase: bool = True,
        strip_accents: bool | None = None,
        truncate: str = "round_robin",
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Like keras-hub's preprocessing layers: take strings as they are, never convert them to
        # backend tensors (JAX and torch have no string tensors).
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = load_vocabulary(vocabulary)
        vocabulary = _check_vocabulary(vocabulary)
        if (
            isinstance(sequence_length, bool)
            or not isinstance(sequence_length, (int, np.integer))
            or sequence_length < 3
        ):
            raise ValueError(
                "`sequence_length` must be an int >= 3 (room for [CLS], one token and [SEP]), "
                f"received sequence_length={sequence_length!r}."
            )
        if truncate not in TRUNCATE_MODES:
            raise ValueError(
                f"`truncate` must be one of {TRUNCATE_MODES}, received truncate={truncate!r}."
            )
        strip_accents = lowercase if strip_accents is None else strip_accents

        # === Layers ===
        self.tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=vocabulary,
            lowercase=bool(lowercase),
            strip_accents=bool(strip_accents),
            split_on_cjk=True,
            name="tokenizer",
        )
        self.packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length=int(sequence_length),
            start_value=self.tokenizer.cls_token_id,
            end_value=self.tokenizer.sep_token_id,
            pad_value=self.tokenizer.pad_token_id,
            truncate=truncate,
            name="packer",
        )
        # Eager calls run the packing as a `tf.function`, so keras-hub takes its TensorFlow path,
        # as in `tf.data` and exports, not its separate pure-Python eager path. A plain holder
        # keeps these functions out of Keras/TF tracking (and so out of SavedModel exports).
        self._graphs = _GraphCache()
        self.built = True

        # === Config ===
        self.sequence_length = int(sequence_length)
        self.lowercase = bool(lowercase)
        self.strip_accents = bool(strip_accents)
        self.truncate = truncate

    @property
    def vocabulary(self) -> list[str]:
        """The tokens, in id order (a copy)."""
        return list(self.tokenizer.get_vocabulary())

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.vocabulary_size()

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.token_to_id("[PAD]")

    @property
    def unk_token_id(self) -> int:
        return self.tokenizer.token_to_id("[UNK]")

    @property
    def cls_token_id(self) -> int:
        return self.tokenizer.token_to_id("[CLS]")

    @property
    def sep_token_id(self) -> int:
        return self.tokenizer.token_to_id("[SEP]")

    @property
    def mask_token_id(self) -> int:
        return self.tokenizer.token_to_id("[MASK]")

    def call(self, inputs, y=None, sample_weight=None):
        segments = _as_segments(inputs)
        if tf.executing_eagerly():
            features = self._graphs(self._pack, segments)
            features = {key: _to_backend(value) for key, value in features.items()}
        else:  # tracing: inside tf.data, a tf.function or a SavedModel export
            features = self._pack(*segments)
        return keras.utils.pack_x_y_sample_weight(features, y, sample_weight)

    def _pack(self, *segments):
        token_ids, segment_ids = self.packer(tuple(self.tokenizer(segment) for segment in segments))
        token_ids = tf.cast(token_ids, "int32")
        return {
            "token_ids": token_ids,
            "segment_ids": tf.cast(segment_ids, "int32"),
            "padding_mask": tf.cast(tf.not_equal(token_ids, self.pad_token_id), "int32"),
        }

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary": self.vocabulary,
                "sequence_length": self.sequence_length,
                "lowercase": self.lowercase,
                "strip_accents": self.strip_accents,
                "truncate": self.truncate,
            }
        )
        return config


class _GraphCache:
    """`tf.function`s of the packing, built on first use: one per number of segments and rank
    (a batch, or a single unbatched example). Each has a fixed signature, so it traces once."""

    def __init__(self):
        self._functions = {}

    def __call__(self, fn, segments):
        key = (len(segments), segments[0].shape.rank)
        if key not in self._functions:
            signature = [tf.TensorSpec([None] * key[1], tf.string)] * key[0]
            # Wrapped in a `partial`: TF counts traces per code object to warn about retracing, and
            # every layer's `_pack` shares one; a partial gives each layer its own count. No
            # AutoGraph: there is no tensor-dependent Python control flow to convert, and
            # converting the Keras call stack would double the cost of the first call.
            self._functions[key] = tf.function(
                functools.partial(fn), input_signature=signature, autograph=False
            )
        return self._functions[key](*segments)


def _check_vocabulary(vocabulary) -> list[str]:
    if isinstance(vocabulary, (bytes, dict)) or not isinstance(vocabulary, (Sequence, np.ndarray)):
        raise ValueError(
            "`vocabulary` must be a list of tokens or a vocabulary file path, received a "
            f"{type(vocabulary).__name__}."
        )
    vocabulary = [str(token) if isinstance(token, np.str_) else token for token in vocabulary]
    bad = [token for token in vocabulary if not isinstance(token, str)]
    if bad:
        raise ValueError(
            f"`vocabulary` must hold strings, received {bad[0]!r} of type {type(bad[0]).__name__}."
        )
    missing = [token for token in SPECIAL_TOKENS if token not in vocabulary]
    if missing:
        raise ValueError(
            f"`vocabulary` lacks the special tokens {missing}; a BERT vocabulary needs all of "
            f"{list(SPECIAL_TOKENS)} (`train_wordpiece` adds them)."
        )
    return vocabulary


def _as_segments(inputs) -> tuple[tf.Tensor, ...]:
    """Turns the accepted forms of `inputs` into a tuple of 1 or 2 string tensors of the same
    batch size (or 2 scalars); a Python str becomes a batch of one."""
    batch_types = (list, tuple, np.ndarray, tf.Tensor)
    if isinstance(inputs, tuple) or (
        isinstance(inputs, list)
        and len(inputs) == 2
        and all(isinstance(x, batch_types) for x in inputs)
    ):
        if len(inputs) not in (1, 2):
            raise ValueError(
                "`inputs` as a tuple must hold one or two batches of texts (a text pair), received "
                f"a tuple of {len(inputs)}."
            )
        segments = tuple(_as_string_tensor(segment) for segment in inputs)
    else:
        segments = (_as_string_tensor(inputs),)
    ranks = {segment.shape.rank for segment in segments}
    if len(ranks) != 1:
        raise ValueError(
            "`inputs`: the two texts of a pair must be both single texts or both batches."
        )
    sizes = {segment.shape[0] for segment in segments if segment.shape.rank == 1}
    if len(sizes) > 1 and None not in sizes:
        raise ValueError(
            "`inputs`: the two batches of a text pair must have the same size, received "
            f"{segments[0].shape[0]} and {segments[1].shape[0]} texts."
        )
    return segments


def _as_string_tensor(texts) -> tf.Tensor:
    expected = "strings (a str, a list or 1-D array of str, or a string tf.Tensor)"
    if isinstance(texts, (tf.Tensor, tf.Variable)) or tf.is_symbolic_tensor(texts):
        if texts.dtype != tf.string:
            raise ValueError(
                f"`inputs` must be {expected}, received a tensor of dtype {texts.dtype.name}."
            )
        if texts.shape.rank not in (0, 1, None):
            raise ValueError(
                "`inputs` must be a batch of texts (rank 0 or 1), received a string tensor of "
                f"shape {texts.shape}."
            )
        return texts
    if isinstance(texts, (str, bytes)):
        return tf.constant([texts], dtype=tf.string)
    if isinstance(texts, np.ndarray):
        if texts.dtype.kind not in "USO" or texts.ndim != 1:
            raise ValueError(
                f"`inputs` must be {expected}, received an array of dtype {texts.dtype} and "
                f"shape {texts.shape}."
            )
        texts = texts.tolist()
    if not isinstance(texts, (list, tuple)):
        raise ValueError(
            f"`inputs` must be {expected}, received {type(texts).__name__} {texts!r:.100}."
        )
    for index, text in enumerate(texts):
        if not isinstance(text, (str, bytes)):
            raise ValueError(
                f"`inputs` must be {expected}, received {text!r:.100} of type "
                f"{type(text).__name__} at index {index}."
            )
    return tf.constant(list(texts), shape=(len(texts),), dtype=tf.string)


def _to_backend(value: tf.Tensor):
    if keras.config.backend() == "tensorflow":
        return value
    return keras.ops.convert_to_tensor(value.numpy())
