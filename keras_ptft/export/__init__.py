"""Export: verified SavedModel, TFLite/LiteRT and ONNX artifacts under `saved_models/NAME/`.

`base.py` holds `ExportKind`, `KindRunner` and the kind registry; `formats/` the writers and
runners of each format; `kinds/` one module per kind of model (importing it registers the
kinds); `export`, `verify`, `Predictor` and `serve` find a kind only through the registry.
"""

from keras_ptft.export.base import ExportCheckFailed, ExportKind, KindRunner, register_kind
from keras_ptft.export.export import FORMATS, QUANTIZATIONS, export, export_image_classifier, export_text_classifier
from keras_ptft.export.formats.onnx import OnnxRunner, onnx_parity, write_onnx
from keras_ptft.export.kinds import CausalLMKind, ImageClassifierKind, ImageSegmenterKind, MaskedLMKind, \
    QuestionAnswererKind, TextClassifierKind, TokenClassifierKind  # importing kinds registers every kind of model
from keras_ptft.export.kinds.image_classifier import image_saved_model_parity
from keras_ptft.export.kinds.text_classifier import saved_model_parity
from keras_ptft.export.predictor import Predictor
from keras_ptft.export.verify import verify

__all__ = ["export", "verify", "Predictor", "ExportKind", "KindRunner", "register_kind", "ExportCheckFailed",
           "FORMATS", "QUANTIZATIONS", "TextClassifierKind", "CausalLMKind", "MaskedLMKind", "ImageClassifierKind",
           "ImageSegmenterKind", "TokenClassifierKind", "QuestionAnswererKind", "OnnxRunner", "onnx_parity", "write_onnx", "saved_model_parity",
           "image_saved_model_parity", "export_text_classifier", "export_image_classifier"]
