"""Pipelines: whole runs built from the toolkit's parts, what `keras-ptft pretrain` executes.

Each takes plain arguments (texts or images, sizes, a budget), checks all of them before any work
starts, prints what it does, and returns the trained task with its held-out figures. The
quickstart demos are built from these.
"""

from keras_ptft.pipelines.pretrain import (
    PretrainResult,
    check_pretrain_arguments,
    check_size,
    pretrain_bert,
    pretrain_gpt,
    pretrain_seq2seq,
    pretrain_vit,
)
from keras_ptft.pipelines.translation import finetune_translator

__all__ = ["PretrainResult", "check_pretrain_arguments", "check_size", "pretrain_bert", "pretrain_gpt", "pretrain_vit",
           "pretrain_seq2seq", "finetune_translator"]
