"""Fine-tuning recipes: one call returns a compiled model; you still call `fit()`."""

from keras_ptft.recipes.text_generator import text_generator
from keras_ptft.recipes.text_classifier import SparseMacroF1, TextClassifier, text_classifier
from keras_ptft.recipes.sentence_embedder import SentenceEmbedder, sentence_embedder

__all__ = ["text_classifier", "TextClassifier", "SparseMacroF1"]
__all__ += ["sentence_embedder", "SentenceEmbedder"]
from keras_ptft.recipes.text_regressor import TextRegressor, text_regressor
from keras_ptft.recipes import techniques
__all__ += ["text_regressor", "TextRegressor", "techniques"]
__all__ += ["text_generator"]
from keras_ptft.recipes.image_classifier import ImageClassifier, image_classifier
from keras_ptft.recipes.image_segmenter import CrossEntropyDiceLoss, ImageSegmenter, MeanDice, image_segmenter

__all__ += ["image_classifier", "ImageClassifier"]
__all__ += ["image_segmenter", "ImageSegmenter", "CrossEntropyDiceLoss", "MeanDice"]
from keras_ptft.recipes.translator import translator
__all__ += ["translator"]
