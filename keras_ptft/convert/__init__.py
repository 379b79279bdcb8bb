"""Convert: pretrained checkpoints from other ecosystems (Hugging Face folders, keras-hub
presets) into keras_ptft models, and keras_ptft backbones back into keras-hub presets."""

from keras_ptft.convert.huggingface import CONVERTERS, Converted, from_huggingface, register_converter

__all__ = ["from_huggingface", "Converted", "CONVERTERS", "register_converter"]
