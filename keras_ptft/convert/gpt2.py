"""Hugging Face GPT-2 (`model_type: "gpt2"`) → `keras_ptft.models.GPT` + `CausalLM` + byte-level BPE.

HF's GPT-2 uses `Conv1D` layers whose weights are already `(in, out)`, and one fused `c_attn`
matrix for query, key and value; the porting below splits it. keras_ptft's GPT shares keras-hub
GPT-2's layout, so the mapping is keras-hub's (`convert_gpt2.py`), plus what keras-hub skips:
`n_inner`, `layer_norm_epsilon`, an untied `lm_head`, and refusing config values GPT cannot run.
"""

from __future__ import annotations

import json
import os

import numpy as np

from keras_ptft.convert.tokenizers import HuggingFaceGPT2Tokenizer
from keras_ptft.convert.weights import WeightPorter, check_all_supported, check_present, check_supported, transpose
from keras_ptft.models.gpt import GPT

# GPT's blocks use GELU in its tanh form; these are the HF names of that same function.
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu_fast")

# Fields that change the computation but that GPT does not implement: field → the only value
# (or values) GPT reproduces.
_REQUIRED = {
    "scale_attn_weights": (True, None),
    "scale_attn_by_inverse_layer_idx": (False, None),
    "add_cross_attention": (False, None),
}

END_OF_TEXT = "<|endoftext|>"


def backbone_config(config: dict) -> dict:
    """The `GPT` constructor arguments of a HF GPT-2 `config.json`; refuses what `GPT` lacks."""
    check_all_supported(config, "GPT", _REQUIRED)
    check_supported(config, "GPT", "activation_function", ACTIVATIONS, default="gelu_new",
                    supported=f"{list(ACTIVATIONS)}, GELU in its tanh form")
    check_present(config, "GPT-2", ("vocab_size", "n_embd", "n_layer", "n_head"))
    hidden = config["n_embd"]
    return {
        "vocabulary_size": config["vocab_size"],
        "num_layers": config["n_layer"],
        "num_heads": config["n_head"],
        "hidden_dim": hidden,
        # HF: n_inner=None means 4 x n_embd (keras-hub's converter always assumes 4 x).
        "intermediate_dim": config.get("n_inner") or 4 * hidden,
        # GPT has one dropout rate; it only matters for further training.
        "dropout": config.get("resid_pdrop", 0.1),
        "max_sequence_length": config.get("n_positions", 1024),
        "tie_embeddings": bool(config.get("tie_word_embeddings", True)),
        "layer_norm_epsilon": config.get("layer_norm_epsilon", 1e-5),
    }


