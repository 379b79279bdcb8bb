"""One module per kind of exported model; importing this package registers each kind.

A new kind is a module here with an `ExportKind`
and a `KindRunner` subclass and one `register_kind` call, plus one import line below.
"""

from keras_ptft.export.kinds.text_classifier import TextClassifierKind
from keras_ptft.export.kinds.masked_lm import MaskedLMKind
from keras_ptft.export.kinds.causal_lm import CausalLMKind
from keras_ptft.export.kinds.image_classifier import ImageClassifierKind
from keras_ptft.export.kinds.image_segmenter import ImageSegmenterKind
from keras_ptft.export.kinds.token_classifier import TokenClassifierKind
from keras_ptft.export.kinds.question_answerer import QuestionAnswererKind
from keras_ptft.export.kinds.translator import TranslatorKind

__all__ = ["TextClassifierKind", "MaskedLMKind", "CausalLMKind", "ImageClassifierKind", "ImageSegmenterKind",
           "TokenClassifierKind", "QuestionAnswererKind", "TranslatorKind"]
