"""Every recipe taking `backbone_or_path` reads any checkpoint folder through
`keras_ptft.convert.load_checkpoint`: a folder saved here, a keras-hub preset, a Hugging Face folder
(BERT, GPT-2, ViT) and a sentence-transformers folder with its pooling; anything else is refused
naming what the folder holds."""

import keras
import keras_hub
import numpy as np
import pytest

import keras_ptft as kp
from tests.convert.hf_folders import VOCAB, write_bert_folder, write_gpt2_folder, write_sentence_transformers_pooling
from tests.convert.hf_folders import write_vit_folder

TEXTS = ["the cat sat on the mat", "a dog sat on a log"]
GPT_TEXTS = ["where is the cat?", " on the mat", "where is the dog?", " on the rug"] * 4
IMAGES = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype="uint8")


def _saved_bert(path):
    keras.utils.set_random_seed(0)
    bert = kp.models.Bert(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16,
                          max_sequence_length=12)
    kp.tasks.MaskedLM(bert, vocabulary=VOCAB, sequence_length=12).save_to_preset(str(path))
    return str(path)


def _keras_hub_bert(path):
    keras.utils.set_random_seed(0)
    keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=1, num_heads=2, hidden_dim=8,
                                  intermediate_dim=16, max_sequence_length=12).save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary=VOCAB).save_to_preset(str(path))
    return str(path)


def _sentence_transformers(path, **flags):
    return write_sentence_transformers_pooling(write_bert_folder(path), **flags)


BERT_FOLDERS = {
    "keras_ptft": _saved_bert,
    "keras_hub": _keras_hub_bert,
    "huggingface": write_bert_folder,
    "sentence_transformers": lambda path: _sentence_transformers(path, pooling_mode_mean_tokens=True),
}


def _foreign(path):
    path.mkdir()
    (path / "notes.txt").write_text("hello")
    (path / "weights.npz").write_bytes(b"")
    return str(path)


@pytest.mark.parametrize("kind", list(BERT_FOLDERS))
def test_sentence_embedder_reads_every_bert_folder(tmp_path, kind):
    embedder = kp.recipes.sentence_embedder(BERT_FOLDERS[kind](tmp_path / kind), sequence_length=10)
    assert embedder.encode(TEXTS).shape == (2, embedder.backbone.hidden_dim)
    assert embedder.pooling == "mean"  # declared by the sentence-transformers folder, the default otherwise


def test_sentence_embedder_takes_the_declared_cls_pooling(tmp_path):
    embedder = kp.recipes.sentence_embedder(
        _sentence_transformers(tmp_path, pooling_mode_cls_token=True), sequence_length=10)
    assert embedder.pooling == "cls"
    features = embedder.preprocessor(TEXTS)
    first = np.asarray(embedder.backbone(features)["sequence_output"])[:, 0]
    want = first / np.linalg.norm(first, axis=1, keepdims=True)
    np.testing.assert_allclose(embedder.encode(TEXTS), want, atol=1e-5)
    # An explicit pooling wins over the folder's.
    assert kp.recipes.sentence_embedder(str(tmp_path), sequence_length=10, pooling="mean").pooling == "mean"


@pytest.mark.parametrize("recipe", ["text_regressor", "token_classifier", "question_answerer"])
def test_the_other_bert_recipes_read_a_hugging_face_folder(tmp_path, recipe):
    args = {"token_classifier": (["O", "B-X", "I-X"],)}.get(recipe, ())
    task = getattr(kp.recipes, recipe)(write_bert_folder(tmp_path), *args, sequence_length=12)
    assert isinstance(task.backbone, kp.models.Bert)
    assert task.backbone.vocabulary_size == len(VOCAB)


