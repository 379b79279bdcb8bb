import json

import keras
import keras_hub
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.data.token_alignment import WordPieceOffsets, encode_tagged_words
from keras_ptft.tasks import TokenClassifier
from keras_ptft.tasks.token_classifier import word_tag_ids
from tests import harness

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PEOPLE = ["alice", "bob", "carol", "dave"]
PLACES = ["paris", "rome", "york"]
OTHER = ["met", "saw", "in", "and", "the", "today", "new", ".", ","]
VOCAB = SPECIALS + PEOPLE + PLACES + OTHER + ["##s", "##ie", "cafe"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
SEQUENCE_LENGTH = 16


def tiny_bert(layers=2):
    return harness.tiny_bert(VOCAB, num_layers=layers, max_sequence_length=SEQUENCE_LENGTH)


def toy_ner(n, seed):
    """'alice met bobs in new york .': people are PER (some with a second piece, "bob ##s"), the
    cities LOC ("new york" is B-LOC I-LOC), every other word O."""
    rng = np.random.default_rng(seed)
    words, tags = [], []
    for _ in range(n):
        person = rng.choice(PEOPLE) + ("s" if rng.random() < 0.3 else "")
        other = rng.choice(PEOPLE)
        place = [["new", "york"], ["paris"], ["rome"]][rng.integers(3)]
        verb = rng.choice(["met", "saw"])
        sentence = [person.capitalize(), verb, other, "in", *[w.capitalize() for w in place], rng.choice([".", "today"])]
        labels = ["B-PER", "O", "B-PER", "O", "B-LOC", *["I-LOC"] * (len(place) - 1), "O"]
        words.append(sentence)
        tags.append(labels)
    return words, tags


def test_offsets_tokenizer_matches_keras_hub_ids_and_keeps_character_offsets():
    tokenizer = WordPieceOffsets(VOCAB)
    texts = ["Alice met Bobs in Café York, today.", "ÀLICE  saw\tcarolie 中 rome"]
    reference = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True, strip_accents=True)
    for text, encoded in zip(texts, tokenizer.encode(texts)):
        ids = [piece[0] for word in encoded["pieces"] for piece in word]
        expected = keras.ops.convert_to_numpy(reference([text])[0]) if not isinstance(reference([text]), list) \
            else reference([text])[0]
        assert ids == [int(i) for i in expected], text
        for word, start, end in encoded["words"]:
            assert text[start:end] == word  # offsets are characters of the original text
    first = tokenizer.encode(texts[:1])[0]
    assert [w[0] for w in first["words"]] == ["Alice", "met", "Bobs", "in", "Café", "York", ",", "today", "."]
    assert first["pieces"][2] == [(VOCAB.index("bob"), 10, 13), (VOCAB.index("##s"), 13, 14)]
    # "ÀLICE" normalises to another byte length: both its pieces would get the word's span.
    second = tokenizer.encode(texts[1:])[0]
    assert second["words"][0] == ("ÀLICE", 0, 5) and second["pieces"][0] == [(VOCAB.index("alice"), 0, 5)]


