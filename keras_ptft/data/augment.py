"""Text augmentation (EDA, Wei & Zou 2019) and cleaning as `tf.data` transforms.

All randomness is stateless and keyed on `(seed, example index)`, so a dataset augments the
same way on every run and every epoch order. keras-hub's `RandomDeletion` / `RandomSwap` layers
draw from a stateful generator, which makes the result depend on how many elements went
before; hence the stateless versions here. Words are whitespace-separated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf


def clean_text(text: tf.Tensor, normalization: str = "NFKC", lowercase: bool = False) -> tf.Tensor:
    """Strips HTML tags and entities-free markup, control characters, applies Unicode
    normalization and collapses whitespace; works on a string tensor of any shape.

    Example:
    ```python
    ds = ds.map(lambda text, label: (clean_text(text), label))
    ```
    """
    import tensorflow_text as tf_text

    text = tf.strings.regex_replace(text, r"<[^>]*>", " ")
    text = tf.strings.regex_replace(text, r"[\p{Cc}\p{Cf}]", " ")
    text = tf_text.normalize_utf8(text, normalization)
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def _words(text):
    return tf.strings.split(text)


def _join(words):
    return tf.strings.reduce_join(words, separator=" ")


def random_deletion(text: tf.Tensor, rate: float, seed) -> tf.Tensor:
    """Drops each word with probability `rate`, keeping at least one word."""
    words = _words(text)
    n = tf.size(words)
    keep = tf.random.stateless_uniform([n], seed) >= rate
    keep = tf.cond(tf.reduce_any(keep) | (n == 0), lambda: keep, lambda: tf.one_hot(0, n, True, False))
    return _join(tf.boolean_mask(words, keep))


def random_swap(text: tf.Tensor, rate: float, seed) -> tf.Tensor:
    """Swaps `max(1, round(rate * words))` random pairs of words."""
    words = _words(text)
    n = tf.size(words)
    swaps = tf.maximum(1, tf.cast(tf.round(rate * tf.cast(n, tf.float32)), tf.int32))
    pairs = tf.random.stateless_uniform([swaps, 2], seed, minval=0, maxval=tf.maximum(n, 1), dtype=tf.int32)

    def swap(i, w):
        a, b = pairs[i, 0], pairs[i, 1]
        wa, wb = w[a], w[b]
        w = tf.tensor_scatter_nd_update(w, [[a], [b]], tf.stack([wb, wa]))
        return i + 1, w

    _, words = tf.cond(
        n > 1, lambda: tf.while_loop(lambda i, w: i < swaps, swap, (0, words)), lambda: (0, words)
    )
    return _join(words)


def random_insertion(text: tf.Tensor, rate: float, seed) -> tf.Tensor:
    """Inserts `max(1, round(rate * words))` copies of the sentence's own words at random
    places (EDA inserts synonyms; with no thesaurus, the sentence's words keep the topic)."""
    words = _words(text)
    n = tf.size(words)
    count = tf.maximum(1, tf.cast(tf.round(rate * tf.cast(n, tf.float32)), tf.int32))
    seeds = tf.random.experimental.stateless_split(seed, 2)
    picks = tf.random.stateless_uniform([count], seeds[0], minval=0, maxval=tf.maximum(n, 1), dtype=tf.int32)
    # Sorting by keys places the inserted words: originals at 0, 1, ..., inserts anywhere in [0, n).
    keys = tf.concat(
        [tf.cast(tf.range(n), tf.float32), tf.random.stateless_uniform([count], seeds[1], 0.0, tf.cast(n, tf.float32))],
        axis=0,
    )
    merged = tf.concat([words, tf.gather(words, picks)], axis=0)
    return tf.cond(n > 0, lambda: _join(tf.gather(merged, tf.argsort(keys, stable=True))), lambda: text)


def embedding_neighbours(
    embeddings: np.ndarray, vocabulary: Sequence[str], min_similarity: float = 0.0, chunk: int = 2048
) -> dict[str, str]:
    """Each whole-word token's nearest other whole word by cosine similarity of a trained
    model's token embeddings (e.g. `backbone.token_embedding.embeddings`): a thesaurus learned
    from the model itself. Special (`[...]`) and sub-word (`##`) tokens are left out.

    Example:
    ```python
    table = embedding_neighbours(bert.token_embedding.embeddings.numpy(), vocab)
    ```
    """
    embeddings = np.asarray(embeddings, "float32")
    if embeddings.shape[0] != len(vocabulary):
        raise ValueError(
            f"`embeddings` has {embeddings.shape[0]} rows but `vocabulary` has {len(vocabulary)} tokens."
        )
    words = [i for i, t in enumerate(vocabulary) if not t.startswith("##") and not (t.startswith("[") and t.endswith("]"))]
    if len(words) < 2:
        raise ValueError("`vocabulary` needs at least two whole-word tokens to find neighbours.")
    vectors = embeddings[words]
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    table = {}
    for start in range(0, len(words), chunk):
        similarity = vectors[start:start + chunk] @ vectors.T
        rows = np.arange(similarity.shape[0])
        similarity[rows, rows + start] = -np.inf  # not itself
        best = similarity.argmax(1)
        for row, column in enumerate(best):
            if similarity[row, column] >= min_similarity:
                table[vocabulary[words[start + row]]] = vocabulary[words[column]]
    return table


def synonym_replacement(text: tf.Tensor, rate: float, seed, table: tf.lookup.StaticHashTable) -> tf.Tensor:
    """Replaces each word that has a neighbour in `table` with it, with probability `rate`."""
    words = _words(text)
    neighbours = table.lookup(words)
    replace = (tf.random.stateless_uniform([tf.size(words)], seed) < rate) & (neighbours != "")
    return _join(tf.where(replace, neighbours, words))


def augment_text(
    dataset: tf.data.Dataset,
    *,
    deletion: float = 0.0,
    swap: float = 0.0,
    insertion: float = 0.0,
    synonyms: dict[str, str] | None = None,
    synonym_rate: float = 0.1,
    clean: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
    """Augments the text of an unbatched dataset of strings or `(text, label, ...)` tuples.

    Args:
        dataset: `tf.data.Dataset` of scalar strings, or tuples whose first item is one.
        deletion: float. Probability of deleting each word.
        swap: float. Swaps `rate * words` pairs of words (at least one) when > 0.
        insertion: float. Inserts `rate * words` repeated words (at least one) when > 0.
        synonyms: dict or None. Word -> replacement, e.g. from `embedding_neighbours`.
        synonym_rate: float. Probability of replacing each word that has a synonym.
        clean: bool. Run `clean_text` first.
        seed: int. Same seed, same augmented dataset.

    Example:
    ```python
    train = augment_text(train, deletion=0.1, swap=0.1, seed=0).batch(32)
    ```
    """
    for value, name in ((deletion, "deletion"), (swap, "swap"), (insertion, "insertion"), (synonym_rate, "synonym_rate")):
        if not 0 <= value <= 1:
            raise ValueError(f"`{name}` must be in [0, 1], received {name}={value!r}.")
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"`dataset` must be a tf.data.Dataset, received {type(dataset).__name__}.")
    spec = dataset.element_spec
    first = spec[0] if isinstance(spec, tuple) else spec
    if first.dtype != tf.string or first.shape.rank != 0:
        raise ValueError(
            "`dataset` must yield scalar strings (or tuples starting with one): augment before `batch()`; "
            f"received {first}."
        )
    table = None
    if synonyms:
        table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(list(synonyms), list(synonyms.values())), default_value=""
        )

    def transform(index, element):
        text = element[0] if isinstance(element, tuple) else element
        seeds = tf.random.experimental.stateless_split(tf.stack([tf.cast(seed, tf.int64), index]), 4)
        if clean:
            text = clean_text(text)
        if table is not None and synonym_rate:
            text = synonym_replacement(text, synonym_rate, seeds[0], table)
        if insertion:
            text = random_insertion(text, insertion, seeds[1])
        if swap:
            text = random_swap(text, swap, seeds[2])
        if deletion:
            text = random_deletion(text, deletion, seeds[3])
        return (text, *element[1:]) if isinstance(element, tuple) else text

    return dataset.enumerate().map(transform, deterministic=True)
