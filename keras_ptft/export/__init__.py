"""Export: SavedModel (and, later, TFLite/LiteRT, ONNX) artifacts under `saved_models/`."""

from keras_ptft.export.saved_model import export_text_classifier, saved_model_parity
from keras_ptft.export.images import export_image_classifier, image_saved_model_parity

__all__ = ["export_text_classifier", "saved_model_parity"]
__all__ += ["export_image_classifier", "image_saved_model_parity"]
