"""Export: SavedModel (and, later, TFLite/LiteRT, ONNX) artifacts under `saved_models/`."""

from keras_ptft.export.saved_model import export_text_classifier, saved_model_parity
from keras_ptft.export.images import export_image_classifier, image_saved_model_parity

__all__ = ["export_text_classifier", "saved_model_parity"]
__all__ += ["export_image_classifier", "image_saved_model_parity"]
from keras_ptft.export.export import FORMATS, ExportCheckFailed, export
from keras_ptft.export.kinds import ExportKind, register_kind
from keras_ptft.export.predictor import Predictor
from keras_ptft.export.tflite import QUANTIZATIONS
from keras_ptft.export.verify import verify

__all__ += ["export", "verify", "Predictor", "ExportKind", "register_kind", "ExportCheckFailed", "FORMATS",
            "QUANTIZATIONS"]
from keras_ptft.export.causal_lm import CausalLMKind
from keras_ptft.export.image_kind import ImageClassifierKind
from keras_ptft.export.masked_lm import MaskedLMKind

__all__ += ["CausalLMKind", "MaskedLMKind", "ImageClassifierKind"]
from keras_ptft.export.onnx import OnnxRunner, onnx_parity, write_onnx

__all__ += ["OnnxRunner", "onnx_parity", "write_onnx"]
from keras_ptft.export.segmenter_kind import ImageSegmenterKind

__all__ += ["ImageSegmenterKind"]
