"""Fine-tuning recipes: builder functions only. One call picks defaults that fit the backbone,
compiles the task and returns it; you still call `fit()`.

The task classes live in `keras_ptft.tasks`; `keras_ptft.recipes.TextClassifier` and the other
class names below are aliases of them, kept so existing code keeps working.
"""

from keras_ptft.recipes import techniques
from keras_ptft.recipes.text_generator import text_generator
from keras_ptft.recipes.text_classifier import text_classifier
from keras_ptft.recipes.text_regressor import text_regressor
from keras_ptft.recipes.sentence_embedder import sentence_embedder
from keras_ptft.recipes.image_classifier import image_classifier
from keras_ptft.recipes.image_segmenter import image_segmenter
from keras_ptft.tasks import (  # aliases of the task classes
    CrossEntropyDiceLoss,
    ImageClassifier,
    ImageSegmenter,
    MeanDice,
    SentenceEmbedder,
    SparseMacroF1,
    TextClassifier,
    TextRegressor,
)

from keras_ptft.recipes.compression import keep_layers, prune_ffn, prune_heads, quantize
from keras_ptft.recipes.distillation import SoftTargetAccuracy, SoftTargetLoss, distill

__all__ = ["text_classifier", "text_regressor", "sentence_embedder", "text_generator"]
__all__ += ["image_classifier", "image_segmenter", "techniques", "prune_ffn", "prune_heads", "quantize", "keep_layers"]
__all__ += ["distill", "SoftTargetLoss", "SoftTargetAccuracy"]
__all__ += ["TextClassifier", "SparseMacroF1", "TextRegressor", "SentenceEmbedder"]
__all__ += ["ImageClassifier", "ImageSegmenter", "CrossEntropyDiceLoss", "MeanDice"]
from keras_ptft.recipes.token_classifier import token_classifier
from keras_ptft.recipes.question_answerer import question_answerer
__all__ += ["token_classifier", "question_answerer"]
from keras_ptft.recipes.translator import translator
__all__ += ["translator"]
