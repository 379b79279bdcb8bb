import random

import keras_hub
import numpy as np
import pytest

import keras_ptft as kp
from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

CORPUS = ["the quick brown fox jumps over the lazy dog", "the dog sleeps", "中文 文本 中文", "emoji 🙂 🙂 fox"] * 6


@pytest.fixture(scope="module")
def trained():
    return kp.data.train_bpe(CORPUS, vocabulary_size=300, verbose=False)


def _random_unicode(rng: random.Random, length: int) -> str:
    pools = [(0x20, 0x7E), (0xA0, 0x24F), (0x4E00, 0x9FFF), (0x1F300, 0x1FAFF), (0x0400, 0x04FF)]
    chars = []
    for _ in range(length):
        low, high = rng.choice(pools)
        chars.append(chr(rng.randint(low, high)))
        if rng.random() < 0.2:
            chars.append(rng.choice([" ", "  ", "\n", "\t"]))
    return "".join(chars)


def test_round_trip_of_random_unicode(trained):
    tokenizer = kp.data.bpe_tokenizer(*trained)
    rng = random.Random(0)
    texts = [_random_unicode(rng, rng.randint(1, 40)) for _ in range(40)] + ["中文 🙂 the fox", " leading", "x  "]
    ids = tokenizer(texts)
    assert tokenizer.detokenize(ids) == texts


def test_vocabulary_layout_and_size(trained):
    vocabulary, merges = trained
    assert len(vocabulary) == 300
    assert vocabulary["<|pad|>"] == 0 and vocabulary["<|endoftext|>"] == 1
    assert set(bytes_to_unicode()[1]) <= set(vocabulary)
    assert sorted(vocabulary.values()) == list(range(300))
    assert len(merges) == 300 - 258


def _reference_bpe(word: str, merges: list[str]) -> list[str]:
    """Plain-Python BPE: repeatedly apply the best-ranked merge (Sennrich et al., 2016)."""
    ranks = {tuple(m.split(" ")): i for i, m in enumerate(merges)}
    symbols = list(word)
    while len(symbols) > 1:
        pairs = [(ranks.get(p, 1 << 30), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        symbols[i : i + 2] = [symbols[i] + symbols[i + 1]]
    return symbols


def test_keras_hub_applies_the_learned_merges_like_a_reference_bpe(trained):
    vocabulary, merges = trained
    tokenizer = keras_hub.tokenizers.BytePairTokenizer(vocabulary, merges)
    encoder = {raw[0]: char for raw, char in zip(*bytes_to_unicode())}
    for word in ["the", " quick", " dog", " sleeps", "中文", " 🙂", " foxes"]:
        expected = [vocabulary[s] for s in _reference_bpe("".join(encoder[b] for b in word.encode()), merges)]
        assert list(np.asarray(tokenizer(word))) == expected, word
    # Frequent words became single tokens.
    assert len(np.asarray(tokenizer(" the"))) == 1


def test_training_reads_files(tmp_path, trained):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS), encoding="utf-8")
    assert kp.data.train_bpe(str(path), vocabulary_size=300, verbose=False) == trained


def test_corpus_too_small_for_the_vocabulary():
    with pytest.raises(ValueError, match="too small for vocabulary_size=400"):
        kp.data.train_bpe(["tiny corpus"] * 3, vocabulary_size=400, verbose=False)


@pytest.mark.parametrize("size", [100, 258, "big"])
def test_vocabulary_size_below_the_byte_alphabet_is_rejected(size):
    with pytest.raises(ValueError, match="vocabulary_size"):
        kp.data.train_bpe(CORPUS, vocabulary_size=size, verbose=False)


def test_tokenizer_serializes(trained):
    tokenizer = kp.data.bpe_tokenizer(*trained)
    clone = kp.data.BPETokenizer.from_config(tokenizer.get_config())
    clone.set_vocabulary_and_merges(*trained)
    assert clone.pad_token_id == 0 and clone.end_token_id == 1
    np.testing.assert_array_equal(np.asarray(clone("the fox")), np.asarray(tokenizer("the fox")))


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_sentencepiece_round_trip(model_type):
    pytest.importorskip("sentencepiece")
    texts = [f"sentence number {i} about the quick brown fox" for i in range(50)]
    proto = kp.data.train_sentencepiece(texts, vocabulary_size=38, model_type=model_type)
    tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(proto=proto)
    assert tokenizer.vocabulary_size() == 38
    assert tokenizer.detokenize(tokenizer("the quick brown fox")) == "the quick brown fox"


def test_sentencepiece_corpus_too_small():
    pytest.importorskip("sentencepiece")
    with pytest.raises(ValueError, match="vocabulary_size=5000"):
        kp.data.train_sentencepiece(["a b c"] * 3, vocabulary_size=5000)


@pytest.mark.parametrize("train", [kp.data.train_bpe, kp.data.train_sentencepiece])
def test_missing_paths_are_refused_not_learned(train, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"file paths.*'/nonexistent/file\.txt'"):
        train(["/nonexistent/file.txt"], vocabulary_size=300)
    with pytest.raises(FileNotFoundError, match=r"'data/corpus\.txt'"):
        train("data/corpus.txt", vocabulary_size=300)
    (tmp_path / "cut.txt.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6)
    with pytest.raises(ValueError, match=r"cut\.txt\.gz' is a (truncated|corrupt) gzip file"):
        train(str(tmp_path / "cut.txt.gz"), vocabulary_size=300)
