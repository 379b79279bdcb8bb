"""Length-bucketed fine-tuning and length-sorted inference of the text tasks (issue 14, items 1 and 3)."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ptft.recipes import TextClassifier, text_classifier, text_regressor
from keras_ptft.tasks import TextRegressor
from tests import harness

POSITIVE = ["big", "cat"]
NEGATIVE = ["small", "dog"]
SEQUENCE_LENGTH = 48


def mixed_length_task(n=96, seed=0):
    """The toy sentiment task of tests/recipes/test_text_classifier.py, with 1-12 filler words on
    each side, so the texts span several length buckets."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = i % 2
        word = rng.choice(POSITIVE if label else NEGATIVE)
        left, right = (" ".join(rng.choice(["the", "on", "sat", "mat"], size=rng.integers(1, 13))) for _ in "lr")
        texts.append(f"{left} {word} {right}")
        labels.append(label)
    return texts, np.array(labels, "int32")


def tiny_backbone(vocabulary):
    return harness.tiny_bert(vocabulary, max_sequence_length=SEQUENCE_LENGTH)


def real_lengths(texts, preprocessor):
    return np.asarray(preprocessor(texts)["padding_mask"]).astype(bool).sum(axis=1)


def test_fit_trains_on_bucket_length_batches_and_learns(toy_vocabulary):
    texts, labels = mixed_length_task()
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary,
                                 sequence_length=SEQUENCE_LENGTH, learning_rate=1e-2, seed=0, verbose=False,
                                 pooling="mean")
    lengths = real_lengths(texts, classifier.preprocessor)
    assert lengths.min() <= 8 < 17 <= lengths.max() < SEQUENCE_LENGTH  # the data spans several buckets
    seen = []  # (batch width, longest real length in the batch, batch size)
    make_batches = classifier.make_batches

    def record(mask):
        mask = mask.astype(bool)
        seen.append((mask.shape[1], int(mask.sum(axis=1).max()), mask.shape[0]))
        return mask.shape[1]

    def recording_make_batches(*args, **kwargs):
        # Each batch `fit` is given passes through `record` on its way to the (graph-mode) train
        # step: the concrete widths, without running the steps eagerly.
        def tap(x, *rest):
            width = tf.numpy_function(record, [x["padding_mask"]], tf.int64)
            with tf.control_dependencies([width]):
                x = {**x, "padding_mask": tf.identity(x["padding_mask"])}
            return (x, *rest)

        return make_batches(*args, **kwargs).map(tap)

    classifier.make_batches = recording_make_batches
    classifier.fit(texts, labels, batch_size=16, epochs=8, verbose=0)
    classifier.make_batches = make_batches
    steps = int(classifier.optimizer.iterations)
    assert len(seen) >= steps  # tf.data may read a few batches ahead of the last step
    seen = seen[:steps]

    boundaries = sorted({int(b) for b in np.ceil(np.quantile(lengths, [0.25, 0.5, 0.75, 1.0], method="higher") / 8) * 8})
    widths = sorted({width for width, _, _ in seen})
    assert widths == boundaries and len(widths) > 1 and max(widths) < SEQUENCE_LENGTH
    for width, longest, _ in seen:  # each batch is cut to the shortest bucket that fits its examples
        below = [b for b in boundaries if b < width]
        assert longest <= width and (not below or longest > below[-1])
    per_epoch = len(seen) // 8
    assert len(seen) == 8 * per_epoch and sum(size for _, _, size in seen[:per_epoch]) == len(texts)
    assert classifier.optimizer._learning_rate.total_steps == len(seen)  # sized from the bucketed batches
    # Batches are shuffled across buckets: the first epoch is not sorted by width.
    first = [width for width, _, _ in seen[:per_epoch]]
    assert first != sorted(first) and first != sorted(first, reverse=True)
    assert classifier.evaluate(texts, labels, verbose=0, return_dict=True)["accuracy"] > 0.9


