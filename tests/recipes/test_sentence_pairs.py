"""Sentence pairs (NLI, paraphrase, similarity) with `text_classifier` / `text_regressor`: `(firsts, seconds)`."""

import numpy as np
import pytest

import keras
from keras_ptft.models import Bert
from keras_ptft.recipes import text_classifier, text_regressor

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog", "a"]
CLS, SEP, PAD = 2, 3, 0
THE, CAT, SAT, ON, MAT, DOG, A = 5, 6, 7, 8, 9, 10, 11


def backbone():
    return Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                max_sequence_length=10)


def test_pair_rows_segment_ids_and_longer_member_cut_first():
    classifier = text_classifier(backbone(), 3, vocabulary=VOCAB, sequence_length=8)
    long, short = "the cat sat on the mat", "a dog"
    # Hand-computed: 8 = [CLS] + [SEP] + [SEP] + 5 pieces; "a dog" (2) is kept whole, the 6-piece
    # text loses its last 3, wherever it stands in the pair.
    features = {k: np.asarray(v).tolist() for k, v in classifier.preprocessor(([long, short], [short, long])).items()}
    assert features["token_ids"] == [[CLS, THE, CAT, SAT, SEP, A, DOG, SEP], [CLS, A, DOG, SEP, THE, CAT, SAT, SEP]]
    assert features["segment_ids"] == [[0, 0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1]]
    assert features["padding_mask"] == [[1] * 8] * 2
    # Both too long: the room is shared, the first text taking the odd piece.
    both = classifier.preprocessor(([long], ["the dog sat on a mat"]))
    assert np.asarray(both["token_ids"]).tolist() == [[CLS, THE, CAT, SAT, SEP, THE, DOG, SEP]]
    # Short pairs are padded, padding in segment 0.
    short_pair = classifier.preprocessor((["the cat"], ["a dog"]))
    assert np.asarray(short_pair["segment_ids"]).tolist() == [[0, 0, 0, 0, 1, 1, 1, 0]]


def test_classifier_and_regressor_fit_and_predict_on_pairs():
    keras.utils.set_random_seed(0)
    firsts = ["the cat sat", "the dog sat", "a cat on the mat", "a dog on the mat"] * 4
    seconds = ["a cat", "a cat", "the dog", "the dog"] * 4
    labels = np.array([1, 0, 0, 1] * 4)  # paraphrase-like: the same animal in both
    classifier = text_classifier(backbone(), 2, vocabulary=VOCAB, sequence_length=10, learning_rate=1e-2)
    classifier.fit((firsts, seconds), labels, batch_size=8, epochs=1, verbose=0)
    probabilities = classifier.predict((firsts[:4], seconds[:4]), verbose=0)
    expected = keras.ops.convert_to_numpy(classifier(classifier.preprocessor((firsts[:4], seconds[:4]))))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    # The rows `predict` ran are the two-segment rows: `[CLS] the cat sat [SEP] a cat [SEP] [PAD] [PAD]`.
    row = {"token_ids": [[CLS, THE, CAT, SAT, SEP, A, CAT, SEP, PAD, PAD]],
           "segment_ids": [[0, 0, 0, 0, 0, 1, 1, 1, 0, 0]], "padding_mask": [[1] * 8 + [0, 0]]}
    by_hand = keras.ops.convert_to_numpy(classifier({k: np.array(v, "int32") for k, v in row.items()}))
    np.testing.assert_allclose(probabilities[:1], by_hand, atol=1e-6)
    metrics = classifier.evaluate((firsts[:4], seconds[:4]), labels[:4], verbose=0, return_dict=True)
    assert metrics["accuracy"] == pytest.approx(np.mean(probabilities.argmax(-1) == labels[:4]))

    regressor = text_regressor(backbone(), vocabulary=VOCAB, sequence_length=10, learning_rate=1e-2)
    regressor.fit((firsts, seconds), labels.astype("float32") * 5, batch_size=8, epochs=1, verbose=0)
    assert np.asarray(regressor.predict((firsts[:3], seconds[:3]), verbose=0)).reshape(-1).shape == (3,)
    with pytest.raises(ValueError, match=r"`x\[0\]`.*`x\[1\]`|x\[1\]"):
        classifier.fit((firsts, seconds[:3]), labels, verbose=0)
