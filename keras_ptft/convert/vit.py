"""Hugging Face ViT (`model_type: "vit"`) → `keras_ptft.models.ViT` (+ `ImageClassifier` head).

Differences the porting bridges:
- HF adds one position table to `[CLS] + patches`; keras_ptft adds positions to the patches and
  folds the class token's position into the token itself (`cls_token + position[0]`).
- HF feeds `(pixels / 255 - mean) / std` in NCHW; keras_ptft's image recipes feed `pixels / 255`
  in NHWC. The normalisation is affine and the patch embedding linear, so it is folded into the
  patch-embedding kernel and bias: the converted backbone takes `[0, 1]` images, as
  `recipes.image_classifier` gives it, with no extra layer.
- Checkpoints of `ViTForImageClassification` prefix the encoder with `vit.`, `ViTModel` ones do
  not; both are read (keras-hub's converter requires the prefix, its issue #3007).
"""

from __future__ import annotations

import json
import os

import numpy as np

from keras_ptft.convert.weights import WeightPorter, check_all_supported, check_present
from keras_ptft.models.vit import ViT

# Fields that change the computation but that ViT does not implement: field → allowed values.
_REQUIRED = {
    "hidden_act": ("gelu", None, "gelu_python"),  # ViT's blocks use exact (erf) GELU
    "qkv_bias": (True, None),
}

# ViTImageProcessor's defaults, used when the folder has no preprocessor_config.json.
DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


def backbone_config(config: dict) -> dict:
    """The `ViT` constructor arguments of a HF ViT `config.json`; refuses what `ViT` lacks."""
    check_all_supported(config, "ViT", _REQUIRED)
    check_present(config, "ViT", ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"))
    image_size = _pair(config.get("image_size", 224), "image_size")
    patch_size = _pair(config.get("patch_size", 16), "patch_size")
    if patch_size[0] != patch_size[1]:
        raise ValueError(f"config.json has patch_size={config['patch_size']!r}; keras_ptft's ViT needs square patches.")
    return {
        "image_shape": (image_size[0], image_size[1], config.get("num_channels", 3)),
        "patch_size": patch_size[0],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        # ViT has one dropout rate; it only matters for further training.
        "dropout": config.get("hidden_dropout_prob", 0.0),
        "pooling": "token",
        "position_embedding": "learned",
        "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
    }


def normalize_keys(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the `vit.` prefix of `ViTFor*` checkpoints, so both key schemes read the same."""
    return {key.removeprefix("vit."): value for key, value in weights.items()}


def pixel_normalization(path: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """`(mean, std)` per channel of the HF image processor, on the `[0, 1]` scale."""
    mean, std = DEFAULT_MEAN, DEFAULT_STD
    config_file = os.path.join(path, "preprocessor_config.json")
    if os.path.exists(config_file):
        with open(config_file, encoding="utf-8") as f:
            processor = json.load(f)
        if not processor.get("do_normalize", True):
            mean, std = (0.0,) * channels, (1.0,) * channels
        else:
            mean, std = processor.get("image_mean", mean), processor.get("image_std", std)
        rescale = processor.get("rescale_factor", 1 / 255) if processor.get("do_rescale", True) else 1.0
        if not np.isclose(rescale, 1 / 255):
            raise ValueError(
                f"{config_file!r} has rescale_factor={rescale!r}; keras_ptft's image recipes scale pixels by "
                "1/255."
            )
    mean, std = np.resize(np.asarray(mean, "float64"), channels), np.resize(np.asarray(std, "float64"), channels)
    return mean, std


def port_backbone(backbone: ViT, porter: WeightPorter, mean: np.ndarray, std: np.ndarray) -> None:
    """Copies the patch embedding (normalisation folded in), positions, class token, blocks and
    final LayerNorm into `backbone`."""
    kernel = porter.take("embeddings.patch_embeddings.projection.weight")  # (hidden, C, p, p)
    bias = porter.take("embeddings.patch_embeddings.projection.bias")
    kernel = kernel.astype("float64").transpose(2, 3, 1, 0)  # → Keras (p, p, C, hidden)
    # conv((x - mean) / std) = conv'(x): scale each input channel by 1/std, shift the bias.
    folded = kernel / std[None, None, :, None]
    folded_bias = bias - np.einsum("hwco,c->o", folded, mean)
    _assign(backbone.patch_embedding.kernel, folded, "embeddings.patch_embeddings.projection.weight")
    _assign(backbone.patch_embedding.bias, folded_bias, "embeddings.patch_embeddings.projection.bias")
    positions = porter.take("embeddings.position_embeddings")  # (1, 1 + patches, hidden)
    expected = (1, backbone.num_patches + 1, backbone.hidden_dim)
    if tuple(positions.shape) != expected:
        raise ValueError(
            f"The tensor 'embeddings.position_embeddings' in {porter.source!r} has shape {tuple(positions.shape)}; "
            f"config.json's image_size and patch_size need {expected}."
        )
    backbone.patch_positions.embeddings.assign(positions[0, 1:])
    porter.port(backbone.class_token.token, "embeddings.cls_token", lambda w, s: (w + positions[:, :1]).reshape(s))
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"encoder.layer.{i}."
        porter.port_layer_norm(block._self_attention_layer_norm, f"{prefix}layernorm_before")
        porter.port_encoder_block(block, prefix, attention="attention.attention")
        porter.port_layer_norm(block._feedforward_layer_norm, f"{prefix}layernorm_after")
    porter.port_layer_norm(backbone.final_layer_norm, "layernorm")


def has_classifier(porter: WeightPorter) -> bool:
    return porter.has("classifier.weight")


def port_classifier(dense, porter: WeightPorter) -> None:
    porter.port_dense(dense, "classifier")


def label_names(config: dict, num_classes: int) -> list[str] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or len(id2label) != num_classes:
        return None
    return [str(id2label.get(str(i), id2label.get(i, i))) for i in range(num_classes)]


def _assign(variable, value: np.ndarray, key: str) -> None:
    if tuple(value.shape) != tuple(variable.shape):
        raise ValueError(
            f"The tensor {key!r} has shape {value.shape} after conversion, which does not fit "
            f"{variable.path!r} of shape {tuple(variable.shape)} (does config.json match the weights?)."
        )
    variable.assign(value.astype(variable.dtype))


def _pair(value, field: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"config.json has {field}={value!r}; expected an int or [height, width].")
