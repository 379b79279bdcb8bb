"""Pretraining tasks: wrap any backbone that offers the inputs they need."""

from keras_ptft.tasks.causal_lm import CausalLM, make_sampler
from keras_ptft.tasks.masked_lm import MaskedLM, masked_lm_preprocessor
from keras_ptft.tasks.masked_image_modeling import MaskedImageModeling, save_reconstruction_grid

__all__ = ["MaskedLM", "masked_lm_preprocessor"]
__all__ += ["CausalLM", "make_sampler"]
__all__ += ["MaskedImageModeling", "save_reconstruction_grid"]
from keras_ptft.tasks.translator import Translator
from keras_ptft.tasks.translation_metrics import TranslationScores, corpus_bleu, corpus_chrf, translation_scores
__all__ += ["Translator", "TranslationScores", "corpus_bleu", "corpus_chrf", "translation_scores"]
from keras_ptft.tasks.denoising_lm import DenoisingLM
__all__ += ["DenoisingLM"]
