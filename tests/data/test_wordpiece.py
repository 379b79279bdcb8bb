import gzip
import pathlib
import unicodedata

import pytest
import tensorflow as tf

from keras_ptft.data import (
    SPECIAL_TOKENS,
    BertPreprocessor,
    load_vocabulary,
    save_vocabulary,
    train_wordpiece,
)

# Subwords must occur about 10 times to enter the vocabulary (TensorFlow Text's learner), hence
# the repetition.
CHINESE = ["我爱北京天安门", "北京是中国的首都"] * 10
ACCENTED = ["Café Naïve", "Crème brûlée à la café"] * 12


def test_special_tokens_come_first_and_frequent_words_are_tokens(toy_corpus):
    vocabulary = train_wordpiece(toy_corpus, vocabulary_size=100)
    assert tuple(vocabulary[: len(SPECIAL_TOKENS)]) == SPECIAL_TOKENS
    assert vocabulary[0] == "[PAD]"
    assert len(set(vocabulary)) == len(vocabulary)
    assert all(isinstance(token, str) and token for token in vocabulary)
    assert {"the", "cat", "on"} <= set(vocabulary)


def test_vocabulary_size_is_an_upper_bound(toy_corpus):
    for size in (6, 30, 60):
        vocabulary = train_wordpiece(toy_corpus, vocabulary_size=size)
        assert len(SPECIAL_TOKENS) < len(vocabulary) <= size, size


def test_vocabulary_covers_its_corpus_without_unknown_tokens(toy_corpus):
    # The trainer must split text exactly as the tokenizer does, or corpus words go to [UNK].
    corpus = toy_corpus + CHINESE + ACCENTED + ["Don't stop: e-mail, U.S.A.!"] * 10
    vocabulary = train_wordpiece(corpus, vocabulary_size=200)
    preprocessor = BertPreprocessor(vocabulary, sequence_length=32)
    token_ids = preprocessor(corpus)["token_ids"]
    assert int(tf.reduce_sum(tf.cast(tf.equal(token_ids, preprocessor.unk_token_id), "int32"))) == 0


def test_chinese_characters_are_single_tokens():
    vocabulary = train_wordpiece(CHINESE, vocabulary_size=100)
    characters = set("".join(CHINESE))
    assert characters <= set(vocabulary)
    han = [t for t in vocabulary if any(unicodedata.name(c, "").startswith("CJK") for c in t)]
    assert all(len(token.removeprefix("##")) == 1 for token in han)


def test_accents_are_stripped_when_lowercasing_by_default():
    vocabulary = train_wordpiece(ACCENTED, vocabulary_size=100)
    assert "cafe" in vocabulary and "naive" in vocabulary
    learned = vocabulary[len(SPECIAL_TOKENS) :]
    assert not [t for t in learned if any(c in t for c in "éèïûàCN")]


def test_accents_are_kept_when_asked_or_when_cased():
    kept = train_wordpiece(ACCENTED, vocabulary_size=100, strip_accents=False)
    assert "café" in kept and "cafe" not in kept
    cased = train_wordpiece(ACCENTED, vocabulary_size=100, lowercase=False)
    assert "Café" in cased and "Naïve" in cased


def test_files_gzip_and_datasets_give_the_same_vocabulary(tmp_path, toy_corpus):
    expected = train_wordpiece(toy_corpus, vocabulary_size=40)
    half = len(toy_corpus) // 2
    plain = tmp_path / "a.txt"
    plain.write_text("\n".join(toy_corpus[:half]) + "\n", encoding="utf-8")
    compressed = tmp_path / "b.txt.gz"
    with gzip.open(compressed, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(toy_corpus[half:]) + "\n")
    assert train_wordpiece([plain, compressed], vocabulary_size=40) == expected
    assert train_wordpiece([str(plain), str(compressed)], vocabulary_size=40) == expected
    both = tmp_path / "both.txt"
    both.write_text("\n".join(toy_corpus), encoding="utf-8")
    assert train_wordpiece(str(both), vocabulary_size=40) == expected
    dataset = tf.data.Dataset.from_tensor_slices(toy_corpus)
    assert train_wordpiece(dataset, vocabulary_size=40) == expected
    assert train_wordpiece(dataset.batch(7), vocabulary_size=40) == expected


def test_vocabulary_file_round_trip(tmp_path, toy_corpus):
    path = tmp_path / "vocab.txt"
    vocabulary = train_wordpiece(toy_corpus, vocabulary_size=40, vocabulary_file=path)
    assert path.read_text(encoding="utf-8").splitlines() == vocabulary
    assert load_vocabulary(path) == vocabulary
    save_vocabulary(["[PAD]", "中", "##文", "café"], tmp_path / "other.txt")
    assert load_vocabulary(str(tmp_path / "other.txt")) == ["[PAD]", "中", "##文", "café"]


