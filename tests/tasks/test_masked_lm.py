import numpy as np
import pytest
import tensorflow as tf

import keras
from keras_ptft.models import Bert
from keras_ptft.tasks import MaskedLM, masked_lm_preprocessor


def make_mlm(vocabulary, sequence_length=12, **kwargs):
    bert = Bert(vocabulary_size=len(vocabulary), num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=128,
                max_sequence_length=sequence_length, dropout=0.0)
    return MaskedLM(bert, vocabulary=vocabulary, sequence_length=sequence_length, **kwargs)


def masking_sample(vocabulary, texts, mask_rate=0.15, sequence_length=64):
    preprocessor = masked_lm_preprocessor(vocabulary, sequence_length=sequence_length, mask_rate=mask_rate)
    x, y, weights = preprocessor(tf.constant(texts))
    return {k: v.numpy() for k, v in x.items()}, y.numpy(), weights.numpy()


def test_masking_statistics(toy_vocabulary, toy_corpus):
    # Long texts of ordinary words: 15% selected, then 80% [MASK] / 10% random / 10% kept.
    text = " ".join(["the cat sat on the mat"] * 10)
    x, y, weights = masking_sample(toy_vocabulary, [text] * 400, sequence_length=64)
    mask_id = toy_vocabulary.index("[MASK]")
    real = x["padding_mask"].astype(bool)
    special = np.isin(x["token_ids"], [toy_vocabulary.index(t) for t in ("[CLS]", "[SEP]", "[PAD]")])
    selectable = (real & ~special).sum()
    selected = weights.sum()
    assert abs(selected / selectable - 0.15) < 0.01
    rows = np.repeat(np.arange(len(y))[:, None], y.shape[1], 1)[weights > 0]
    positions = x["mask_positions"][weights > 0]
    now = x["token_ids"][rows, positions]
    original = y[weights > 0]
    as_mask = np.mean(now == mask_id)
    kept = np.mean(now == original)
    assert abs(as_mask - 0.8) < 0.02
    # "random" tokens can by chance equal the original; kept = 10% + 10% / vocabulary_size.
    assert abs(kept - (0.1 + 0.1 / len(toy_vocabulary))) < 0.02
    assert abs(1 - as_mask - kept - 0.1) < 0.02


def test_special_tokens_are_never_selected(toy_vocabulary, toy_corpus):
    x, y, weights = masking_sample(toy_vocabulary, toy_corpus, mask_rate=0.5, sequence_length=12)
    special_ids = [toy_vocabulary.index(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    assert not np.isin(y[weights > 0], special_ids).any()
    # The [CLS] and [SEP] positions are never among the mask positions.
    lengths = x["padding_mask"].sum(1)
    for positions, w, n in zip(x["mask_positions"], weights, lengths):
        assert not set(positions[w > 0]) & {0, n - 1}


def test_masks_are_redrawn_each_pass_and_reproducible_with_a_seed(toy_vocabulary, toy_corpus):
    def masks(seed):
        keras.utils.set_random_seed(seed)
        return masking_sample(toy_vocabulary, toy_corpus)[0]["mask_positions"]

    first, again = masks(7), masks(7)
    np.testing.assert_array_equal(first, again)
    keras.utils.set_random_seed(7)
    preprocessor = masked_lm_preprocessor(toy_vocabulary, sequence_length=64)
    epoch_one = preprocessor(tf.constant(toy_corpus))[0]["mask_positions"].numpy()
    epoch_two = preprocessor(tf.constant(toy_corpus))[0]["mask_positions"].numpy()
    assert not np.array_equal(epoch_one, epoch_two)


def test_loss_counts_masked_positions_only(toy_vocabulary):
    mlm = make_mlm(toy_vocabulary)
    x = {
        "token_ids": np.array([[2, 5, 4, 6, 3, 0, 0]] * 2, "int32"),
        "segment_ids": np.zeros((2, 7), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0, 0]] * 2, "int32"),
        "mask_positions": np.array([[2, 0]] * 2, "int32"),
    }
    y_one = np.array([[7, 9]] * 2)
    y_two = np.array([[7, 11]] * 2)  # differs only in a slot with weight 0
    weights = np.array([[1.0, 0.0]] * 2)
    loss_one = mlm.compute_loss(x, y_one, mlm(x), weights)
    loss_two = mlm.compute_loss(x, y_two, mlm(x), weights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loss_one), keras.ops.convert_to_numpy(loss_two))


def test_output_projection_is_tied_to_the_token_embedding(toy_vocabulary):
    mlm = make_mlm(toy_vocabulary)
    embedding_ids = {id(v) for v in mlm.backbone.token_embedding.weights}
    head_ids = {id(v) for v in mlm.masked_lm_head.weights}
    assert embedding_ids & head_ids or mlm.masked_lm_head.token_embedding is mlm.backbone.token_embedding
    # No separate (vocabulary x hidden) output matrix exists.
    vocab, hidden = len(toy_vocabulary), 64
    assert not any(tuple(w.shape) == (hidden, vocab) for w in mlm.masked_lm_head.weights)


