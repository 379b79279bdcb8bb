"""`fit` packs a raw-text corpus for MaskedLM / CausalLM; prompt/response tuning keeps one row each."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ptft as kp
from keras_ptft.tasks.masked_lm import to_dense_row

WORDS = "the cat sat on a mat dog lay rug bird sang tree".split()


def _lines(count=120, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 5))) for _ in range(count)]


@pytest.fixture(scope="module")
def mlm_parts():
    texts = _lines()
    vocab = kp.data.train_wordpiece(texts, vocabulary_size=40)
    return texts, vocab


def _mlm(vocab, sequence_length=16, **kwargs):
    keras.utils.set_random_seed(0)
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocab), max_sequence_length=sequence_length)
    return kp.tasks.MaskedLM(bert, vocabulary=vocab, sequence_length=sequence_length, seed=0, **kwargs)


@pytest.fixture(scope="module")
def lm_parts():
    texts = _lines()
    vocab, merges = kp.data.train_bpe(texts, vocabulary_size=280, verbose=False)
    return texts, vocab, merges


def _lm(vocab, merges, **kwargs):
    keras.utils.set_random_seed(0)
    gpt = kp.models.GPT(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=16,
                        intermediate_dim=32, max_sequence_length=16)
    return kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocab, merges), sequence_length=16, seed=0, **kwargs)


def _unmasked(features, mask_ids, mask_weights):
    """The packed rows before masking, and a 0/1 array of the selected positions."""
    ids = np.array(features["token_ids"])
    selected = np.zeros_like(ids)
    rows, slots = np.nonzero(np.asarray(mask_weights) > 0)
    positions = np.asarray(features["mask_positions"])[rows, slots]
    ids[rows, positions] = np.asarray(mask_ids)[rows, slots]
    selected[rows, positions] = 1
    return ids, selected


def _token_ids(tokenizer, text):
    return [int(i) for i in to_dense_row(tokenizer([text]))]


def test_masked_lm_packs_full_rows_of_the_corpus_in_order(mlm_parts):
    texts, vocab = mlm_parts
    mlm = _mlm(vocab)
    tokenizer = mlm.preprocessor.tokenizer
    batches = list(mlm.make_batches(texts, batch_size=8, shuffle=False, augment=True))
    rows = np.concatenate([_unmasked(*batch)[0] for batch in batches])
    mask = np.concatenate([np.asarray(batch[0]["padding_mask"]) for batch in batches])
    assert mask.mean() >= 0.95
    assert (rows[:, 0] == tokenizer.cls_token_id).all()
    # Independent reference: the corpus' token stream, each document followed by [SEP].
    stream = [i for text in texts for i in [*_token_ids(tokenizer, text), tokenizer.sep_token_id]]
    assert [int(i) for i in rows[:, 1:][mask[:, 1:] == 1]] == stream


def test_masked_lm_packed_masking_statistics(mlm_parts):
    texts, vocab = mlm_parts
    # tf-text's selector takes ceil(rate * selectable) tokens of each row: on rows of ~55
    # selectable tokens that is within 2% of 15% (on one short line per row it was not).
    mlm = _mlm(vocab, sequence_length=64)
    tokenizer = mlm.preprocessor.tokenizer
    special = [tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id]
    batches = mlm.make_batches(texts, batch_size=16, shuffle=True, augment=True)
    selected_total = selectable_total = 0
    for _ in range(12):  # masks are drawn anew every pass
        for batch in batches:
            ids, selected = _unmasked(*batch)
            assert not selected[np.isin(ids, special)].any()
            selectable = (~np.isin(ids, special)).sum(axis=1)
            slots = batch[0]["mask_positions"].shape[1]
            np.testing.assert_array_equal(selected.sum(axis=1), np.minimum(np.ceil(0.15 * selectable), slots))
            selected_total += selected.sum()
            selectable_total += selectable.sum()
    assert selectable_total > 5000
    assert abs(selected_total / selectable_total - 0.15) <= 0.02


def test_masked_lm_packed_fit_learns_and_sizes_epochs(mlm_parts):
    texts, vocab = mlm_parts
    mlm = _mlm(vocab)
    batches = mlm.make_batches(texts, batch_size=8, shuffle=True, augment=True)
    assert int(batches.cardinality()) == len(list(batches))  # known up front: schedules get sized
    history = mlm.fit(texts, batch_size=8, epochs=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_masked_lm_packs_a_dataset_of_strings(mlm_parts):
    texts, vocab = mlm_parts
    mlm = _mlm(vocab)
    batches = mlm.make_batches(tf.data.Dataset.from_tensor_slices(texts), batch_size=8, augment=True)
    mask = np.concatenate([np.asarray(f["padding_mask"]) for f, _, _ in batches])
    assert mask.mean() >= 0.95


def test_masked_lm_without_packing_keeps_one_document_per_row(mlm_parts):
    texts, vocab = mlm_parts
    mlm = _mlm(vocab, packing=False)
    tokenizer = mlm.preprocessor.tokenizer
    rows = np.concatenate([_unmasked(*b)[0] for b in mlm.make_batches(texts, batch_size=8, augment=True)])
    assert len(rows) == len(texts)
    assert ((rows == tokenizer.sep_token_id).sum(axis=1) == 1).all()
    assert (rows[:, 0] == tokenizer.cls_token_id).all()


@pytest.mark.parametrize("packing", ["yes", None, 1])
def test_packing_must_be_a_bool(mlm_parts, packing):
    _, vocab = mlm_parts
    with pytest.raises(ValueError, match="packing"):
        _mlm(vocab, packing=packing)


def test_causal_lm_packs_full_blocks_of_the_corpus_in_order(lm_parts):
    texts, vocab, merges = lm_parts
    lm = _lm(vocab, merges)
    tokenizer = lm.preprocessor.tokenizer
    batches = list(lm.make_batches(texts, batch_size=8, shuffle=False, augment=True))
    inputs = np.concatenate([np.asarray(f["token_ids"]) for f, _, _ in batches])
    labels = np.concatenate([np.asarray(y) for _, y, _ in batches])
    weights = np.concatenate([np.asarray(w) for _, _, w in batches])
    assert weights.mean() >= 0.95
    assert (weights[:-1] == 1).all()  # only the last block may hold padding
    np.testing.assert_array_equal(inputs[:, 1:], labels[:, :-1])  # labels are the next tokens
    stream = [i for text in texts for i in [*_token_ids(tokenizer, text), tokenizer.end_token_id]]
    rebuilt = [int(i) for block, label, weight in zip(inputs, labels, weights) for i in [block[0], *label[weight > 0]]]
    assert rebuilt == stream


def test_causal_lm_packed_fit_learns_with_perplexity(lm_parts):
    texts, vocab, merges = lm_parts
    lm = _lm(vocab, merges)
    history = lm.fit(texts, batch_size=8, epochs=4, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]
    assert np.isfinite(history["perplexity"]).all()
    assert history["perplexity"][-1] < history["perplexity"][0]
    assert np.isclose(history["perplexity"][-1], np.exp(history["loss"][-1]), rtol=0.2)


def test_causal_lm_without_packing_keeps_one_document_per_row(lm_parts):
    texts, vocab, merges = lm_parts
    lm = _lm(vocab, merges, packing=False)
    start = lm.preprocessor.tokenizer.start_token_id
    # One-document rows are length-bucketed, so batches differ in width: count rows, not columns.
    rows = [row for f, _, _ in lm.make_batches(texts, batch_size=8, augment=True) for row in np.asarray(f["token_ids"])]
    assert len(rows) == len(texts)
    assert all(row[0] == start for row in rows)


def test_prompt_response_pairs_keep_one_row_and_response_only_loss(lm_parts):
    _, vocab, merges = lm_parts
    # Fixed padding, to compare with the preprocessor's own rows (bucketed pairs: test_bucketing_fit).
    lm = _lm(vocab, merges, bucketing=False)
    pairs = {"prompts": ["the cat", "a dog lay", "bird"], "responses": ["sat", "on a rug", "sang"]}
    batches = list(lm.make_batches(pairs, batch_size=8, shuffle=False, augment=True))
    (features, labels, weights), = batches
    assert len(labels) == 3
    _, reference_labels, reference_weights = lm.preprocessor(pairs)
    np.testing.assert_array_equal(labels, keras.ops.convert_to_numpy(reference_labels))
    np.testing.assert_array_equal(weights, keras.ops.convert_to_numpy(reference_weights))
    tokenizer = lm.preprocessor.tokenizer
    # Hand count: the response pieces plus the end token are weighted, the prompt never.
    expected = [len(_token_ids(tokenizer, r)) + 1 for r in pairs["responses"]]
    assert np.asarray(weights).sum(axis=1).tolist() == expected
