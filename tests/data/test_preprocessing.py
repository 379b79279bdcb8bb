import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ptft.data import BertPreprocessor, save_vocabulary

# Ids: [PAD] 0, [UNK] 1, [CLS] 2, [SEP] 3, [MASK] 4, the 5, cat 6, sat 7, on 8, mat 9, dog 10,
# ##s 11, cafe 12, naive 13, "." 14, 中 15, 文 16.
VOCABULARY = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
    "the", "cat", "sat", "on", "mat", "dog", "##s", "cafe", "naive", ".", "中", "文",
]  # fmt: skip
PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
THE, CAT, SAT, ON, MAT, DOG, S, CAFE, NAIVE, DOT, ZHONG, WEN = range(5, 17)


def ids(outputs, key="token_ids"):
    return keras.ops.convert_to_numpy(outputs[key]).tolist()


def test_outputs_are_int32_of_shape_batch_by_sequence_length():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=10)
    outputs = preprocessor(["the cat", "the dog sat"])
    assert set(outputs) == {"token_ids", "segment_ids", "padding_mask"}
    for value in outputs.values():
        assert tuple(value.shape) == (2, 10)
        assert keras.backend.standardize_dtype(value.dtype) == "int32"
    # A single string is a batch of one.
    assert tuple(preprocessor("the cat")["token_ids"].shape) == (1, 10)


def test_ids_match_a_hand_packed_sequence():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=10)
    outputs = preprocessor(["The cats sat.", "the zebra"])
    assert ids(outputs) == [
        [CLS, THE, CAT, S, SAT, DOT, SEP, PAD, PAD, PAD],
        [CLS, THE, UNK, SEP, PAD, PAD, PAD, PAD, PAD, PAD],
    ]
    assert ids(outputs, "padding_mask") == [[1] * 7 + [0] * 3, [1] * 4 + [0] * 6]
    assert ids(outputs, "segment_ids") == [[0] * 10, [0] * 10]
    assert preprocessor.vocabulary == VOCABULARY
    assert preprocessor.vocabulary_size == len(VOCABULARY)
    assert (
        preprocessor.pad_token_id,
        preprocessor.unk_token_id,
        preprocessor.cls_token_id,
        preprocessor.sep_token_id,
        preprocessor.mask_token_id,
    ) == (PAD, UNK, CLS, SEP, MASK)
    assert preprocessor.tokenizer.id_to_token(CAFE) == "cafe"


def test_pairs_get_segment_ids_zero_then_one():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=9)
    outputs = preprocessor((["the cat", "dog"], ["the dog", "the mat"]))
    assert ids(outputs) == [
        [CLS, THE, CAT, SEP, THE, DOG, SEP, PAD, PAD],
        [CLS, DOG, SEP, THE, MAT, SEP, PAD, PAD, PAD],
    ]
    assert ids(outputs, "segment_ids") == [[0, 0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0]]
    # A list of two batches is a pair too; a list of two strings is a batch of two texts.
    assert ids(preprocessor([["the cat", "dog"], ["the dog", "the mat"]])) == ids(outputs)
    assert tuple(preprocessor(["the cat", "dog"])["token_ids"].shape) == (2, 9)


def test_truncation_keeps_the_final_sep():
    round_robin = BertPreprocessor(VOCABULARY, sequence_length=8)
    outputs = round_robin(["the cat sat on the mat dog dog"])
    assert ids(outputs) == [[CLS, THE, CAT, SAT, ON, THE, MAT, SEP]]
    assert ids(outputs, "padding_mask") == [[1] * 8]

    pair = (["the cat sat on the mat"], ["dog dog dog"])
    # Room for 5 tokens, handed out one at a time: 3 from the first text, 2 from the second.
    assert ids(round_robin(pair)) == [[CLS, THE, CAT, SAT, SEP, DOG, DOG, SEP]]
    waterfall = BertPreprocessor(VOCABULARY, sequence_length=8, truncate="waterfall")
    # The first text takes all the room it needs; the second is cut first.
    assert ids(waterfall(pair)) == [[CLS, THE, CAT, SAT, ON, THE, SEP, SEP]]


def test_chinese_characters_are_one_id_each_and_accents_are_stripped():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=8)
    assert ids(preprocessor(["中文猫"])) == [[CLS, ZHONG, WEN, UNK, SEP, PAD, PAD, PAD]]
    assert ids(preprocessor(["Café NAÏVE"]))[0][:4] == [CLS, CAFE, NAIVE, SEP]
    keep_accents = BertPreprocessor(VOCABULARY, sequence_length=8, strip_accents=False)
    assert ids(keep_accents(["Café naive"]))[0][:4] == [CLS, UNK, NAIVE, SEP]
    assert keep_accents.get_config()["strip_accents"] is False


