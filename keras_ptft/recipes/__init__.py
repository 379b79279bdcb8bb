"""Fine-tuning recipes: one call returns a compiled model; you still call `fit()`."""

from keras_ptft.recipes.text_classifier import SparseMacroF1, TextClassifier, text_classifier

__all__ = ["text_classifier", "TextClassifier", "SparseMacroF1"]
from keras_ptft.recipes.text_regressor import TextRegressor, text_regressor
from keras_ptft.recipes import techniques
__all__ += ["text_regressor", "TextRegressor", "techniques"]