def test_first_piece_alignment_and_label_all_pieces():
    ids = {"[CLS]": 2, "[SEP]": 3, "[PAD]": 0}
    pieces = [[[10], [11, 12, 13], [14]]]  # the second word has three pieces
    tags = [[1, 3, 0]]  # B-PER, B-LOC, O
    first = encode_tagged_words(pieces, tags, 8, ids)
    np.testing.assert_array_equal(first["token_ids"][0], [2, 10, 11, 12, 13, 14, 3, 0])
    np.testing.assert_array_equal(first["sample_weight"][0], [0, 1, 1, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(first["labels"][0][[1, 2, 5]], [1, 3, 0])
    np.testing.assert_array_equal(first["first_piece"][0], [1, 2, 5])
    every = encode_tagged_words(pieces, tags, 8, ids, label_all_pieces=True, label_names=LABELS)
    np.testing.assert_array_equal(every["sample_weight"][0], [0, 1, 1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(every["labels"][0][1:6], [1, 3, 4, 4, 0])  # B-LOC I-LOC I-LOC
    iobes = ["O", "S-LOC", "B-LOC", "I-LOC", "E-LOC"]
    single = encode_tagged_words([[[11, 12, 13]]], [[1]], 8, ids, label_all_pieces=True, label_names=iobes,
                                 scheme="IOBES")
    np.testing.assert_array_equal(single["labels"][0][1:4], [2, 3, 4])  # S-LOC -> B-LOC I-LOC E-LOC
    last = encode_tagged_words([[[11, 12, 13]]], [[4]], 8, ids, label_all_pieces=True, label_names=iobes,
                               scheme="IOBES")
    np.testing.assert_array_equal(last["labels"][0][1:4], [3, 3, 4])  # E-LOC -> I-LOC I-LOC E-LOC
    cut = encode_tagged_words(pieces, tags, 5, ids)  # room for [CLS] + 3 pieces + [SEP]
    assert cut["truncated_words"] == 2 and list(cut["first_piece"][0]) == [1, -1, -1]


def test_word_tag_ids_gathers_the_first_piece():
    logits = np.zeros((1, 5, 3), "float32")
    logits[0, 1, 2] = logits[0, 3, 1] = 1.0
    ids = keras.ops.convert_to_numpy(word_tag_ids(logits, np.array([[1, 3, -1]], "int32")))
    np.testing.assert_array_equal(ids, [[2, 1, -1]])


def test_tag_layer_starts_glorot_sized_and_recipe_clips_the_global_norm():
    # BERT's normal(0.02) tag layer left a 64-wide BERT trained from scratch tagging every CoNLL
    # word "O" (entity F1 0.000 after 3 epochs on 2,000 sentences; 0.51 with Glorot, same recipe).
    tagger = kp.recipes.token_classifier(tiny_bert(), LABELS, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH)
    kernel = keras.ops.convert_to_numpy(tagger.output_dense.kernel)
    fan_in, fan_out = kernel.shape
    assert abs(kernel.std() - np.sqrt(2.0 / (fan_in + fan_out))) < 0.5 * np.sqrt(2.0 / (fan_in + fan_out))
    optimizer = tagger.optimizer
    assert optimizer.global_clipnorm == 1.0 and optimizer.clipnorm is None


@pytest.mark.slow
def test_learns_the_toy_task_and_finds_entities_with_offsets():
    words, tags = toy_ner(192, seed=0)
    tagger = kp.recipes.token_classifier(tiny_bert(), LABELS, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH,
                                         learning_rate=1e-2)
    tagger.fit(words, tags, batch_size=16, epochs=6, verbose=0)
    # The schedule spans every step: 6 epochs of the length-bucketed batches (>= 192 / 16).
    batches_per_epoch = len(list(tagger.make_batches(*tagger.check_inputs(words, tags), batch_size=16)))
    assert batches_per_epoch >= 12 and tagger.optimizer._learning_rate.total_steps == 6 * batches_per_epoch
    dev_words, dev_tags = toy_ner(64, seed=1)
    scores = tagger.evaluate_entities(dev_words, dev_tags)
    assert scores["f1"] > 0.9, scores
    assert scores["per_type"]["PER"]["f1"] > 0.9 and scores["accuracy"] > 0.9
    text = "Carols met Dave in New York today"
    entities = tagger.predict([text])[0]
    assert entities == [
        {"text": "Carols", "label": "PER", "start": 0, "end": 6},
        {"text": "Dave", "label": "PER", "start": 11, "end": 15},
        {"text": "New York", "label": "LOC", "start": 19, "end": 27},
    ]
    # Round trip through get_config: same tags.
    clone = TokenClassifier.from_config(json.loads(json.dumps(tagger.get_config())))
    clone.set_weights(tagger.get_weights())
    assert clone.predict_tags(dev_words[:8]) == tagger.predict_tags(dev_words[:8])


def test_length_buckets_cut_labels_with_the_pieces_and_predict_like_fixed_padding():
    # Short sentences (<= 8 pieces with [CLS] and [SEP]) and long ones (9-16): buckets [8, 16].
    rng = np.random.default_rng(0)
    words, tags = [], []
    for index in range(40):
        count = int(rng.integers(1, 4)) if index % 2 else int(rng.integers(8, 13))
        names = list(rng.choice(PEOPLE, count))
        words.append(names)
        tags.append(["B-PER"] * count)
    tagger = kp.recipes.token_classifier(tiny_bert(1), LABELS, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH,
                                         bucketing=[8, 16])
    x, y, weights = tagger.check_inputs(words, tags)
    widths, kept = set(), 0.0
    for batch_x, batch_y, batch_weights in tagger.make_batches(x, y, weights, batch_size=8, shuffle=True):
        width = batch_x["token_ids"].shape[1]
        widths.add(width)
        assert batch_y.shape[1] == batch_weights.shape[1] == width
        # Nothing real is cut: every row's [SEP] is inside the batch's width.
        assert int(np.asarray(batch_x["padding_mask"]).sum(axis=1).max()) <= width
        kept += float(np.asarray(batch_weights).sum())
    assert widths == {8, 16}
    assert kept == float(np.asarray(weights).sum()) == sum(len(sentence) for sentence in tags)  # each label once
    # Prediction in length order, back in the caller's order, equals fixed padding.
    bucketed = tagger.token_outputs(x, batch_size=8)
    tagger.set_run_options(bucketing=False)
    fixed = tagger.token_outputs(x, batch_size=8)
    real = np.asarray(x["padding_mask"]).astype(bool)
    assert bucketed.shape == fixed.shape == (40, SEQUENCE_LENGTH, len(LABELS))
    np.testing.assert_allclose(bucketed[real], fixed[real], atol=1e-5)
    with_buckets = kp.recipes.token_classifier(tagger.backbone, LABELS, vocabulary=VOCAB,
                                               sequence_length=SEQUENCE_LENGTH)
    with_buckets.set_weights(tagger.get_weights())
    assert with_buckets.predict_tags(words, batch_size=8) == tagger.predict_tags(words, batch_size=8)
    with pytest.raises(ValueError, match="`bucketing` must be True, False"):
        kp.recipes.token_classifier(tiny_bert(1), LABELS, vocabulary=VOCAB, bucketing="yes")


def test_bad_input_names_field_and_index():
    tagger = kp.recipes.token_classifier(tiny_bert(1), LABELS, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH)
    with pytest.raises(ValueError, match=r"`tags\[1\]\[0\]`='B-ORG' is not in `label_names`"):
        tagger.fit([["alice"], ["bob"]], [["B-PER"], ["B-ORG"]])
    with pytest.raises(ValueError, match=r"`tags\[0\]` must be a list of 2 tags"):
        tagger.fit([["alice", "met"]], [["B-PER"]])
    with pytest.raises(ValueError, match=r"`words\[0\]` must be a list of words, received str"):
        tagger.fit(["alice met bob"], [["B-PER", "O", "B-PER"]])
    with pytest.raises(ValueError, match=r"`x` must hold only strings, received int 3 at index 1"):
        tagger.predict(["alice", 3])
    with pytest.raises(ValueError, match="`label_names` must include the outside tag 'O'"):
        kp.recipes.token_classifier(tiny_bert(1), ["B-PER", "I-PER"], vocabulary=VOCAB)
    with pytest.raises(ValueError, match="`label_names` must hold IOB2 tags"):
        kp.recipes.token_classifier(tiny_bert(1), ["O", "S-PER"], vocabulary=VOCAB)
    with pytest.raises(ValueError, match="`sequence_length`=32 is longer than the backbone's"):
        kp.recipes.token_classifier(tiny_bert(1), LABELS, vocabulary=VOCAB, sequence_length=32)
    strict = kp.recipes.token_classifier(tiny_bert(1), LABELS, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH,
                                         strict_scheme=True)
    with pytest.raises(ValueError, match=r"`tags\[0\]\[1\]`='I-PER' after 'O' breaks the IOB2 scheme"):
        strict.fit([["met", "alice"]], [["O", "I-PER"]])
    # Not strict: the break is read as seqeval does, and a word that does not fit is counted.
    with pytest.warns(UserWarning, match="1 word"):
        tagger.fit([["met", "alice"], ["alice"] * 15], [["O", "I-PER"], ["B-PER"] * 15], epochs=1, verbose=0)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends(backend, run_on_backend):
    from tests.tasks import ner_qa_backend_worker

    report = run_on_backend(ner_qa_backend_worker.main, backend)
    assert report["backend"] == backend
    assert report["ner_entity_keys"] == ["end", "label", "start", "text"]
    assert report["qa_answer"]["text"] in report["qa_context"]
    assert np.isfinite(report["ner_loss"]) and np.isfinite(report["qa_loss"])


def test_graph_chunk_bounds_equal_seqeval_rules():
    from keras_ptft.tasks.metrics import get_entities
    from keras_ptft.tasks.token_classifier import chunk_bounds, tag_tables

    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    prefixes, type_ids = tag_tables(names)
    rng = np.random.default_rng(0)
    tag_ids = rng.integers(-1, len(names), size=(300, 7)).astype("int32")
    starts, ends = (keras.ops.convert_to_numpy(part) for part in chunk_bounds(tag_ids, prefixes, type_ids))
    for row in range(len(tag_ids)):
        tags = [names[i] if i >= 0 else "O" for i in tag_ids[row]]
        first, last = np.flatnonzero(starts[row]), np.flatnonzero(ends[row])
        found = [(tags[a][2:], int(a), int(b)) for a, b in zip(first, last)]
        assert len(first) == len(last) and found == get_entities(tags), tags