def test_runs_inside_tf_data_like_eagerly():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=8)
    texts = ["the cat sat", "Café 中文", "dog"]
    eager = preprocessor(texts)

    labelled = tf.data.Dataset.from_tensor_slices((texts, [0, 1, 2])).batch(3).map(preprocessor)
    features, labels = next(iter(labelled))
    assert features["token_ids"].numpy().tolist() == ids(eager)
    assert labels.numpy().tolist() == [0, 1, 2]

    # Unbatched elements give unbatched rows, so the dataset can be batched afterwards.
    unbatched = tf.data.Dataset.from_tensor_slices(texts).map(preprocessor).batch(3)
    assert next(iter(unbatched))["padding_mask"].numpy().tolist() == ids(eager, "padding_mask")

    pairs = tf.data.Dataset.from_tensor_slices((texts[:1], texts[2:])).batch(1)
    pairs = pairs.map(lambda first, second: preprocessor((first, second)))
    expected = [[CLS, THE, CAT, SAT, SEP, DOG, SEP, PAD]]
    assert next(iter(pairs))["token_ids"].numpy().tolist() == expected


def test_vocabulary_file_and_config_round_trip(tmp_path):
    path = tmp_path / "vocab.txt"
    save_vocabulary(VOCABULARY, path)
    preprocessor = BertPreprocessor(str(path), sequence_length=8, truncate="waterfall", name="prep")
    assert preprocessor.vocabulary == VOCABULARY
    config = preprocessor.get_config()
    assert json.loads(json.dumps(config)) == config
    serialized = json.loads(json.dumps(keras.layers.serialize(preprocessor)))
    restored = keras.layers.deserialize(serialized)
    assert isinstance(restored, BertPreprocessor)
    assert restored.get_config() == config
    texts = ["the cat sat on the mat", "dog"]
    assert ids(restored(texts)) == ids(preprocessor(texts))


@keras.saving.register_keras_serializable(package="keras_ptft_tests")
class _Embedder(keras.Model):
    """A model that carries a preprocessor the way keras-hub tasks do: as a serialized config."""

    def __init__(self, preprocessor, **kwargs):
        super().__init__(**kwargs)
        self.preprocessor = preprocessor
        self.embedding = keras.layers.Embedding(preprocessor.vocabulary_size, 4)

    def call(self, token_ids):
        return self.embedding(token_ids)

    def get_config(self):
        return {**super().get_config(), "preprocessor": keras.layers.serialize(self.preprocessor)}

    @classmethod
    def from_config(cls, config):
        config = {**config, "preprocessor": keras.layers.deserialize(config["preprocessor"])}
        return cls(**config)


def test_survives_a_keras_model_save_and_load(tmp_path):
    model = _Embedder(BertPreprocessor(VOCABULARY, sequence_length=6, lowercase=False))
    texts = ["the cat", "The Dog 中"]
    expected = keras.ops.convert_to_numpy(model(model.preprocessor(texts)["token_ids"]))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert isinstance(loaded.preprocessor, BertPreprocessor)
    assert loaded.preprocessor.get_config() == model.preprocessor.get_config()
    # lowercase=False survived: "The" and "Dog" are unknown.
    expected_ids = [[CLS, THE, CAT, SEP, PAD, PAD], [CLS, UNK, UNK, ZHONG, SEP, PAD]]
    assert ids(loaded.preprocessor(texts)) == expected_ids
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(loaded.preprocessor(texts)["token_ids"])), expected
    )


def test_non_string_inputs_are_rejected_with_a_clear_error():
    preprocessor = BertPreprocessor(VOCABULARY, sequence_length=8)
    cases = [
        ([1, 2, 3], "must be strings.*int at index 0"),
        (3.5, "must be strings.*float"),
        (np.array([1.0, 2.0]), "must be strings.*dtype float64"),
        (tf.constant([1, 2]), "must be strings.*dtype int32"),
        (("a", "b", "c"), "one or two batches"),
        ((["a"], ["b", "c"]), "same size"),
    ]
    for inputs, message in cases:
        with pytest.raises(ValueError, match=rf"`inputs`.*{message}"):
            preprocessor(inputs)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="`sequence_length` must be an int >= 3.*=2"):
        BertPreprocessor(VOCABULARY, sequence_length=2)
    missing = r"`vocabulary` lacks the special tokens \['\[CLS\]', '\[MASK\]'\]"
    with pytest.raises(ValueError, match=missing):
        BertPreprocessor([t for t in VOCABULARY if t not in ("[CLS]", "[MASK]")])
    with pytest.raises(ValueError, match="`truncate` must be one of"):
        BertPreprocessor(VOCABULARY, truncate="longest_first")
    with pytest.raises(FileNotFoundError, match="no_vocab.txt"):
        BertPreprocessor("no_vocab.txt")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_eagerly_and_in_tf_data(backend, run_on_backend):
    # The session's backend process: the Keras backend is fixed at import time.
    from tests.data import backend_worker_preprocessing

    report = run_on_backend(backend_worker_preprocessing.main, backend, VOCABULARY)
    assert report["backend"] == backend
    assert report["is_backend_tensor"]
    assert report["eager"] == [
        [CLS, THE, CAT, SAT, SEP, DOG, SEP, PAD],
        [CLS, CAFE, ZHONG, WEN, SEP, THE, MAT, SEP],
    ]
    assert report["segments"] == [[0, 0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1, 1, 1]]
    assert report["tf_data"] == [
        [CLS, THE, CAT, SAT, SEP, PAD, PAD, PAD],
        [CLS, CAFE, ZHONG, WEN, SEP, PAD, PAD, PAD],
    ]
