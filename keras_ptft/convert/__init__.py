"""Convert: pretrained checkpoints from other ecosystems (Hugging Face folders, keras-hub
presets) into keras_ptft models, and keras_ptft backbones back into keras-hub presets."""

from keras_ptft.convert.huggingface import CONVERTERS, Converted, from_huggingface, register_converter
from keras_ptft.convert.keras_hub_presets import from_keras_hub, to_keras_hub

__all__ = ["from_huggingface", "from_keras_hub", "to_keras_hub", "Converted", "CONVERTERS", "register_converter"]
from keras_ptft.convert.resolve import Checkpoint, checkpoint_kind, load_checkpoint, sentence_transformers_pooling

__all__ += ["load_checkpoint", "checkpoint_kind", "sentence_transformers_pooling", "Checkpoint"]
