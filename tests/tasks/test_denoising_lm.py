"""DenoisingLM: exact corruption statistics, target-only loss, fresh seeded noise, preset hand-off."""

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.data.seq2seq_preprocessing import pack_token_ids, random_spans_mask, token_id_lists

WORDS = "red blue green cat dog sun moon tree water stone".split()
_rng = np.random.default_rng(0)
ENGLISH = [" ".join(_rng.choice(WORDS, _rng.integers(3, 9))) for _ in range(160)]
CHINESE = ["猫坐在垫子上。", "太阳和月亮。", "树下有水。", "红狗喝水。"] * 10
TEXTS = ENGLISH + CHINESE


@pytest.fixture(scope="module")
def tokenizer():
    return kp.data.train_seq2seq_tokenizer(TEXTS, vocabulary_size=360)


def _denoiser(tokenizer, **options):
    keras.utils.set_random_seed(0)
    model = kp.models.Seq2Seq(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
                              hidden_dim=32, intermediate_dim=64, max_sequence_length=32, dropout=0.0)
    denoiser = kp.tasks.DenoisingLM(model, tokenizer, sequence_length=24, **options)
    denoiser.compile(optimizer=keras.optimizers.Adam(3e-3))
    return denoiser


def _spans(mask):
    """Run lengths of True in a 1-D boolean mask, counted independently of the library."""
    padded = np.concatenate([[0], mask.astype(int), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return edges[1::2] - edges[::2]


@pytest.mark.parametrize("rate, mean_span_length", [(0.15, 3.0), (0.3, 2.0), (0.5, 2.0)])
def test_noise_rate_and_span_length_match_a_numpy_count(rate, mean_span_length):
    rng = np.random.default_rng(1)
    masks = [random_spans_mask(100, rate, mean_span_length, rng) for _ in range(200)]
    noise = np.array([m.sum() for m in masks])
    spans = [_spans(m) for m in masks]
    assert np.all(noise == round(rate * 100))  # exact per row, not only on average
    np.testing.assert_allclose(noise.sum() / (200 * 100), rate)
    np.testing.assert_allclose(np.concatenate(spans).mean(), mean_span_length, rtol=0.05)
    assert not all(np.array_equal(masks[0], m) for m in masks[1:])  # spans move between rows
    # A single span may start anywhere it fits, not only at the end (T5's first rule's bias).
    starts = {int(np.argmax(random_spans_mask(10, 0.3, 3.0, rng))) for _ in range(100)}
    assert starts == set(range(8))


def test_span_corruption_puts_only_corrupted_tokens_in_the_weighted_target(tokenizer):
    denoiser = _denoiser(tokenizer)
    x, y, weights, masks = denoiser.examples(TEXTS)
    pad, end = tokenizer.pad_token_id, tokenizer.end_token_id
    sentinels = set(tokenizer.sentinel_ids())
    rows = pack_token_ids(token_id_lists(tokenizer, TEXTS), 22)
    assert len(rows) == len(y)
    for i, row in enumerate(rows):
        row, mask = np.array(row), masks[i, : len(row)]
        labels = y[i][weights[i] > 0]
        np.testing.assert_array_equal(weights[i], (y[i] != pad).astype("float32"))  # padding: weight 0
        assert labels[-1] == end
        # Weighted labels are exactly the sentinels and the corrupted tokens, in order.
        np.testing.assert_array_equal([t for t in labels[:-1] if t not in sentinels], row[mask])
        assert sum(t in sentinels for t in labels) == len(_spans(mask))
        # Rebuilding the row from source and target gives back the original text.
        source = x["encoder_token_ids"][i][x["encoder_padding_mask"][i] > 0][1:-1]
        spans = {}
        for token in labels[:-1]:
            if token in sentinels:
                current = spans.setdefault(token, [])
            else:
                current.append(token)
        rebuilt = [t for s in source for t in (spans[s] if s in sentinels else [s])]
        np.testing.assert_array_equal(rebuilt, row)
    # The noise rate over the packed corpus matches the per-row rule.
    lengths = np.array([len(r) for r in rows])
    np.testing.assert_array_equal(masks.sum(1), [min(max(round(0.15 * n), 1), n - 1) for n in lengths])


def test_text_infilling_masks_spans_and_targets_the_whole_row(tokenizer):
    denoiser = _denoiser(tokenizer, objective="text_infilling", rate=0.3)
    x, y, weights, masks = denoiser.examples(TEXTS[:40])
    mask_id = tokenizer.mask_token_id
    rows = pack_token_ids(token_id_lists(tokenizer, TEXTS[:40]), 22)
    for i, row in enumerate(rows):
        labels = y[i][weights[i] > 0]
        np.testing.assert_array_equal(labels, [*row, tokenizer.end_token_id])
        source = x["encoder_token_ids"][i][x["encoder_padding_mask"][i] > 0][1:-1]  # without <s> and </s>
        mask = masks[i, : len(row)]
        assert np.sum(source == mask_id) == len(_spans(mask))
        np.testing.assert_array_equal(source[source != mask_id], np.array(row)[~mask])  # the clean tokens


def test_same_seed_same_examples_and_fresh_noise_each_epoch(tokenizer):
    first, again = _denoiser(tokenizer, seed=3).examples(TEXTS), _denoiser(tokenizer, seed=3).examples(TEXTS)
    other = _denoiser(tokenizer, seed=4).examples(TEXTS)
    np.testing.assert_array_equal(first[0]["encoder_token_ids"], again[0]["encoder_token_ids"])
    assert not np.array_equal(first[3], other[3])
    batches = _denoiser(tokenizer).batches(TEXTS, batch_size=16)
    epoch_0 = batches[0][0]["encoder_token_ids"].copy()
    batches.on_epoch_end()
    assert not np.array_equal(epoch_0, batches[0][0]["encoder_token_ids"])


def test_loss_is_the_mean_over_target_tokens(tokenizer):
    denoiser = _denoiser(tokenizer)
    x, y, weights, _ = denoiser.examples(TEXTS)
    logits = keras.ops.convert_to_numpy(denoiser(x)).astype("float64")
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    token_loss = -np.take_along_axis(log_probs, y[..., None], -1)[..., 0]
    expected = (token_loss * weights).sum() / weights.sum()
    # One batch: across batches Keras averages batch means, weighted by rows rather than tokens.
    results = denoiser.evaluate(TEXTS, batch_size=len(y), verbose=0, return_dict=True)
    np.testing.assert_allclose(results["loss"], expected, rtol=1e-5)


def test_pretraining_lowers_the_loss_and_hands_off_to_the_translator(tokenizer, tmp_path):
    denoiser = _denoiser(tokenizer)
    history = denoiser.fit(TEXTS, epochs=6, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses
    denoiser.save_to_preset(tmp_path / "seq2seq")
    translator = kp.recipes.translator(tmp_path / "seq2seq", sequence_length=16)
    assert translator.preprocessor.tokenizer.vocabulary_size() == tokenizer.vocabulary_size()
    for mine, theirs in zip(denoiser.backbone.weights, translator.backbone.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs))


def test_fit_sizes_the_schedule_from_packed_rows_and_validates(tokenizer):
    denoiser = _denoiser(tokenizer)
    schedule = kp.schedules.WarmupDecay(3e-3, total_steps=None, warmup_ratio=0.1)
    denoiser.compile(optimizer=kp.training.make_adamw(schedule))
    history = denoiser.fit(TEXTS, validation_data=TEXTS[:20], epochs=2, batch_size=16, verbose=0)
    rows = len(pack_token_ids(token_id_lists(tokenizer, TEXTS), 22))
    assert rows < len(TEXTS)  # packed: several sentences share a row
    assert denoiser.optimizer._learning_rate.total_steps == 2 * -(-rows // 16)
    assert len(history.history["val_loss"]) == 2
    # Each pass over the training batches (each epoch) brings fresh noise; the first is reproducible.
    batches = denoiser.make_batches(TEXTS, batch_size=16, shuffle=True, augment=True)
    first, second = [next(iter(batches))[0]["encoder_token_ids"].numpy() for _ in range(2)]
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(first, denoiser.batches(TEXTS, 16)[0][0]["encoder_token_ids"])
    unpacked = _denoiser(tokenizer, packing=False)
    assert len(unpacked.examples(TEXTS)[1]) == len(TEXTS)  # one sentence per row
    with pytest.raises(ValueError, match="`packing`"):
        _denoiser(tokenizer, packing="yes")


def test_keras_file_round_trip_keeps_the_objective(tokenizer, tmp_path):
    denoiser = _denoiser(tokenizer, objective="text_infilling", rate=0.25, mean_span_length=2.0, seed=9)
    denoiser.save(tmp_path / "denoiser.keras")
    restored = keras.models.load_model(tmp_path / "denoiser.keras")
    assert (restored.objective, restored.rate, restored.mean_span_length, restored.seed) == (
        "text_infilling", 0.25, 2.0, 9)
    np.testing.assert_array_equal(restored.examples(TEXTS)[0]["encoder_token_ids"],
                                  denoiser.examples(TEXTS)[0]["encoder_token_ids"])


@pytest.mark.parametrize(
    "options, argument",
    [({"rate": 0.0}, "rate"), ({"rate": 1.0}, "rate"), ({"mean_span_length": 0.5}, "mean_span_length"),
     ({"objective": "shuffle"}, "objective")],
)
def test_bad_options_name_the_argument(tokenizer, options, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        _denoiser(tokenizer, **options)


def test_bad_texts_name_the_row(tokenizer):
    denoiser = _denoiser(tokenizer)
    with pytest.raises(ValueError, match="`x` row 1 is empty"):
        denoiser.fit(["red cat", "  "], epochs=1)
