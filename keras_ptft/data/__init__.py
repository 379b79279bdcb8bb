"""Data: the embedded corpus and task, WordPiece training, strings → BERT inputs."""

from keras_ptft.data.corpus import EmbeddedTask, load_embedded_classification, load_embedded_corpus
from keras_ptft.data.preprocessing import BertPreprocessor
from keras_ptft.data.images import SHAPE_CLASSES, ShapesDataset, generate_shapes
from keras_ptft.data.wordpiece import (
    SPECIAL_TOKENS,
    load_vocabulary,
    save_vocabulary,
    train_wordpiece,
)

__all__ = [
    "EmbeddedTask",
    "load_embedded_classification",
    "load_embedded_corpus",
    "BertPreprocessor",
    "SPECIAL_TOKENS",
    "load_vocabulary",
    "save_vocabulary",
    "train_wordpiece",
]
__all__ += ["generate_shapes", "ShapesDataset", "SHAPE_CLASSES"]