def test_a_dataset_of_strings_is_bucketed_too(toy_vocabulary):
    texts, labels = mixed_length_task(n=40)
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary,
                                 sequence_length=SEQUENCE_LENGTH, seed=0, verbose=False)
    dataset = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(8)
    batches = list(classifier.make_batches(dataset, shuffle=True).as_numpy_iterator())
    got_labels = np.concatenate([y for _, y in batches])
    assert sorted(got_labels.tolist()) == sorted(labels.tolist())
    assert max(len(y) for _, y in batches) == 8  # rebatched at the dataset's own batch size
    assert {x["token_ids"].shape[1] for x, _ in batches} <= {8, 16, 24, 32}
    assert min(x["token_ids"].shape[1] for x, _ in batches) < SEQUENCE_LENGTH


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_predict_matches_fixed_padding_in_the_callers_order(toy_vocabulary, task):
    texts, _ = mixed_length_task(n=23, seed=1)
    order = np.random.default_rng(2).permutation(len(texts))
    texts = [texts[i] for i in order]
    build = text_classifier if task == "classifier" else text_regressor
    args = (2,) if task == "classifier" else ()
    model = build(tiny_backbone(toy_vocabulary), *args, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH,
                  verbose=False)
    batches, batch_order = model.prediction_batches(texts, batch_size=4)
    widths = [x["token_ids"].shape[1] for x in batches.as_numpy_iterator()]
    assert batch_order is not None and min(widths) < SEQUENCE_LENGTH and widths == sorted(widths)

    bucketed = model.predict(texts, batch_size=4, verbose=0)
    model.set_run_options(bucketing=False)
    assert model.prediction_batches(texts, batch_size=4)[1] is None
    fixed = model.predict(texts, batch_size=4, verbose=0)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)
    # The caller's order, checked against one text at a time at full padding.
    for i in (0, 7, 22):
        np.testing.assert_allclose(bucketed[i], model.predict([texts[i]], verbose=0)[0], atol=1e-5)


def test_unknown_bucketing_is_refused_naming_the_argument(toy_vocabulary):
    backbone = tiny_backbone(toy_vocabulary)
    with pytest.raises(ValueError, match="`bucketing`.*'maybe'"):
        text_classifier(backbone, 2, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH, bucketing="maybe")
    with pytest.raises(ValueError, match="`bucketing`"):
        text_regressor(backbone, vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH, bucketing="maybe")
    with pytest.raises(ValueError, match="`bucketing`"):
        TextRegressor(backbone, bucketing=[16, 0])
    classifier = TextClassifier(backbone, 2, bucketing=[16, 32])
    assert classifier.bucketing == (16, 32)
    with pytest.raises(ValueError, match="`bucketing`"):
        classifier.set_run_options(bucketing="maybe")
    assert classifier.bucketing == (16, 32)  # a refused value changes nothing


# === Beyond one text per example: pairs, sentence embeddings, prompt/response, fill-mask ===


def bucket_widths(boundaries, lengths):
    """The width each example's batch may have: the shortest bucket that fits it, or longer."""
    return [min(b for b in boundaries if b >= length) for length in lengths]


def test_text_pairs_are_bucketed_on_the_packed_length_and_predict_as_fixed_padding(toy_vocabulary):
    firsts, labels = mixed_length_task(n=22, seed=3)
    seconds, _ = mixed_length_task(n=22, seed=4)
    classifier = text_classifier(tiny_backbone(toy_vocabulary), 2, vocabulary=toy_vocabulary,
                                 sequence_length=SEQUENCE_LENGTH, seed=0, verbose=False)
    lengths = real_lengths((firsts, seconds), classifier.preprocessor)  # [CLS] a [SEP] b [SEP]
    batches = list(classifier.make_batches((firsts, seconds), labels, batch_size=4, shuffle=True).as_numpy_iterator())
    widths = {x["token_ids"].shape[1] for x, _ in batches}
    assert 1 < len(widths) <= 4 and min(widths) < SEQUENCE_LENGTH  # bounded, and shorter than fixed
    for x, _ in batches:  # segment ids are cut with the tokens; no real token is ever cut off
        assert x["segment_ids"].shape == x["token_ids"].shape
        assert x["padding_mask"].sum() == (x["token_ids"] != 0).sum()
    assert sum(x["padding_mask"].sum() for x, _ in batches) == lengths.sum()
    assert sorted(np.concatenate([y for _, y in batches]).tolist()) == sorted(labels.tolist())

    bucketed = classifier.predict((firsts, seconds), batch_size=4, verbose=0)
    classifier.set_run_options(bucketing=False)
    fixed = classifier.predict((firsts, seconds), batch_size=4, verbose=0)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)