def test_text_generator_reads_a_hugging_face_gpt2_folder(tmp_path):
    converted = kp.convert.from_huggingface(write_gpt2_folder(tmp_path, GPT_TEXTS))
    generator = kp.recipes.text_generator(str(tmp_path), sequence_length=16)
    assert isinstance(generator.backbone, kp.models.GPT)
    for loaded, reference in zip(generator.backbone.get_weights(), converted.backbone.get_weights()):
        np.testing.assert_array_equal(loaded, reference)
    # The folder's byte-level BPE came along: the same ids as the converter's tokenizer.
    ids = np.asarray(generator.preprocessor.tokenizer("where is the cat?"))
    np.testing.assert_array_equal(ids, np.asarray(converted.preprocessor("where is the cat?")))


def test_text_generator_reads_a_folder_saved_here(tmp_path):
    vocabulary, merges = kp.data.train_bpe(GPT_TEXTS, vocabulary_size=264, verbose=False)
    gpt = kp.models.GPT(vocabulary_size=len(vocabulary), num_layers=1, num_heads=2, hidden_dim=8,
                        intermediate_dim=16, max_sequence_length=16)
    kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocabulary, merges), sequence_length=16).save_to_preset(str(tmp_path))
    generator = kp.recipes.text_generator(str(tmp_path))
    assert generator.backbone.hidden_dim == 8 and generator.preprocessor.tokenizer.vocabulary_size() == len(vocabulary)


@pytest.mark.parametrize("recipe, args", [("image_classifier", (3,)), ("image_segmenter", (3,))])
def test_image_recipes_read_a_hugging_face_vit_folder(tmp_path, recipe, args):
    converted = kp.convert.from_huggingface(write_vit_folder(tmp_path))
    task = getattr(kp.recipes, recipe)(str(tmp_path), *args)
    assert task.backbone.image_shape == (8, 8, 3) and task.backbone.patch_size == 4
    features = np.asarray(task.backbone(IMAGES / 255.0)["sequence_output"])
    np.testing.assert_allclose(features, np.asarray(converted.backbone(IMAGES / 255.0)["sequence_output"]), atol=1e-5)


def test_image_classifier_reads_a_folder_saved_here(tmp_path):
    vit = kp.models.ViT(image_shape=(8, 8, 3), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8,
                        intermediate_dim=16)
    vit.save_to_preset(str(tmp_path))
    classifier = kp.recipes.image_classifier(str(tmp_path), 3)
    for loaded, saved in zip(classifier.backbone.get_weights(), vit.get_weights()):
        np.testing.assert_array_equal(loaded, saved)


RECIPES = {
    "text_classifier": lambda path: kp.recipes.text_classifier(path, 2),
    "text_regressor": lambda path: kp.recipes.text_regressor(path),
    "token_classifier": lambda path: kp.recipes.token_classifier(path, ["O", "B-X"]),
    "question_answerer": lambda path: kp.recipes.question_answerer(path),
    "sentence_embedder": lambda path: kp.recipes.sentence_embedder(path),
    "text_generator": lambda path: kp.recipes.text_generator(path),
    "translator": lambda path: kp.recipes.translator(path),
    "image_classifier": lambda path: kp.recipes.image_classifier(path, 2),
    "image_segmenter": lambda path: kp.recipes.image_segmenter(path, 2),
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_a_foreign_folder_is_refused_naming_what_it_holds(tmp_path, recipe):
    with pytest.raises(ValueError, match="not a checkpoint folder this toolkit can load: it holds notes.txt, weights.npz"):
        RECIPES[recipe](_foreign(tmp_path / "foreign"))


@pytest.mark.parametrize("recipe, fragment", [
    ("text_generator", r"must be a GPT backbone or a GPT checkpoint folder, received a ViT \(the huggingface"),
    ("text_classifier", "must be a BERT-style encoder"),
    ("translator", "must be a Seq2Seq backbone"),
])
def test_a_checkpoint_of_another_model_is_refused_naming_it(tmp_path, recipe, fragment):
    with pytest.raises(ValueError, match=fragment):
        RECIPES[recipe](write_vit_folder(tmp_path))


def test_an_image_recipe_refuses_a_text_checkpoint_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"must be an image backbone \(a ViT\), received a GPT \(the huggingface"):
        kp.recipes.image_classifier(write_gpt2_folder(tmp_path, GPT_TEXTS), 2)
