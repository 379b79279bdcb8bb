"""Tasks: a backbone plus a head, trained through one shared `fit` path (`tasks/base.py`).

Pretraining: `MaskedLM`, `CausalLM`, `MaskedImageModeling`. Fine-tuning: `TextClassifier`,
`TextRegressor`, `SentenceEmbedder`, `ImageClassifier`, `ImageSegmenter` (the recipes in
`keras_ptft.recipes` build and compile them with defaults that fit the backbone).
"""

from keras_ptft.tasks.base import Task, TrainingMixin
from keras_ptft.tasks.causal_lm import CausalLM, make_sampler
from keras_ptft.tasks.masked_lm import MaskedLM, masked_lm_preprocessor
from keras_ptft.tasks.masked_image_modeling import MaskedImageModeling, save_reconstruction_grid
from keras_ptft.tasks.text_classifier import SparseMacroF1, TextClassifier
from keras_ptft.tasks.text_regressor import TextRegressor
from keras_ptft.tasks.sentence_embedder import InBatchContrastiveLoss, InBatchSimilarity, SentenceEmbedder
from keras_ptft.tasks.image_classifier import ImageClassifier
from keras_ptft.tasks.image_segmenter import CrossEntropyDiceLoss, ImageSegmenter, MeanDice

__all__ = ["Task", "TrainingMixin"]
__all__ += ["MaskedLM", "masked_lm_preprocessor"]
__all__ += ["CausalLM", "make_sampler"]
__all__ += ["MaskedImageModeling", "save_reconstruction_grid"]
__all__ += ["TextClassifier", "SparseMacroF1", "TextRegressor"]
__all__ += ["SentenceEmbedder", "InBatchSimilarity", "InBatchContrastiveLoss"]
__all__ += ["ImageClassifier", "ImageSegmenter", "CrossEntropyDiceLoss", "MeanDice"]
from keras_ptft.tasks.token_classifier import TokenClassifier
from keras_ptft.tasks.question_answerer import QuestionAnswerer
from keras_ptft.tasks import metrics
__all__ += ["TokenClassifier", "QuestionAnswerer", "metrics"]
from keras_ptft.tasks.translator import Translator
from keras_ptft.tasks.translation_metrics import TranslationScores, corpus_bleu, corpus_chrf, translation_scores
__all__ += ["Translator", "TranslationScores", "corpus_bleu", "corpus_chrf", "translation_scores"]
from keras_ptft.tasks.denoising_lm import DenoisingLM
__all__ += ["DenoisingLM"]
