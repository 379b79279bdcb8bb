"""keras-hub presets ↔ keras_ptft Bert: both directions give the same outputs."""

import keras
import keras_hub
import numpy as np
import pytest

from keras_ptft import convert
from keras_ptft.data.preprocessing import BertPreprocessor
from keras_ptft.models.bert import Bert

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat"]


def _features():
    return {
        "token_ids": np.array([[2, 5, 6, 7, 3, 0], [2, 8, 9, 3, 0, 0]], "int32"),
        "segment_ids": np.array([[0, 0, 0, 0, 0, 0], [0, 1, 1, 1, 0, 0]], "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]], "int32"),
    }


def _outputs(model):
    out = model(_features())
    return np.asarray(out["sequence_output"]), np.asarray(out["pooled_output"])


def test_keras_hub_preset_loads_into_bert(tmp_path):
    keras.utils.set_random_seed(0)
    source = keras_hub.models.BertBackbone(
        vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=12, num_segments=3,
    )
    source.save_to_preset(str(tmp_path))
    keras_hub.models.BertTokenizer(vocabulary=VOCAB).save_to_preset(str(tmp_path))

    backbone, preprocessor = convert.from_keras_hub(tmp_path, sequence_length=6)
    assert isinstance(backbone, Bert) and backbone.activation == "gelu_approximate"
    want_seq, want_pooled = _outputs(source)
    got_seq, got_pooled = _outputs(backbone)
    np.testing.assert_allclose(got_seq, want_seq, atol=1e-5)
    np.testing.assert_allclose(got_pooled, want_pooled, atol=1e-5)
    assert np.asarray(preprocessor(["the cat sat"])["token_ids"]).tolist() == [[2, 5, 6, 7, 3, 0]]


def test_bert_saves_as_keras_hub_preset(tmp_path):
    keras.utils.set_random_seed(1)
    bert = Bert(vocabulary_size=len(VOCAB), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
                max_sequence_length=12, activation="gelu_approximate")
    convert.to_keras_hub(bert, tmp_path, preprocessor=BertPreprocessor(VOCAB, sequence_length=6))
    loaded = keras_hub.models.BertBackbone.from_preset(str(tmp_path))
    tokenizer = keras_hub.models.BertTokenizer.from_preset(str(tmp_path))
    assert tokenizer.get_vocabulary() == VOCAB
    for got, want in zip(_outputs(loaded), _outputs(bert)):
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_to_keras_hub_refuses_exact_gelu(tmp_path):
    bert = Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    with pytest.raises(ValueError, match="activation='gelu_approximate'"):
        convert.to_keras_hub(bert, tmp_path)


def test_from_keras_hub_refuses_other_presets(tmp_path):
    (tmp_path / "config.json").write_text('{"registered_name": "keras_hub>GPT2Backbone"}')
    with pytest.raises(ValueError, match="GPT2Backbone"):
        convert.from_keras_hub(tmp_path)
