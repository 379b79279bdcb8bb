"""Fine-tune an encoder–decoder (pretrained by denoising, or fresh) to translate."""

from __future__ import annotations

import os

import keras

from keras_ptft.convert.resolve import resolve_checkpoint
from keras_ptft.models.seq2seq import Seq2Seq
from keras_ptft.tasks.translator import Translator
from keras_ptft.training.optimization import make_adamw


def translator(
    backbone_or_path: keras.Model | str | os.PathLike,
    tokenizer: keras.layers.Layer | None = None,
    sequence_length: int = 64,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.01,
    sampler: str = "greedy",
    distribution=None,
) -> Translator:
    """Returns a compiled `Translator` ready to `fit((sources, targets))`.

    Args:
        backbone_or_path: `keras_ptft.models.Seq2Seq`, or a folder written by `save_to_preset`
            (e.g. by `kp.tasks.DenoisingLM`: backbone weights plus tokenizer).
        tokenizer: the tokenizer (`kp.data.train_seq2seq_tokenizer(sources + targets, ...)`),
            required when `backbone_or_path` is a model or a folder without one.
        sequence_length: int. Source and target length in tokens; longer ones are truncated.
        learning_rate: float. AdamW learning rate.
        weight_decay: float. AdamW decoupled weight decay on kernels and embeddings.
        sampler: str. Default sampler of `translate()` (`"greedy"` or `"beam"`).
        distribution: None (one device), `"data_parallel"`, or a `keras.distribution.Distribution`
            (JAX) / `tf.distribute.Strategy` (TensorFlow) object: the translator is built, compiled
            and trained under it (`keras_ptft.training.resolve_distribution`), and `fit`'s
            `batch_size` is the global batch. `"model_parallel"` is refused: `Seq2Seq` has no
            `get_layout_map`.

    Example:
    ```python
    translator = kp.recipes.translator("saved_models/my_seq2seq", sequence_length=48)
    translator.fit((english, chinese), epochs=10, validation_data=(dev_english, dev_chinese))
    translator.translate("I am here.", sampler="beam", num_beams=4)

    # Data-parallel over every device: JAX (e.g. XLA_FLAGS=--xla_force_host_platform_device_count=2
    # on a CPU) or TensorFlow (MirroredStrategy); batch_size is the global batch.
    translator = kp.recipes.translator("saved_models/my_seq2seq", distribution="data_parallel")
    translator.fit((english, chinese), batch_size=64, epochs=10)
    ```
    """
    checkpoint = resolve_checkpoint(backbone_or_path, expected="a Seq2Seq backbone")
    backbone, tokenizer = checkpoint.backbone, tokenizer or checkpoint.text_tokenizer
    if not isinstance(backbone, Seq2Seq):
        raise checkpoint.wrong_model("a Seq2Seq backbone or a saved Seq2Seq folder")
    if tokenizer is None:
        raise ValueError("`tokenizer` is required when the backbone does not come with one.")
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive, received learning_rate={learning_rate!r}.")
    model = Translator(backbone, tokenizer, sequence_length=sequence_length, distribution=distribution)
    model.compile(optimizer=make_adamw(learning_rate, weight_decay=weight_decay, clipnorm=1.0), sampler=sampler)
    return model
