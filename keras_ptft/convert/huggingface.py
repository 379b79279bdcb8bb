"""`from_huggingface`: a local Hugging Face folder → keras_ptft backbone, preprocessor and head.

Each `model_type` has a converter registered in `CONVERTERS`; a converter takes the parsed
config.json, the checkpoint tensors and the folder, and returns a `Converted`. GPT-2 and ViT
plug in with `register_converter("gpt2", ...)` in their own modules.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Callable

import keras

from keras_ptft.convert import bert as bert_convert
from keras_ptft.convert import gpt2 as gpt2_convert
from keras_ptft.convert import vit as vit_convert
from keras_ptft.convert.checkpoint import read_config, read_weights
from keras_ptft.convert.tokenizers import bert_preprocessor
from keras_ptft.convert.weights import WeightPorter
from keras_ptft.models.bert import Bert
from keras_ptft.models.gpt import GPT
from keras_ptft.models.vit import ViT


@dataclasses.dataclass
class Converted:
    """What `from_huggingface` returns.

    Attributes:
        backbone: the keras_ptft backbone with the checkpoint's weights.
        preprocessor: the matching preprocessor (raw strings → backbone inputs; for GPT-2 the
            byte-level BPE tokenizer), or None when the folder has no tokenizer files (and for ViT,
            whose pixel normalisation is folded into the backbone).
        task: the checkpoint's head wrapped as a keras_ptft task (`MaskedLM` for a BERT
            checkpoint with `cls.predictions.*`, `CausalLM` for GPT-2, `ImageClassifier` for
            `ViTForImageClassification`), or None when the folder has no head.
        config: dict. The folder's config.json.
        unused_weights: list of str. Checkpoint tensors that were not loaded (e.g. a head the
            toolkit has no task for).

    It unpacks as `backbone, preprocessor = from_huggingface(path)`.
    """

    backbone: keras.Model
    preprocessor: keras.layers.Layer | None
    task: keras.Model | None = None
    config: dict = dataclasses.field(default_factory=dict)
    unused_weights: list = dataclasses.field(default_factory=list)

    def __iter__(self):
        return iter((self.backbone, self.preprocessor))


Converter = Callable[[dict, dict, str, "int | None"], Converted]
CONVERTERS: dict[str, Converter] = {}


def register_converter(model_type: str, converter: Converter) -> None:
    """Registers the converter of a HF `model_type` (e.g. `"gpt2"`)."""
    CONVERTERS[model_type] = converter


def from_huggingface(path: str | os.PathLike, sequence_length: int | None = None) -> Converted:
    """Converts a local Hugging Face model folder into keras_ptft objects.

    The folder holds `config.json` and `model.safetensors` (or a sharded
    `model.safetensors.index.json`, or `pytorch_model.bin` when torch is installed), plus the
    tokenizer files (`vocab.txt` or `tokenizer.json` for BERT, `vocab.json` + `merges.txt` or
    `tokenizer.json` for GPT-2). `model_type` picks the model: `"bert"` → `Bert` (+ `MaskedLM`),
    `"gpt2"` → `GPT` (+ `CausalLM` with the LM head), `"vit"` → `ViT` taking `[0, 1]` images (+
    `recipes.ImageClassifier` with the classifier head of `ViTForImageClassification`). Every architectural field of config.json is
    honoured (e.g. BERT's `hidden_act`, `layer_norm_eps`, `type_vocab_size`,
    `max_position_embeddings`); a field or value the keras_ptft model cannot reproduce is refused
    with a `ValueError` naming it, never ignored. Nothing is downloaded.

    Args:
        path: str or `os.PathLike`. The Hugging Face folder.
        sequence_length: int or None. The preprocessor's row length; defaults to the model's
            maximum, capped at 128. Must not exceed the model's `max_position_embeddings`.

    Returns:
        A `Converted` (backbone, preprocessor, task, config, unused_weights); it unpacks as
        `backbone, preprocessor`.

    Example:
    ```python
    import keras_ptft as kp

    converted = kp.convert.from_huggingface("path/to/all-MiniLM-L6-v2")
    features = converted.preprocessor(["A sentence to encode."])
    converted.backbone(features)["sequence_output"].shape  # (1, 128, 384)
    ```
    """
    path = os.fspath(path)
    config = read_config(path)
    model_type = config.get("model_type")
    if model_type not in CONVERTERS:
        raise ValueError(
            f"config.json in {path!r} has model_type={model_type!r}; from_huggingface supports "
            f"{sorted(CONVERTERS)}."
        )
    if sequence_length is not None and (
        isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or sequence_length < 1
    ):
        raise ValueError(f"`sequence_length` must be a positive int, received sequence_length={sequence_length!r}.")
    weights = read_weights(path)
    converted = CONVERTERS[model_type](config, weights, path, sequence_length)
    if converted.unused_weights:
        warnings.warn(
            f"{len(converted.unused_weights)} tensors of {path!r} were not loaded, e.g. "
            f"{converted.unused_weights[:3]}.",
            stacklevel=2,
        )
    return converted


def _sequence_length(sequence_length: int | None, max_length: int) -> int:
    if sequence_length is None:
        return min(128, max_length)
    if sequence_length > max_length:
        raise ValueError(
            f"`sequence_length`={sequence_length} is longer than the model's "
            f"max_position_embeddings={max_length}."
        )
    return sequence_length


def _has_tokenizer(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, name)) for name in ("vocab.txt", "tokenizer.json"))


def convert_bert(config: dict, weights: dict, path: str, sequence_length: int | None = None) -> Converted:
    """The BERT converter: backbone, WordPiece preprocessor and, when present, the MLM head."""
    from keras_ptft.tasks.masked_lm import MaskedLM  # convert/ sits above tasks/ in the flow

    arguments = bert_convert.backbone_config(config)
    sequence_length = _sequence_length(sequence_length, arguments["max_sequence_length"])
    preprocessor = None
    if _has_tokenizer(path):
        preprocessor = bert_preprocessor(path, sequence_length, vocabulary_size=arguments["vocabulary_size"])
    porter = WeightPorter(bert_convert.normalize_keys(weights), source=path)
    backbone = Bert(**arguments)
    bert_convert.port_backbone(backbone, porter)
    task = None
    if bert_convert.has_mlm_head(porter):
        if preprocessor is None:
            raise FileNotFoundError(
                f"{path!r} has an MLM head but no tokenizer (vocab.txt or tokenizer.json); "
                "MaskedLM needs the vocabulary."
            )
        task = MaskedLM(
            backbone,
            vocabulary=preprocessor.vocabulary,
            sequence_length=sequence_length,
            lowercase=preprocessor.lowercase,
            strip_accents=preprocessor.strip_accents,
        )
        head = task.masked_lm_head
        # The HF transform uses `hidden_act`; MaskedLM builds the head with exact GELU.
        head._intermediate_dense.activation = backbone.transformer_layers[0]._feedforward_intermediate_dense.activation
        bert_convert.port_mlm_head(head, porter, backbone)
    return Converted(backbone, preprocessor, task, config, porter.unused())


register_converter("bert", convert_bert)


def convert_gpt2(config: dict, weights: dict, path: str, sequence_length: int | None = None) -> Converted:
    """The GPT-2 converter: `GPT` backbone, byte-level BPE tokenizer and the LM head as `CausalLM`.

    The preprocessor is keras-hub's `GPT2Tokenizer` (ids equal HF's); the task is a `CausalLM`
    whose logits are HF `GPT2LMHeadModel`'s. Without tokenizer files both are None.
    """
    from keras_ptft.tasks.causal_lm import CausalLM  # convert/ sits above tasks/ in the flow

    arguments = gpt2_convert.backbone_config(config)
    sequence_length = _sequence_length(sequence_length, arguments["max_sequence_length"])
    tokenizer = None
    if gpt2_convert.has_tokenizer(path):
        tokenizer = gpt2_convert.gpt2_tokenizer(path, vocabulary_size=arguments["vocabulary_size"])
    porter = WeightPorter(gpt2_convert.normalize_keys(weights), source=path)
    backbone = GPT(**arguments)
    gpt2_convert.port_backbone(backbone, porter)
    gpt2_convert.port_lm_head(backbone, porter)
    task = None if tokenizer is None else CausalLM(backbone, tokenizer, sequence_length=sequence_length)
    return Converted(backbone, tokenizer, task, config, porter.unused())


register_converter("gpt2", convert_gpt2)


def convert_vit(config: dict, weights: dict, path: str, sequence_length: int | None = None) -> Converted:
    """The ViT converter: `ViT` backbone taking `[0, 1]` NHWC images (the image processor's
    normalisation is folded into the patch embedding, so there is no preprocessor) and, for
    `ViTForImageClassification`, the head as a `recipes.ImageClassifier` taking uint8 images."""
    from keras_ptft.tasks.image_classifier import ImageClassifier  # convert/ sits above tasks/ in the flow

    if sequence_length is not None:
        raise ValueError("`sequence_length` is for text models; a ViT folder takes none.")
    arguments = vit_convert.backbone_config(config)
    porter = WeightPorter(vit_convert.normalize_keys(weights), source=path)
    backbone = ViT(**arguments)
    mean, std = vit_convert.pixel_normalization(path, arguments["image_shape"][2])
    vit_convert.port_backbone(backbone, porter, mean, std)
    task = None
    if vit_convert.has_classifier(porter):
        num_classes = int(porter.weights["classifier.weight"].shape[0])
        task = ImageClassifier(backbone, num_classes, label_names=vit_convert.label_names(config, num_classes))
        vit_convert.port_classifier(task.output_dense, porter)
    return Converted(backbone, None, task, config, porter.unused())


register_converter("vit", convert_vit)
