"""Fine-tuning recipes: one call returns a compiled model; you still call `fit()`."""

from keras_ptft.recipes.text_generator import text_generator
from keras_ptft.recipes.text_classifier import SparseMacroF1, TextClassifier, text_classifier

__all__ = ["text_classifier", "TextClassifier", "SparseMacroF1"]
__all__ += ["text_generator"]
