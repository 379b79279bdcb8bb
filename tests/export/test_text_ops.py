"""The string-input TFLite model's tokenizer (FastBertTokenizer) against the Keras preprocessor."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ptft.data import BertPreprocessor
from keras_ptft.export.kinds.text_ops import KNOWN_DIFFERENCES, FastBertPacker, check_fast_tokenizer_compatible

from export_helpers import MULTILINGUAL


def _tflite_packer(packer):
    """The packer alone, converted to TFLite and run by LiteRT with the tensorflow-text ops."""
    from ai_edge_litert import interpreter as litert
    from tensorflow_text import tflite_registrar

    function = tf.function(lambda texts: packer(texts), input_signature=[tf.TensorSpec([None], tf.string)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], packer)
    converter.allow_custom_ops = True
    interpreter = litert.InterpreterWithCustomOps(
        custom_op_registerers=tflite_registrar.SELECT_TFTEXT_OPS, model_content=converter.convert()
    )
    return interpreter.get_signature_runner()


@pytest.mark.parametrize("lowercase", [True, False])
def test_tflite_tokenizer_equals_keras_preprocessor_on_english_accented_and_chinese(vocabulary, lowercase):
    texts = MULTILINGUAL + [text.upper() for text in MULTILINGUAL] + [" ".join(["long"] * 40)]
    keras_side = BertPreprocessor(vocabulary, sequence_length=16, lowercase=lowercase)
    expected = {key: np.asarray(value) for key, value in keras_side(texts).items()}
    packer = FastBertPacker(vocabulary, sequence_length=16, lowercase=lowercase)
    outputs = _tflite_packer(packer)(texts=np.array(texts, dtype=object))
    # The set is not trivially all-[UNK]: real subword ids, truncation and padding occur.
    assert len(np.unique(expected["token_ids"])) > 40
    assert (expected["padding_mask"].sum(-1) == 16).any() and (expected["padding_mask"].sum(-1) < 16).any()
    for key in ("token_ids", "segment_ids", "padding_mask"):
        np.testing.assert_array_equal(outputs[key], expected[key], err_msg=key)


def test_known_differences_are_real(vocabulary):
    """The documented caveat stays true: these characters tokenize differently."""
    vocabulary = vocabulary + [token for token in ("a", "b", "ab", "##b") if token not in vocabulary]
    keras_side = BertPreprocessor(vocabulary, sequence_length=8)
    packer = FastBertPacker(vocabulary, sequence_length=8, lowercase=True)
    texts = [f"a{character}b" for character in KNOWN_DIFFERENCES]
    expected = np.asarray(keras_side(texts)["token_ids"])
    received = packer(tf.constant(texts))["token_ids"].numpy()
    assert all((expected[i] != received[i]).any() for i in range(len(texts)))


def test_mixed_normalization_is_refused(vocabulary):
    preprocessor = BertPreprocessor(vocabulary, sequence_length=8, lowercase=True, strip_accents=False)
    with pytest.raises(ValueError, match="strip_accents"):
        check_fast_tokenizer_compatible(preprocessor)