def test_sentence_embedder_buckets_fit_and_encode(toy_vocabulary):
    from keras_ptft.data import BertPreprocessor
    from keras_ptft.recipes import sentence_embedder

    anchors, _ = mixed_length_task(n=24, seed=5)
    positives, _ = mixed_length_task(n=24, seed=6)
    preprocessor = BertPreprocessor(toy_vocabulary, sequence_length=SEQUENCE_LENGTH)
    embedder = sentence_embedder(tiny_backbone(toy_vocabulary), preprocessor=preprocessor, seed=0)
    longer_side = np.maximum(real_lengths(anchors, preprocessor), real_lengths(positives, preprocessor))
    batches = list(embedder.make_batches((anchors, positives), batch_size=4, shuffle=True).as_numpy_iterator())
    widths = set()
    for x, _ in batches:
        width = x["anchor_token_ids"].shape[1]
        assert {value.shape for value in x.values()} == {(4, width)}  # full batches, both sides cut alike
        longest = max(x["anchor_padding_mask"].sum(axis=1).max(), x["positive_padding_mask"].sum(axis=1).max())
        assert longest <= width
        widths.add(width)
    assert 1 < len(widths) <= 4 and max(widths) <= SEQUENCE_LENGTH and min(widths) < max(longer_side)
    assert len(batches) >= len(anchors) // 4 - 3  # each bucket drops at most its last partial batch
    history = embedder.fit((anchors, positives), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])

    order = np.random.default_rng(0).permutation(len(anchors))
    texts = [anchors[i] for i in order]
    bucketed = embedder.encode(texts, batch_size=5)
    embedder.set_run_options(bucketing=False)
    fixed = embedder.encode(texts, batch_size=5)
    np.testing.assert_allclose(bucketed, fixed, atol=1e-5)


def test_prompt_response_tuning_is_bucketed_with_the_response_only_loss():
    from keras_ptft.data import bpe_tokenizer, train_bpe
    from keras_ptft.models import GPT
    from keras_ptft.tasks import CausalLM

    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "dog"]
    prompts = [" ".join(rng.choice(words, size=rng.integers(1, 14))) for _ in range(20)]
    responses = [" " + " ".join(rng.choice(words, size=rng.integers(1, 4))) for _ in range(20)]
    vocab, merges = train_bpe(prompts + responses, vocabulary_size=270, verbose=False)
    gpt = GPT(vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
              max_sequence_length=64, dropout=0.0)
    lm = CausalLM(gpt, bpe_tokenizer(vocab, merges), sequence_length=64)
    lm.compile()
    data = {"prompts": prompts, "responses": responses}
    _, _, full_weights = lm.tokenize(data)
    batches = list(lm.make_batches(data, batch_size=4, shuffle=True).as_numpy_iterator())
    widths = {x["token_ids"].shape[1] for x, _, _ in batches}
    assert 1 < len(widths) <= 4 and max(widths) < 64
    for x, y, weights in batches:  # labels and response-only weights are cut with the tokens
        assert y.shape == weights.shape == x["token_ids"].shape
    assert sum(w.sum() for _, _, w in batches) == full_weights.sum()  # no response token lost

    bucketed = lm.evaluate(data, batch_size=4, verbose=0, return_dict=True)["perplexity"]
    lm.set_run_options(bucketing=False)
    assert {x["token_ids"].shape[1] for x, _, _ in lm.make_batches(data, batch_size=4).as_numpy_iterator()} == {64}
    fixed = lm.evaluate(data, batch_size=4, verbose=0, return_dict=True)["perplexity"]
    np.testing.assert_allclose(bucketed, fixed, rtol=1e-5)


def test_fill_mask_and_score_candidates_sort_by_length_and_match_fixed_padding(toy_vocabulary, monkeypatch):
    import keras_ptft.tasks.masked_lm as masked_lm

    mlm = masked_lm.MaskedLM(tiny_backbone(toy_vocabulary), vocabulary=toy_vocabulary, sequence_length=SEQUENCE_LENGTH)
    texts = ["the [MASK] sat", "the cat sat on the mat the dog lay on the rug the bird stood on the [MASK]",
             "[MASK] cat", "the dog lay on the [MASK] and the [MASK] sat on the mat"]
    widths = []
    sorted_batches = masked_lm.length_sorted_batches

    def recording(features, batch_size, boundaries=None):
        batches, order = sorted_batches(features, batch_size, boundaries)
        widths.extend(x["token_ids"].shape[1] for x in batches.as_numpy_iterator())
        return batches, order

    monkeypatch.setattr(masked_lm, "length_sorted_batches", recording)
    bucketed = mlm.fill_mask(texts, top_k=3)
    candidates = mlm.score_candidates("the cat sat on the [MASK]", ["mat", "rug", "branch", "pond"])
    assert widths and max(widths) < SEQUENCE_LENGTH  # no batch padded to the full length
    mlm.set_run_options(bucketing=False)
    fixed = mlm.fill_mask(texts, top_k=3)
    assert [[[t for t, _ in m] for m in text] for text in bucketed] == [[[t for t, _ in m] for m in text] for text in fixed]
    np.testing.assert_allclose([p for text in bucketed for m in text for _, p in m],
                               [p for text in fixed for m in text for _, p in m], atol=1e-5)
    fixed_candidates = mlm.score_candidates("the cat sat on the [MASK]", ["mat", "rug", "branch", "pond"])
    assert [c for c, _ in candidates] == [c for c, _ in fixed_candidates]
    np.testing.assert_allclose([s for _, s in candidates], [s for _, s in fixed_candidates], atol=1e-5)
