import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

# A corpus where the masked word is predictable from its neighbour: "the cat sat on the mat",
# "the dog lay on the rug", ... Each animal always goes with the same place and verb.
PAIRS = [("cat", "sat", "mat"), ("dog", "lay", "rug"), ("bird", "stood", "branch"), ("fish", "swam", "pond")]
TOY_CORPUS = [f"the {animal} {verb} on the {place}" for animal, verb, place in PAIRS] * 24


@pytest.fixture
def toy_corpus():
    return list(TOY_CORPUS)


@pytest.fixture
def toy_vocabulary():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    words = sorted({w for text in TOY_CORPUS for w in text.split()})
    return specials + words + ["##s", "##ing", "cats", "big", "small", "中", "文"]


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()
