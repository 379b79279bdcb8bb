import json

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.tasks import QuestionAnswerer
from keras_ptft.tasks.question_answerer import best_spans, pick_answers
from tests import harness

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER = ["the", "a", "red", "blue", "dog", "cat", "ran", "sat", "on", "mat", "."]
NAMES = ["rollo", "emma", "hugo", "ivar"]
VOCAB = SPECIALS + FILLER + NAMES + ["what", "is", "code", "?", "##s"]
SEQUENCE_LENGTH = 24


def tiny_bert():
    return harness.tiny_bert(VOCAB, num_layers=2, max_sequence_length=SEQUENCE_LENGTH)


def toy_qa(n, seed, unanswerable=0.0):
    """The answer is always the word after the keyword "code"; without the keyword there is none.
    Contexts of 16-26 words need two windows of 18 context pieces."""
    rng = np.random.default_rng(seed)
    pairs, answers = [], []
    for _ in range(n):
        words = list(rng.choice(FILLER, size=rng.integers(15, 25)))
        if rng.random() < unanswerable:
            answer = None
        else:
            position = int(rng.integers(0, len(words)))
            name = str(rng.choice(NAMES)).capitalize()
            words[position:position] = ["code", name]
            answer = name
        context = " ".join(words)
        pairs.append(("What is the code?", context))
        answers.append(None if answer is None else {"text": answer, "start": context.index("code " + answer) + 5})
    return pairs, answers


def test_best_spans_respects_context_and_max_length():
    logits = np.full((1, 6, 2), -5.0, "float32")
    logits[0, 0] = [9.0, 9.0]  # [CLS]: the no-answer score
    logits[0, 1, 0] = 8.0  # a start outside the context is never chosen
    logits[0, 2, 0], logits[0, 5, 1] = 3.0, 4.0  # too long for max_answer_length=3
    logits[0, 3, 1] = 2.0
    context = np.array([[0, 0, 1, 1, 1, 1]])
    start, end, score, null = (np.asarray(part) for part in best_spans(logits, context, 3))
    assert (int(start[0]), int(end[0])) == (2, 3) and score[0] == pytest.approx(5.0) and null[0] == 18.0
    start, end, _, _ = (np.asarray(part) for part in best_spans(logits, context, 4))
    assert (int(start[0]), int(end[0])) == (2, 5)


def test_pick_answers_takes_the_best_window_and_the_lowest_null_score():
    encoded = {"example": np.array([0, 0]), "offsets": np.array([[[-1, -1], [0, 5], [6, 9]], [[-1, -1], [6, 9], [10, 15]]])}
    context = "Rollo was there"
    answers = pick_answers([context], encoded, np.array([1, 2]), np.array([1, 2]), np.array([1.0, 3.0]),
                           np.array([2.0, 0.5]))
    assert answers == [{"text": "there", "start": 10, "end": 15, "score": 3.0, "margin": 2.5}]


def test_span_layer_starts_glorot_sized_and_both_compiles_clip_the_global_norm():
    # BERT's normal(0.02) span layer learned the toy task several times slower from scratch (64-wide
    # 2-layer BERT, lr 1e-3: span loss 1.26-1.40 after 2 epochs, 0.14-0.16 with Glorot).
    qa = kp.recipes.question_answerer(tiny_bert(), vocabulary=VOCAB, doc_stride=6)
    kernel = keras.ops.convert_to_numpy(qa.output_dense.kernel)
    glorot_std = np.sqrt(2.0 / sum(kernel.shape))
    assert abs(kernel.std() - glorot_std) < 0.5 * glorot_std
    task = QuestionAnswerer(tiny_bert(), vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH, doc_stride=6)
    task.compile()
    for optimizer in (qa.optimizer, task.optimizer):
        assert optimizer.global_clipnorm == 1.0 and optimizer.clipnorm is None


@pytest.mark.slow
def test_learns_the_word_after_the_keyword_across_windows_and_no_answer():
    pairs, answers = toy_qa(256, seed=0, unanswerable=0.25)
    qa = kp.recipes.question_answerer(tiny_bert(), vocabulary=VOCAB, doc_stride=6, learning_rate=1e-2)
    assert qa.sequence_length == SEQUENCE_LENGTH
    windows = qa.encode(pairs, answers)
    assert len(windows["example"]) > len(pairs)  # long contexts were split
    qa.fit(pairs, answers, batch_size=32, epochs=8, verbose=0)
    dev_pairs, dev_answers = toy_qa(64, seed=1, unanswerable=0.25)
    threshold = qa.fit_null_threshold(dev_pairs, dev_answers)
    assert qa.null_threshold == threshold["threshold"]
    scores = qa.evaluate_squad(dev_pairs, dev_answers)
    assert scores["f1"] == pytest.approx(threshold["best_f1"])
    assert scores["HasAns_exact"] > 90 and scores["NoAns_exact"] > 90, scores
    context = "the red dog sat on the mat . code Hugo ran on the blue mat ."
    prediction = qa.predict([("What is the code?", context)])[0]
    assert prediction["text"] == "Hugo" and context[prediction["start"]:prediction["end"]] == "Hugo"
    assert qa.predict([("What is the code?", "the red dog sat on the mat .")])[0]["text"] == ""
    clone = QuestionAnswerer.from_config(json.loads(json.dumps(qa.get_config())))
    clone.set_weights(qa.get_weights())
    assert clone.null_threshold == qa.null_threshold
    for ours, theirs in zip(clone.predict(dev_pairs[:4]), qa.predict(dev_pairs[:4])):
        assert ours["text"] == theirs["text"] and ours["score"] == pytest.approx(theirs["score"], abs=1e-4)


