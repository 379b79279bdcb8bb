import gzip
import os

import pytest

import keras_ptft as kp


def write(path, text):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.write(text)
    return path


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC


"""


@pytest.mark.parametrize("name", ["a.txt", "a.txt.gz"])
def test_sentences_documents_and_gzip(tmp_path, name):
    words, tags = kp.data.read_conll(write(tmp_path / name, CONLL))
    assert words == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]


def test_column_choice(tmp_path):
    path = write(tmp_path / "a.txt", CONLL)
    _, chunks = kp.data.read_conll(path, tag_column=2)
    assert chunks[1] == ["B-NP", "I-NP"]
    pos, _ = kp.data.read_conll(path, word_column=1)
    assert pos[0] == ["NNP", "VBZ", "JJ"]
    with pytest.raises(ValueError, match="tag_column"):
        kp.data.read_conll(path, tag_column=7)


def test_malformed_line_names_its_number(tmp_path):
    path = write(tmp_path / "bad.txt", "EU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(ValueError, match=r"line 2: expected 4 columns .* received 3"):
        kp.data.read_conll(path)
    with pytest.raises(ValueError, match="line 1: a CoNLL line needs a word and a tag column"):
        kp.data.read_conll(write(tmp_path / "one.txt", "EU\n"))
    with pytest.raises(FileNotFoundError, match="path"):
        kp.data.read_conll(tmp_path / "missing.txt")


def test_shared_conll_dev_counts():
    data_dir = kp.data.shared_data_dir()
    path = os.path.join(data_dir or "", "conll2003", "dev.txt.gz")
    if not os.path.exists(path):
        pytest.skip("the shared CoNLL-2003 data is not present")
    words, tags = kp.data.read_conll(path)
    # The figures of the data folder's README (eng.testa).
    assert len(words) == 3250
    assert sum(map(len, words)) == 51362
    assert sum(tag.startswith("B-") for sentence in tags for tag in sentence) == 5942
    assert kp.data.label_names_from_tags(tags) == [
        "O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