def normalize_keys(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Drops the `transformer.` prefix of `GPT2LMHeadModel` checkpoints and the causal-mask
    buffers (`attn.bias`, `attn.masked_bias`) older checkpoints save as if they were weights."""
    out = {}
    for key, value in weights.items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        out[key] = value
    return out


def port_backbone(backbone: GPT, porter: WeightPorter) -> None:
    """Copies embeddings, blocks and the final LayerNorm into `backbone`."""
    port = porter.port
    hidden = backbone.hidden_dim
    port(backbone.token_embedding.embeddings, "wte.weight")
    port(backbone.position_embedding.position_embeddings, "wpe.weight")
    for i, block in enumerate(backbone.transformer_layers):
        prefix = f"h.{i}."
        porter.port_layer_norm(block._self_attention_layer_norm, f"{prefix}ln_1")
        porter.port_layer_norm(block._feedforward_layer_norm, f"{prefix}ln_2")
        attention = block._self_attention_layer
        for j, dense in enumerate((attention.query_dense, attention.key_dense, attention.value_dense)):
            columns = slice(j * hidden, (j + 1) * hidden)
            # c_attn is (hidden, 3 x hidden) = [q | k | v]; EinsumDense wants (hidden, heads, head_dim).
            port(dense.kernel, f"{prefix}attn.c_attn.weight", lambda w, s, c=columns: _split(w[:, c], s))
            port(dense.bias, f"{prefix}attn.c_attn.bias", lambda w, s, c=columns: _split(w[c], s))
        port(attention.output_dense.kernel, f"{prefix}attn.c_proj.weight", lambda w, s: w.reshape(s))
        port(attention.output_dense.bias, f"{prefix}attn.c_proj.bias")
        port(block._feedforward_intermediate_dense.kernel, f"{prefix}mlp.c_fc.weight")
        port(block._feedforward_intermediate_dense.bias, f"{prefix}mlp.c_fc.bias")
        port(block._feedforward_output_dense.kernel, f"{prefix}mlp.c_proj.weight")
        port(block._feedforward_output_dense.bias, f"{prefix}mlp.c_proj.bias")
    porter.port_layer_norm(backbone.layer_norm, "ln_f")


def port_lm_head(backbone: GPT, porter: WeightPorter) -> None:
    """The LM head: tied (HF saves `lm_head.weight` equal to `wte.weight`, or not at all) or its
    own `(vocab, hidden)` matrix, which goes to the untied `ReversibleEmbedding`."""
    if not porter.has("lm_head.weight"):
        if not backbone.tie_embeddings:
            porter.take("lm_head.weight")  # raises, naming the tensor
        return
    if backbone.tie_embeddings:
        if not porter.matches("lm_head.weight", backbone.token_embedding.embeddings):
            raise ValueError(
                "lm_head.weight differs from wte.weight although config.json has tie_word_embeddings="
                "true; set it to false to load an untied head."
            )
        return
    porter.port(backbone.token_embedding.reverse_embeddings, "lm_head.weight", transpose)


def gpt2_tokenizer(path: str, vocabulary_size: int | None = None) -> HuggingFaceGPT2Tokenizer:
    """A byte-level BPE tokenizer (keras-hub's `GPT2Tokenizer`, HF's pre-split) with the
    vocabulary and merges of a HF folder.

    Reads `vocab.json` + `merges.txt`, or else the `BPE` model of `tokenizer.json`. The token ids
    are HF's own (the file's); the byte-to-unicode map, pre-split and merge ranks are HF's
    `GPT2Tokenizer`'s.

    Args:
        path: str. The Hugging Face folder.
        vocabulary_size: int or None. The model's `vocab_size`; the tokenizer must match it.
    """
    vocab_file, merges_file = os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt")
    if os.path.exists(vocab_file) and os.path.exists(merges_file):
        with open(vocab_file, encoding="utf-8") as f:
            vocabulary = json.load(f)
        with open(merges_file, encoding="utf-8") as f:
            # The first line of merges.txt is a "#version" header; blank lines carry no rule.
            merges = [line.rstrip("\n") for line in f if line.strip() and not line.startswith("#version")]
        source = vocab_file
    else:
        vocabulary, merges = _read_tokenizer_json(path)
        source = os.path.join(path, "tokenizer.json")
    if not isinstance(vocabulary, dict) or not vocabulary:
        raise ValueError(f"{source!r} must hold a non-empty JSON object of token -> id.")
    if vocabulary_size is not None and len(vocabulary) != vocabulary_size:
        raise ValueError(
            f"The tokenizer in {path!r} has {len(vocabulary)} tokens but config.json has "
            f"vocab_size={vocabulary_size}; they must match (is this the right tokenizer?)."
        )
    if END_OF_TEXT not in vocabulary:
        raise ValueError(f"The vocabulary in {source!r} lacks GPT-2's special token {END_OF_TEXT!r}.")
    return HuggingFaceGPT2Tokenizer(vocabulary=vocabulary, merges=merges)


def has_tokenizer(path: str) -> bool:
    return os.path.exists(os.path.join(path, "vocab.json")) or os.path.exists(os.path.join(path, "tokenizer.json"))


def _read_tokenizer_json(path: str) -> tuple[dict, list[str]]:
    tokenizer_file = os.path.join(path, "tokenizer.json")
    if not os.path.exists(tokenizer_file):
        raise FileNotFoundError(
            f"{path!r} has no GPT-2 tokenizer: expected vocab.json + merges.txt, or tokenizer.json."
        )
    with open(tokenizer_file, encoding="utf-8") as f:
        tokenizer = json.load(f)
    model = tokenizer.get("model") or {}
    if model.get("type") != "BPE":
        raise ValueError(f"{tokenizer_file!r} holds a {model.get('type')!r} tokenizer model; GPT-2 needs a BPE one.")
    pre_tokenizer = tokenizer.get("pre_tokenizer") or {}
    if pre_tokenizer.get("type") != "ByteLevel":
        raise ValueError(
            f"{tokenizer_file!r} has a {pre_tokenizer.get('type')!r} pre-tokenizer; only GPT-2's byte-level "
            "BPE (pre_tokenizer ByteLevel) is supported."
        )
    # tokenizers < 0.20 writes merges as "a b" strings, later versions as ["a", "b"] pairs.
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    vocabulary = dict(model.get("vocab") or {})
    for added in tokenizer.get("added_tokens") or []:
        vocabulary.setdefault(added["content"], added["id"])
    return vocabulary, merges


def _split(w: np.ndarray, shape: tuple) -> np.ndarray:
    return w.reshape(shape)