def test_short_windows_are_bucketed_and_answer_like_fixed_padding():
    pairs, answers = toy_qa(24, seed=2)
    pairs += [("What is the code?", "code Emma ran ."), ("What is the code?", "the cat sat . code Ivar")]
    answers += [{"text": "Emma", "start": 5}, {"text": "Ivar", "start": 19}]
    qa = kp.recipes.question_answerer(tiny_bert(), vocabulary=VOCAB, doc_stride=6, bucketing=[16, 24])
    x, y, _ = qa.check_inputs(pairs, answers)
    widths = set()
    for batch_x, batch_y in qa.make_batches(x, y, batch_size=4, shuffle=True):
        width = batch_x["token_ids"].shape[1]
        widths.add(width)
        assert int(np.asarray(batch_x["padding_mask"]).sum(axis=1).max()) <= width
        assert int(np.asarray(batch_y).max()) < width  # every answer span is inside the cut
    assert widths == {16, 24}
    bucketed = qa.token_outputs(x, batch_size=4)
    predictions = qa.predict(pairs, batch_size=4)
    qa.set_run_options(bucketing=False)
    fixed = qa.token_outputs(x, batch_size=4)
    real = np.asarray(x["padding_mask"]).astype(bool)
    np.testing.assert_allclose(bucketed[real], fixed[real], atol=1e-5)
    assert (bucketed[~real] <= -1e8).all()  # padded back as the mask layer masks padding
    for ours, theirs in zip(predictions, qa.predict(pairs, batch_size=4)):
        assert ours["text"] == theirs["text"] and ours["score"] == pytest.approx(theirs["score"], abs=1e-4)


def test_read_squad_dicts_fit_and_bad_input(tmp_path):
    qa = kp.recipes.question_answerer(tiny_bert(), vocabulary=VOCAB, doc_stride=4)
    examples = [{"question": "What is the code?", "context": "code Emma sat .", "answers": [{"text": "Emma", "start": 5}]},
                {"question": "What is the code?", "context": "the dog sat .", "answers": []}]
    history = qa.fit(examples, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match=r"`y\[1\]`: the answer 'Emma' is not at character 2 of context 1"):
        qa.fit([("what?", "the dog"), ("what?", "code Emma")], [None, {"text": "Emma", "start": 2}])
    with pytest.raises(ValueError, match="The context of example 0 must be a non-empty str"):
        qa.predict([("what?", "")])
    with pytest.raises(ValueError, match="The question of example 0 has 21 pieces"):
        qa.predict([("what " * 21, "the dog")])
    with pytest.raises(ValueError, match="`doc_stride`=20 must be smaller"):
        kp.recipes.question_answerer(tiny_bert(), vocabulary=VOCAB, doc_stride=20)


@pytest.mark.slow
def test_both_recipes_start_from_a_saved_backbone_and_survive_keras_files(tmp_path):
    backbone = tiny_bert()
    mlm = kp.tasks.MaskedLM(backbone, vocabulary=VOCAB, sequence_length=SEQUENCE_LENGTH)
    mlm.save_to_preset(str(tmp_path / "bert"))
    qa = kp.recipes.question_answerer(str(tmp_path / "bert"), doc_stride=4)
    tagger = kp.recipes.token_classifier(str(tmp_path / "bert"), ["O", "B-PER"], sequence_length=16)
    for model in (qa, tagger):
        assert model.tokenizer.vocabulary == VOCAB
        for loaded, saved in zip(model.backbone.get_weights(), backbone.get_weights()):
            np.testing.assert_array_equal(loaded, saved)
    pairs = [("What is the code?", "code Emma sat on the mat .")]
    qa.save(tmp_path / "qa.keras")
    restored = keras.saving.load_model(tmp_path / "qa.keras")
    assert restored.predict(pairs)[0]["text"] == qa.predict(pairs)[0]["text"]
    tagger.save(tmp_path / "tagger.keras")
    restored = keras.saving.load_model(tmp_path / "tagger.keras")
    assert restored.predict_tags([["Emma", "sat"]]) == tagger.predict_tags([["Emma", "sat"]])
