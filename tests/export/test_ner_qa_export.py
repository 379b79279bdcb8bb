"""Token-classifier and question-answering exports: every format against the Keras `predict`."""

import functools
import json
import pathlib
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ptft.cli import main
from keras_ptft.data.token_alignment import WordPieceOffsets
from keras_ptft.export import Predictor, export, verify
from keras_ptft.export.serve import Server
from keras_ptft.models import Bert
from keras_ptft.recipes import question_answerer, token_classifier

from test_serve import request

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PEOPLE = ["alice", "bob", "carol", "dave"]
PLACES = ["paris", "rome", "york"]
WORDS = ["met", "saw", "in", "and", "the", "today", "new", ".", ",", "what", "is", "code", "?", "a", "red", "dog",
         "sat", "on", "mat"]
VOCAB = SPECIALS + PEOPLE + PLACES + WORDS + ["##s", "##ie", "cafe", "##e"]
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
FILLER = ["the", "a", "red", "dog", "sat", "on", "mat", "."]

# Accents (character offsets differ from byte offsets), a piece split ("Bobs"), an unknown word, a
# text cut by truncation (words past the row are tagged O) and an empty text.
NER_TEXTS = ["Alice met Bobs in New York today.", "Zoë saw Carolie in Rome, Paris.", "Café Dave met Alice in Paris",
             "alice met bob in rome and alice met bob in paris and dave saw carol in york .", "", "ÀLICE saw  dave"]


def bert(length):
    return Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=length)


def toy_ner(n, seed):
    rng = np.random.default_rng(seed)
    words, tags = [], []
    for _ in range(n):
        place = [["New", "York"], ["Paris"], ["Rome"]][rng.integers(3)]
        words.append([str(rng.choice(PEOPLE)).capitalize(), str(rng.choice(["met", "saw"])),
                      str(rng.choice(PEOPLE)).capitalize(), "in", *place, "."])
        tags.append(["B-PER", "O", "B-PER", "O", "B-LOC", *["I-LOC"] * (len(place) - 1), "O"])
    return words, tags


def toy_qa(n, seed):
    """The answer is the name after "code"; contexts of 10-18 words need one to three windows."""
    rng = np.random.default_rng(seed)
    pairs, answers = [], []
    for _ in range(n):
        words = list(rng.choice(FILLER, size=rng.integers(8, 16)))
        position = int(rng.integers(0, len(words)))
        name = str(rng.choice(PEOPLE)).capitalize()
        words[position:position] = ["code", name]
        context = " ".join(words)
        pairs.append(("What is the code?", context))
        answers.append({"text": name, "start": context.index("code " + name) + 5})
    return pairs, answers


@functools.lru_cache(maxsize=None)
def predictor(path, format):
    """One `Predictor` per artifact for the whole file: loading a SavedModel takes seconds."""
    return Predictor(path, format=format)


@pytest.fixture(scope="module")
def tagger():
    keras.utils.set_random_seed(3)
    model = token_classifier(bert(16), LABELS, vocabulary=VOCAB, sequence_length=16, learning_rate=1e-2)
    words, tags = toy_ner(48, 0)
    model.fit(words, tags, batch_size=16, epochs=3, verbose=0)
    return model


@pytest.fixture(scope="module")
def qa():
    keras.utils.set_random_seed(4)
    model = question_answerer(bert(16), vocabulary=VOCAB, sequence_length=16, doc_stride=3, learning_rate=1e-2)
    pairs, answers = toy_qa(32, 0)
    model.fit(pairs, answers, batch_size=16, epochs=2, verbose=0)
    return model


@pytest.fixture(scope="module")
def ner_export(tagger, tmp_path_factory):
    return pathlib.Path(export(tagger, tmp_path_factory.mktemp("ner") / "ner",
                               formats=["saved_model", "tflite", "onnx"]))


@pytest.fixture(scope="module")
def qa_pairs(qa):
    pairs, _ = toy_qa(6, 1)
    return pairs + [("Who is the code?", "Zoë sat on the mat, code Dave ."), ("what", "a")]


@pytest.fixture(scope="module")
def qa_export(qa, qa_pairs, tmp_path_factory):
    # A threshold inside the range of the margins, so some pairs are answered and some are not.
    margins = sorted(answer["score"] for answer in qa.predict(qa_pairs))
    qa.null_threshold = (margins[2] + margins[3]) / 2
    return pathlib.Path(export(qa, tmp_path_factory.mktemp("qa") / "qa", formats=["saved_model", "tflite", "onnx"],
                               verify_data=qa_pairs))


@pytest.mark.parametrize("format", ["saved_model", "tflite", "onnx"])
def test_ner_formats_return_the_keras_entities(tagger, ner_export, format):
    with pytest.warns(UserWarning, match="did not fit"):
        expected = tagger.predict(NER_TEXTS)
    assert any(expected)  # trained: there are entities to agree on
    got = predictor(ner_export, format).predict(NER_TEXTS)
    assert got == expected
    for text, entities in zip(NER_TEXTS, got):
        assert all(text[e["start"]:e["end"]] == e["text"] for e in entities)
    parity = json.load(open(ner_export / "manifest.json"))["artifacts"][format]["parity"]
    assert parity["entity_f1"] == 1.0 and parity["max_abs_diff"] <= 1e-4


