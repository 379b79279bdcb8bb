import json
import os

import numpy as np
import pytest

from keras_ptft.export import export
from keras_ptft.export.formats.tflite import SENTINEL_SCALE

from export_helpers import toy_sentiment


@pytest.mark.slow
def test_full_int8_keeps_the_masked_softmax_in_float(classifier, tmp_path):
    """Keras' masked softmax writes -1e9 at padded positions; calibrated to int8, that tensor gets a
    scale of ~4e6 and every real attention score rounds to zero. The export keeps it in float."""
    from ai_edge_litert import interpreter as litert

    texts, _ = toy_sentiment(48, seed=11)  # ~7 words in 16 positions: padding, so the mask matters
    path = export(classifier, tmp_path / "int8", formats=["tflite"], quantization="int8",
                  representative_data=texts, save_keras=False)
    interpreter = litert.Interpreter(model_path=os.path.join(path, "tflite", "model.tflite"))
    tensors = interpreter.get_tensor_details()
    int8_scales = [tensor["quantization"][0] for tensor in tensors if tensor["dtype"] == np.int8]
    assert int8_scales, "the model is not int8 at all"
    assert max(int8_scales) <= SENTINEL_SCALE
    softmax_inputs = [tensors[op["inputs"][0]] for op in interpreter._get_ops_details() if op["op_name"] == "SOFTMAX"]
    attention = [tensor for tensor in softmax_inputs if "attention" in tensor["name"]]
    assert attention and all(tensor["dtype"] == np.float32 for tensor in attention)
    parity = json.load(open(os.path.join(path, "manifest.json")))["artifacts"]["tflite"]["parity"]
    assert parity["label_agreement"] >= 0.99
