"""Format writers and runners (SavedModel, TFLite/LiteRT, ONNX); each imports only `export.base`."""