def test_vocabulary_files_are_checked(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        load_vocabulary(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="`vocabulary`.*line breaks"):
        save_vocabulary(["[PAD]", "two\nlines"], tmp_path / "bad.txt")


def test_empty_corpus_is_rejected(tmp_path):
    blank_file = tmp_path / "blank.txt"
    blank_file.write_text("\n \n", encoding="utf-8")
    blank_dataset = tf.data.Dataset.from_tensor_slices(["", " "])
    for texts in ([], ["", "   ", "\n"], blank_file, blank_dataset):
        with pytest.raises(ValueError, match="`texts_or_files` holds no text"):
            train_wordpiece(texts, vocabulary_size=20)


def test_vocabulary_size_must_exceed_the_reserved_tokens():
    for size in (5, 3, 0, 12.5, "100"):
        with pytest.raises(ValueError, match=rf"`vocabulary_size` must be an int.*={size!r}"):
            train_wordpiece(["the cat sat"], vocabulary_size=size)


def test_non_string_texts_are_rejected():
    with pytest.raises(ValueError, match=r"`texts_or_files` must hold strings.*int at index 0"):
        train_wordpiece([1, 2, 3], vocabulary_size=20)
    with pytest.raises(ValueError, match=r"`texts_or_files`, a tf.data.Dataset, must yield string"):
        train_wordpiece(tf.data.Dataset.from_tensor_slices([1, 2]), vocabulary_size=20)
    with pytest.raises(ValueError, match=r"`texts_or_files` must be a list of strings"):
        train_wordpiece(None, vocabulary_size=20)


def test_missing_files_are_named(tmp_path):
    missing = tmp_path / "no_such_corpus.txt"
    with pytest.raises(FileNotFoundError, match=r"`texts_or_files`.*no_such_corpus\.txt"):
        train_wordpiece(str(missing), vocabulary_size=20)
    with pytest.raises(FileNotFoundError, match=r"no_such_corpus\.txt"):
        train_wordpiece([pathlib.Path(missing)], vocabulary_size=20)


def test_reserved_tokens_are_checked():
    with pytest.raises(ValueError, match="`reserved_tokens`"):
        train_wordpiece(["the cat"], vocabulary_size=20, reserved_tokens="[PAD]")
    with pytest.raises(ValueError, match="`reserved_tokens` must hold distinct"):
        train_wordpiece(["the cat"], vocabulary_size=20, reserved_tokens=["[PAD]", "[PAD]"])


def test_a_list_of_missing_paths_is_refused_not_learned(tmp_path):
    # Before: the vocabulary was learned from the characters of the path.
    with pytest.raises(FileNotFoundError, match=r"looks like a list of file paths.*'/nonexistent/file\.txt'"):
        train_wordpiece(["/nonexistent/file.txt"], vocabulary_size=20)
    real = tmp_path / "a.txt"
    real.write_text("the cat sat\n" * 20, encoding="utf-8")
    with pytest.raises(FileNotFoundError, match=r"1 of them are not files: \['corpus/b\.txt'\]"):
        train_wordpiece([str(real), "corpus/b.txt"], vocabulary_size=20)
    # Documents that merely contain a slash or end in a word are text, as before.
    vocabulary = train_wordpiece(["cats and/or dogs sat"] * 20 + ["read the notes.txt"] * 20, vocabulary_size=40)
    assert "cats" in vocabulary and "dogs" in vocabulary


def test_a_corrupt_gzip_corpus_is_named(tmp_path):
    good = tmp_path / "corpus.txt.gz"
    with gzip.open(good, "wt", encoding="utf-8") as handle:
        handle.write("the cat sat on the mat\n" * 3000)
    (tmp_path / "cut.txt.gz").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=r"`texts_or_files`: '.*cut\.txt\.gz' is a truncated gzip file"):
        train_wordpiece(str(tmp_path / "cut.txt.gz"), vocabulary_size=20)
    (tmp_path / "plain.txt.gz").write_text("the cat\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"plain\.txt\.gz' is not a gzip file"):
        train_wordpiece([pathlib.Path(tmp_path / "plain.txt.gz")], vocabulary_size=20)
    (tmp_path / "latin1.txt").write_bytes("café\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1\.txt' is not UTF-8 text"):
        load_vocabulary(tmp_path / "latin1.txt")
