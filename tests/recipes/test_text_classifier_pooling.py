"""`text_classifier(..., pooling="mean")`: the head sees the mean of the real tokens' vectors."""

import keras
import numpy as np
import pytest

import keras_ptft as kp


def _classifier(vocabulary, pooling):
    bert = kp.models.Bert(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
                          intermediate_dim=16, max_sequence_length=16)
    return kp.recipes.text_classifier(bert, num_classes=3, vocabulary=vocabulary, sequence_length=10,
                                      pooling=pooling, verbose=False)


def test_mean_pooling_matches_numpy(toy_vocabulary):
    classifier = _classifier(toy_vocabulary, "mean")
    features = classifier.preprocessor(["the cat sat on the mat", "the dog"])
    mask = keras.ops.convert_to_numpy(features["padding_mask"]).astype("float32")
    assert 0 < mask[1].sum() < mask[0].sum() < mask.shape[1]  # both rows padded, unequally

    sequence = keras.ops.convert_to_numpy(classifier.backbone(features, training=False)["sequence_output"])
    pooled = (sequence * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in classifier.output_dense.weights)
    logits = pooled @ kernel + bias
    want = np.exp(logits - logits.max(-1, keepdims=True))
    want /= want.sum(-1, keepdims=True)
    got = keras.ops.convert_to_numpy(classifier(features, training=False))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The [CLS] pooler path gives something else on the same weights.
    cls_pooled = keras.ops.convert_to_numpy(classifier.backbone(features, training=False)["pooled_output"])
    assert not np.allclose(cls_pooled, pooled, atol=1e-3)


@pytest.mark.slow
def test_pooling_survives_save_and_load(toy_vocabulary, tmp_path):
    classifier = _classifier(toy_vocabulary, "mean")
    assert classifier.get_config()["pooling"] == "mean"
    assert "pooling" not in _classifier(toy_vocabulary, "cls").get_config()  # default config unchanged
    texts = ["the cat sat", "the bird stood on the branch"]
    classifier.save(tmp_path / "clf.keras")
    restored = keras.saving.load_model(tmp_path / "clf.keras")
    assert restored.pooling == "mean"
    np.testing.assert_allclose(restored.predict(texts, verbose=0), classifier.predict(texts, verbose=0), atol=1e-6)


def test_unknown_pooling_is_named(toy_vocabulary):
    with pytest.raises(ValueError, match="`pooling` must be \"cls\" or \"mean\", received pooling='max'"):
        _classifier(toy_vocabulary, "max")
