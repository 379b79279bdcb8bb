"""Hugging Face BERT (`model_type: "bert"`) → `keras_ptft.models.Bert` (+ `MaskedLM` head)."""

from __future__ import annotations

import numpy as np

from keras_ptft.convert.weights import WeightPorter, check_all_supported, check_present, check_supported
from keras_ptft.models.bert import Bert

# HF `hidden_act` → keras_ptft `activation`. "gelu_new"/"gelu_pytorch_tanh" are the tanh
# approximation; HF's plain "gelu" is the exact erf form.
ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
}

# Fields that change the architecture but that `Bert` does not implement: (field, allowed values).
_UNSUPPORTED = {
    "position_embedding_type": ("absolute", None),
    "is_decoder": (False, None),
    "add_cross_attention": (False, None),
}


def backbone_config(config: dict) -> dict:
    """The `Bert` constructor arguments of a HF BERT `config.json`; refuses what `Bert` lacks."""
    check_all_supported(config, "Bert", _UNSUPPORTED)
    hidden_act = check_supported(config, "Bert", "hidden_act", ACTIVATIONS, default="gelu",
                                 supported=sorted(ACTIVATIONS))
    check_present(config, "BERT", ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                   "intermediate_size"))
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["num_hidden_layers"],
        "num_heads": config["num_attention_heads"],
        "hidden_dim": config["hidden_size"],
        "intermediate_dim": config["intermediate_size"],
        # Bert has one dropout rate; it only matters for further training.
        "dropout": config.get("hidden_dropout_prob", 0.1),
        "max_sequence_length": config.get("max_position_embeddings", 512),
        "num_segments": config.get("type_vocab_size", 2),
        "activation": ACTIVATIONS[hidden_act],
        "layer_norm_epsilon": config.get("layer_norm_eps", 1e-12),
    }


def normalize_keys(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the `bert.` prefix of `BertFor*` checkpoints and renames TF-era LayerNorm
    `gamma`/`beta` to `weight`/`bias`, so one key scheme serves every BERT checkpoint."""
    out = {}
    for key, value in weights.items():
        if key.startswith("bert."):
            key = key[len("bert."):]
        if ".LayerNorm." in key:
            key = key.replace(".LayerNorm.gamma", ".LayerNorm.weight").replace(".LayerNorm.beta", ".LayerNorm.bias")
        out[key] = value
    return out


def port_backbone(backbone: Bert, porter: WeightPorter) -> None:
    """Copies the encoder (and the pooler, when the checkpoint has one) into `backbone`."""
    port = porter.port
    port(backbone.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    port(backbone.position_embedding.position_embeddings, "embeddings.position_embeddings.weight")
    port(backbone.segment_embedding.embeddings, "embeddings.token_type_embeddings.weight")
    porter.port_layer_norm(backbone.embeddings_layer_norm, "embeddings.LayerNorm")
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"encoder.layer.{i}."
        porter.port_encoder_block(block, prefix, attention="attention.self")
        porter.port_layer_norm(block._self_attention_layer_norm, f"{prefix}attention.output.LayerNorm")
        porter.port_layer_norm(block._feedforward_layer_norm, f"{prefix}output.LayerNorm")
    if porter.has("pooler.dense.weight"):
        porter.port_dense(backbone.pooled_dense, "pooler.dense")
    else:
        porter.note_missing("pooler.dense.weight")


def has_mlm_head(porter: WeightPorter) -> bool:
    return porter.has("cls.predictions.transform.dense.weight")


def port_mlm_head(head, porter: WeightPorter, backbone: Bert) -> None:
    """Copies `cls.predictions.*` into keras-hub's `MaskedLMHead` (output tied to the embedding)."""
    porter.port_dense(head._intermediate_dense, "cls.predictions.transform.dense")
    porter.port_layer_norm(head._intermediate_layer_norm, "cls.predictions.transform.LayerNorm")
    bias_key = "cls.predictions.bias" if porter.has("cls.predictions.bias") else "cls.predictions.decoder.bias"
    porter.port(head._bias, bias_key)
    # keras_ptft ties the output projection to the token embedding, as BERT does; an untied
    # decoder cannot be represented, so refuse it rather than silently drop it.
    if porter.has("cls.predictions.decoder.weight"):
        if not porter.matches("cls.predictions.decoder.weight", backbone.token_embedding.embeddings):
            raise ValueError(
                "cls.predictions.decoder.weight differs from embeddings.word_embeddings.weight: the "
                "checkpoint's MLM output is not tied to the embedding, which keras_ptft's MaskedLM requires."
            )

