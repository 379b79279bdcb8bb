"""Data: the embedded corpus and task, WordPiece training, strings → BERT inputs."""

from keras_ptft.data.bpe import BPETokenizer, bpe_tokenizer, train_bpe, train_sentencepiece
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
from keras_ptft.data.augment import augment_text, clean_text, embedding_neighbours
__all__ += ["augment_text", "clean_text", "embedding_neighbours"]
__all__ += ["BPETokenizer", "bpe_tokenizer", "train_bpe", "train_sentencepiece"]
__all__ += ["generate_shapes", "ShapesDataset", "SHAPE_CLASSES"]
from keras_ptft.data.tables import read_labeled_texts
__all__ += ["read_labeled_texts"]
from keras_ptft.data.shared import shared_data_dir
__all__ += ["shared_data_dir"]
from keras_ptft.data.bucketing import (
    batch_shapes,
    boundaries_for,
    bucket_boundaries,
    bucketed_arrays,
    bucketed_batches,
    check_bucketing,
    example_lengths,
    length_sorted_batches,
    merge_small_buckets,
    preprocessed_examples,
    restore_order,
)
__all__ += ["batch_shapes", "bucket_boundaries", "bucketed_batches", "check_bucketing", "example_lengths",
            "length_sorted_batches", "preprocessed_examples", "restore_order", "boundaries_for",
            "merge_small_buckets", "bucketed_arrays"]
from keras_ptft.data.packing import masked_lm_examples, pack_for_causal_lm, pack_for_masked_lm
__all__ += ["masked_lm_examples", "pack_for_causal_lm", "pack_for_masked_lm"]
from keras_ptft.data.conll import read_conll
from keras_ptft.data.squad import read_squad
from keras_ptft.data.token_alignment import WordPieceOffsets, label_names_from_tags
__all__ += ["read_conll", "read_squad", "WordPieceOffsets", "label_names_from_tags"]
from keras_ptft.data.seq2seq_preprocessing import (
    Seq2SeqPreprocessor,
    Seq2SeqTokenizer,
    chinese_coverage,
    denoising_examples,
    read_text_pairs,
    train_seq2seq_tokenizer,
)
__all__ += ["Seq2SeqTokenizer", "Seq2SeqPreprocessor", "train_seq2seq_tokenizer", "chinese_coverage",
            "denoising_examples", "read_text_pairs"]
