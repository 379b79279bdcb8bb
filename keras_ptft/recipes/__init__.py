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
