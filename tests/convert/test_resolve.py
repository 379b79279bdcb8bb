"""load_checkpoint: every kind of checkpoint folder by path, and a clear refusal of anything else."""

import json

import keras
import keras_hub
import numpy as np
import pytest

import keras_ptft as kp
from keras_ptft import convert
from keras_ptft.models.bert import Bert
from keras_ptft.tasks.masked_lm import MaskedLM
from tests.convert.hf_folders import VOCAB, tiny_config, tiny_weights, write_folder, write_sentence_transformers_pooling
from tests.convert.test_huggingface import minilm_folder

FEATURES = {
    "token_ids": np.array([[2, 5, 6, 7, 3, 0]], "int32"),
    "segment_ids": np.zeros((1, 6), "int32"),
    "padding_mask": np.array([[1, 1, 1, 1, 1, 0]], "int32"),
}


def _sequence_output(backbone):
    return np.asarray(backbone(FEATURES)["sequence_output"])


def _hf_folder(path, pooling=None):
    config = tiny_config()
    write_folder(path, config, tiny_weights(config))
    if pooling is not None:
        write_sentence_transformers_pooling(path, **pooling)
    return str(path)


def test_a_folder_saved_here_loads_with_its_tokenizer(tmp_path):
    keras.utils.set_random_seed(0)
    bert = Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                max_sequence_length=8)
    MaskedLM(bert, vocabulary=VOCAB, sequence_length=8).save_to_preset(str(tmp_path))
    checkpoint = convert.load_checkpoint(tmp_path)
    assert checkpoint.kind == "keras_ptft" and checkpoint.pooling is None
    assert checkpoint.tokenizer.get_vocabulary() == VOCAB
    np.testing.assert_allclose(_sequence_output(checkpoint.backbone), _sequence_output(bert), atol=1e-6)


def test_a_keras_hub_preset_loads_as_our_bert(tmp_path):
    keras.utils.set_random_seed(0)
    source = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8,
                                           intermediate_dim=16, max_sequence_length=8)
    source.save_to_preset(str(tmp_path))
    keras_hub.models.BertTokenizer(vocabulary=VOCAB).save_to_preset(str(tmp_path))
    checkpoint = convert.load_checkpoint(tmp_path, sequence_length=6)
    assert checkpoint.kind == "keras_hub" and isinstance(checkpoint.backbone, Bert)
    assert checkpoint.preprocessor is not None
    np.testing.assert_allclose(_sequence_output(checkpoint.backbone), _sequence_output(source), atol=1e-5)


def test_a_hugging_face_folder_converts(tmp_path):
    checkpoint = convert.load_checkpoint(_hf_folder(tmp_path), sequence_length=6)
    assert checkpoint.kind == "huggingface" and checkpoint.pooling is None
    assert isinstance(checkpoint.backbone, Bert) and checkpoint.preprocessor is not None


@pytest.mark.parametrize("flag, pooling", [("pooling_mode_mean_tokens", "mean"), ("pooling_mode_cls_token", "cls")])
def test_a_sentence_transformers_folder_brings_its_pooling(tmp_path, flag, pooling):
    checkpoint = convert.load_checkpoint(_hf_folder(tmp_path, {flag: True}), sequence_length=6)
    assert checkpoint.kind == "sentence_transformers" and checkpoint.pooling == pooling


def test_the_real_minilm_folder_is_recognised_as_mean_pooled():
    folder = minilm_folder()
    assert convert.checkpoint_kind(folder) == "sentence_transformers"
    assert convert.sentence_transformers_pooling(folder) == "mean"


def test_two_pooling_modes_at_once_are_refused(tmp_path):
    folder = _hf_folder(tmp_path, {"pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True})
    with pytest.raises(ValueError, match="exactly one must be on"):
        convert.sentence_transformers_pooling(folder)


def test_a_folder_of_something_else_is_refused_naming_what_it_holds(tmp_path):
    (tmp_path / "mydata.txt").write_text("not a model")
    (tmp_path / "config.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match=r"it holds config\.json, mydata\.txt"):
        convert.load_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        convert.load_checkpoint(tmp_path / "missing")


def test_a_hugging_face_config_without_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model.safetensors"):
        convert.checkpoint_kind(tmp_path)


def test_text_classifier_takes_a_hugging_face_folder_by_path(tmp_path):
    classifier = kp.recipes.text_classifier(_hf_folder(tmp_path), num_classes=2, sequence_length=6)
    assert isinstance(classifier.backbone, Bert) and classifier.pooling == "cls"
    assert classifier.predict(["the cat sat"]).shape == (1, 2)


def test_text_classifier_uses_the_pooling_a_sentence_transformers_folder_declares(tmp_path):
    folder = _hf_folder(tmp_path, {"pooling_mode_mean_tokens": True})
    assert kp.recipes.text_classifier(folder, num_classes=2, sequence_length=6).pooling == "mean"
    assert kp.recipes.text_classifier(folder, num_classes=2, sequence_length=6, pooling="cls").pooling == "cls"


def test_the_real_minilm_folder_fine_tunes_mean_pooled_at_bert_rate():
    classifier = kp.recipes.text_classifier(minilm_folder(), num_classes=2, sequence_length=16)
    assert classifier.pooling == "mean" and classifier.backbone.hidden_dim == 384
    # learning_rate="auto" keeps BERT's 5e-5 for a 384-wide encoder.
    assert classifier.optimizer._learning_rate.get_config()["peak_learning_rate"] == 5e-5


def test_text_classifier_refuses_a_folder_of_something_else(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"it holds notes\.txt"):
        kp.recipes.text_classifier(tmp_path, num_classes=2)
