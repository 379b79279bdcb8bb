"""Fine-tuning recipes: one call returns a compiled model; you still call `fit()`."""

from keras_ptft.recipes.text_classifier import SparseMacroF1, TextClassifier, text_classifier
from keras_ptft.recipes.image_classifier import ImageClassifier, image_classifier
from keras_ptft.recipes.image_segmenter import CrossEntropyDiceLoss, ImageSegmenter, MeanDice, image_segmenter

__all__ = ["text_classifier", "TextClassifier", "SparseMacroF1"]
__all__ += ["image_classifier", "ImageClassifier"]
__all__ += ["image_segmenter", "ImageSegmenter", "CrossEntropyDiceLoss", "MeanDice"]
