"""Backbones: what a transformer *is*. They know nothing of how they are trained."""

from keras_ptft.models.bert import BERT_SIZES, Bert
from keras_ptft.models.gpt import GPT_SIZES, GPT
from keras_ptft.models.presets import load_backbone, load_tokenizer
from keras_ptft.models.sizes import SIZES
from keras_ptft.models.vit import VIT_SIZES, ViT

__all__ = ["Bert", "BERT_SIZES", "load_backbone", "load_tokenizer", "SIZES"]
__all__ += ["GPT", "GPT_SIZES"]
__all__ += ["ViT", "VIT_SIZES"]
from keras_ptft.models.seq2seq import SEQ2SEQ_SIZES, Seq2Seq
__all__ += ["Seq2Seq", "SEQ2SEQ_SIZES"]