@pytest.mark.slow
def test_pretraining_learns_and_cloze_picks_the_right_word(toy_vocabulary, toy_corpus, tmp_path):
    # One row per line: the step budget (6 steps x 20 epochs) was set for it; packing (fewer,
    # fuller rows) is tested in test_packing_fit.py.
    mlm = make_mlm(toy_vocabulary, mask_rate=0.3, packing=False)
    mlm.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = mlm.fit(tf.data.Dataset.from_tensor_slices(toy_corpus).shuffle(96, seed=0).batch(16), epochs=20, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0]
    # Each animal goes with one place only, so the gap is learnable.
    ranking = mlm.score_candidates("the dog lay on the [MASK]", ["mat", "rug", "branch", "pond"])
    assert ranking[0][0] == "rug"
    ranking = mlm.score_candidates("the [MASK] swam on the pond", ["cat", "dog", "bird", "fish"])
    assert ranking[0][0] == "fish"
    (predictions,) = mlm.fill_mask(["the cat sat on the [MASK]"], top_k=2)
    assert predictions[0][0][0] == "mat"
    assert 0 < predictions[0][1][1] <= predictions[0][0][1] <= 1
    # A multi-piece candidate scores the sum of its pieces' log-probabilities: finite and lower
    # than the right single word.
    ranking = dict(mlm.score_candidates("the cat sat on the [MASK]", ["mat", "dogs"]))
    assert np.isfinite(ranking["dogs"]) and ranking["mat"] > ranking["dogs"]
    # Saved as a folder that a recipe can start from.
    mlm.save_to_preset(str(tmp_path / "bert"))
    from keras_ptft.models import load_backbone, load_tokenizer

    backbone = load_backbone(str(tmp_path / "bert"))
    assert isinstance(backbone, Bert)
    np.testing.assert_allclose(backbone.get_weights()[0], mlm.backbone.get_weights()[0])
    assert load_tokenizer(str(tmp_path / "bert")).get_vocabulary() == toy_vocabulary


def test_score_candidates_pll_matches_a_direct_computation(toy_vocabulary):
    mlm = make_mlm(toy_vocabulary)
    tokenizer = mlm.preprocessor.tokenizer
    v = toy_vocabulary
    ((candidate, score),) = mlm.score_candidates("the cat sat on the [MASK]", ["dogs"])
    tokenized = tokenizer(["dogs"])
    pieces = [int(i) for i in (tokenized.to_list() if hasattr(tokenized, "to_list") else tokenized)[0]]
    assert len(pieces) == 2  # "dog" "##s": a two-piece candidate
    context = [v.index(w) for w in "the cat sat on the".split()]
    ids = [v.index("[CLS]"), *context, *pieces, v.index("[SEP]")]
    expected = 0.0
    for offset, piece in enumerate(pieces):
        position = 1 + len(context) + offset
        masked = list(ids)
        masked[position] = v.index("[MASK]")
        token_ids = np.zeros((1, 12), "int32")
        token_ids[0, : len(masked)] = masked
        logits = mlm({"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
                      "padding_mask": (token_ids > 0).astype("int32"),
                      "mask_positions": np.array([[position]], "int32")})
        logits = keras.ops.convert_to_numpy(logits)[0, 0].astype("float64")
        expected += logits[piece] - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    assert abs(score - expected) < 1e-4


def test_bad_inputs_name_the_argument(toy_vocabulary):
    mlm = make_mlm(toy_vocabulary)
    with pytest.raises(ValueError, match="`texts` must contain \\[MASK\\]"):
        mlm.fill_mask(["no blank here"])
    with pytest.raises(ValueError, match="text_with_one_blank"):
        mlm.score_candidates("no blank here", ["a"])
    with pytest.raises(ValueError, match="text_with_one_blank"):
        mlm.score_candidates("[MASK] and [MASK]", ["a"])
    with pytest.raises(ValueError, match="texts"):
        mlm.fill_mask([3, 4])
    with pytest.raises(ValueError, match="top_k"):
        mlm.fill_mask("the [MASK]", top_k=0)
    with pytest.raises(ValueError, match="vocabulary_size"):
        MaskedLM(Bert(vocabulary_size=99, num_layers=1, num_heads=1, hidden_dim=4, intermediate_dim=4),
                 vocabulary=toy_vocabulary)
    with pytest.raises(ValueError, match="`x` must hold only strings"):
        mlm.fit([1, 2, 3], epochs=1, verbose=0)
    with pytest.raises(ValueError, match="mask_rate"):
        make_mlm(toy_vocabulary, mask_rate=1.5)
