import pytest

import keras
from keras_ptft.data import train_wordpiece
from keras_ptft.models import Bert
from keras_ptft.recipes import text_classifier

from export_helpers import MULTILINGUAL, toy_sentiment


@pytest.fixture(scope="session")
def vocabulary():
    texts, _ = toy_sentiment()
    return train_wordpiece(MULTILINGUAL * 4 + texts, vocabulary_size=150)


@pytest.fixture(scope="session")
def classifier(vocabulary):
    """A tiny classifier trained for a few steps, so its labels have margins a real model's have
    (an untrained BERT maps every text to nearly the same pooled output)."""
    keras.utils.set_random_seed(7)
    backbone = Bert(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=16,
                    intermediate_dim=32, max_sequence_length=16)
    model = text_classifier(backbone, 2, vocabulary=vocabulary, sequence_length=16, learning_rate=1e-2,
                            label_names=["negative", "positive"], jit_compile=False)
    texts, labels = toy_sentiment()
    model.fit(texts, labels, batch_size=16, epochs=4, verbose=0)
    return model


@pytest.fixture(scope="session")
def exported(classifier, tmp_path_factory):
    """One float export with every format, shared by the tests that only read it."""
    from keras_ptft.export import export

    texts, _ = toy_sentiment(32, seed=1)
    return export(classifier, tmp_path_factory.mktemp("exports") / "sentiment",
                  verify_data=texts + MULTILINGUAL)


@pytest.fixture(scope="session")
def translator():
    """A tiny translator fit for a few seconds on a word-for-word toy task, so its translations
    depend on the source and end with the end token, as a trained model's do (an untrained one
    writes the same byte pieces whatever the source)."""
    import keras_ptft as kp
    from export_helpers import toy_pairs

    sources, targets = toy_pairs()
    tokenizer = kp.data.train_seq2seq_tokenizer(sources + targets, vocabulary_size=320)
    keras.utils.set_random_seed(3)
    backbone = kp.models.Seq2Seq(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2,
                                 hidden_dim=16, intermediate_dim=32, max_sequence_length=12, dropout=0.0)
    model = kp.recipes.translator(backbone, tokenizer, sequence_length=10, learning_rate=1e-2)
    model.jit_compile = False  # XLA compiles each batch shape and sampler anew: seconds per parity batch
    # 10 epochs, not the 6 that once sufficed: at 6, whether greedy decoding already depends on the
    # source hinged on the shuffle order (2 distinct translations of 6 with one order, 5 with another).
    model.fit((sources, targets), epochs=10, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="session")
def translator_exported(translator, tmp_path_factory):
    """SavedModel (greedy + beam 2) and TFLite, verified on sources of both scripts."""
    from keras_ptft.export import export
    from export_helpers import TRANSLATOR_SOURCES

    return export(translator, tmp_path_factory.mktemp("translator") / "en_zh", max_length=9, num_beams=2,
                  verify_data=TRANSLATOR_SOURCES, save_keras=False)
