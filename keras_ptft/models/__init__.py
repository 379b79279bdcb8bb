"""Backbones: what a transformer *is*. They know nothing of how they are trained."""

from keras_ptft.models.bert import BERT_SIZES, Bert
from keras_ptft.models.presets import load_backbone, load_tokenizer
from keras_ptft.models.vit import VIT_SIZES, ViT

__all__ = ["Bert", "BERT_SIZES", "load_backbone", "load_tokenizer"]
__all__ += ["ViT", "VIT_SIZES"]