def test_ner_saved_model_words_are_the_tokenizer_words(ner_export, tagger):
    outputs = predictor(ner_export, "saved_model").runner.signature(texts=tf.constant(NER_TEXTS))
    encoded = WordPieceOffsets(VOCAB).encode(NER_TEXTS)
    with pytest.warns(UserWarning, match="did not fit"):
        tags = tagger.predict_tags([[word for word, _, _ in item["words"]] for item in encoded])
    for row, item in enumerate(encoded):
        count = int(outputs["word_count"][row])
        assert count == len(item["words"])
        spans = list(zip(outputs["word_starts"][row, :count].numpy(), outputs["word_ends"][row, :count].numpy()))
        assert spans == [(start, end) for _, start, end in item["words"]]
        labels = [label.decode() for label in outputs["word_labels"][row, :count].numpy()]
        if row != 5:  # "ÀLICE" is one word here, while pre-split words are re-split as BERT would
            assert labels == tags[row]
    assert outputs["word_labels"][3, -1].numpy() == b"O"  # the truncated words of the long text


def test_ner_quantized_tflite_and_int8_refusal(tagger, tmp_path):
    path = pathlib.Path(export(tagger, tmp_path / "q", formats=["tflite"], quantization="dynamic_int8",
                               verify_data=NER_TEXTS[:3], min_label_agreement=0.9))
    parity = json.load(open(path / "manifest.json"))["artifacts"]["tflite"]["parity"]
    assert parity["label_agreement"] >= 0.9 and 0.0 <= parity["entity_f1"] <= 1.0
    assert Predictor(path).predict(NER_TEXTS[0]) == tagger.predict(NER_TEXTS[:1])
    with pytest.raises(ValueError, match="int8.*dynamic_int8"):
        export(tagger, tmp_path / "int8", formats=["tflite"], quantization="int8", representative_data=NER_TEXTS[:2])


@pytest.mark.parametrize("format", ["saved_model", "tflite", "onnx"])
def test_qa_formats_return_the_keras_answers(qa, qa_export, qa_pairs, format):
    expected = qa.predict(qa_pairs)
    assert {bool(answer["text"]) for answer in expected} == {True, False}  # answered and not, by the threshold
    got = predictor(qa_export, format).predict(qa_pairs)
    for ours, theirs, (_, context) in zip(got, expected, qa_pairs):
        assert (ours["text"], ours["start"], ours["end"]) == (theirs["text"], theirs["start"], theirs["end"])
        assert ours["score"] == pytest.approx(theirs["score"], abs=1e-4)
        assert context[ours["start"]:ours["end"]] == ours["text"]
    parity = json.load(open(qa_export / "manifest.json"))["artifacts"][format]["parity"]
    assert parity["span_agreement"] == 1.0 and parity["max_abs_diff"] <= 1e-4


def test_qa_saved_model_windows_in_the_graph(qa, qa_export, qa_pairs):
    questions, contexts = zip(*qa_pairs)
    signature = predictor(qa_export, "saved_model").runner.signature
    outputs = signature(questions=tf.constant(questions), contexts=tf.constant(contexts))
    encoded = qa.encode(qa_pairs)
    assert outputs["windows"].numpy().tolist() == np.bincount(encoded["example"]).tolist()
    assert max(outputs["windows"].numpy()) >= 2


@pytest.mark.parametrize("format", ["saved_model", "tflite"])
def test_qa_question_longer_than_the_window_is_refused(qa_export, format):
    long_question = " ".join(["what"] * 20)
    with pytest.raises(ValueError, match="question of example 1 has 20 pieces"):
        predictor(qa_export, format).predict([("what is the code?", "code Bob"), (long_question, "code Bob")])


def test_qa_verify_reports_span_agreement(qa, qa_export, qa_pairs):
    figures = verify(qa_export, qa, qa_pairs[:3], formats=["tflite"])
    assert figures["tflite"]["span_agreement"] == 1.0 and figures["tflite"]["examples"] == 3


@pytest.fixture
def serving():
    servers = []

    def start(path, format):
        server = Server(predictor(path, format), port=0, max_wait_ms=5)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_serve_ner_and_qa(serving, ner_export, qa_export, tagger, qa, qa_pairs):
    server = serving(ner_export, "tflite")
    status, body = request(server, "POST", "/predict", {"texts": NER_TEXTS[:2]})
    assert status == 200 and [p["entities"] for p in body["predictions"]] == tagger.predict(NER_TEXTS[:2])
    status, body = request(server, "POST", "/predict", {"texts": [3]})
    assert status == 400 and "list of strings" in body["error"]

    server = serving(qa_export, "saved_model")
    questions, contexts = (list(part) for part in zip(*qa_pairs[:3]))
    status, body = request(server, "POST", "/predict", {"questions": questions, "contexts": contexts})
    assert status == 200
    assert [p["text"] for p in body["predictions"]] == [a["text"] for a in qa.predict(qa_pairs[:3])]
    status, body = request(server, "POST", "/predict", {"question": questions[0], "context": contexts[0]})
    assert status == 200 and len(body["predictions"]) == 1
    status, health = request(server, "GET", "/health")
    assert health["kind"] == "question_answerer" and health["inputs"] == ["questions", "contexts"]


def test_cli_predict_ner_and_qa(ner_export, qa_export, tagger, qa, qa_pairs, capsys):
    assert main(["predict", str(ner_export), "--format", "tflite", "--text", NER_TEXTS[0]]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["text"] == NER_TEXTS[0] and line["entities"] == tagger.predict(NER_TEXTS[:1])[0]
    question, context = qa_pairs[0]
    assert main(["predict", str(qa_export), "--format", "onnx", "--question", question, "--context", context]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["context"] == context and line["text"] == qa.predict(qa_pairs[:1])[0]["text"]
    assert main(["predict", str(qa_export), "--format", "tflite", "--text", "hello"]) == 1
    assert "--question/--context" in capsys.readouterr().err
    assert main(["predict", str(qa_export), "--format", "tflite", "--question", "a", "--question", "b",
                 "--context", "c"]) == 1
    assert "one --context per --question" in capsys.readouterr().err
