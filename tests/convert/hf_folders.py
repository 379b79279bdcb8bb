"""Tiny Hugging Face BERT folders written with NumPy + safetensors, and a NumPy BERT forward pass
that serves as the independent reference (it follows `transformers.BertModel` line by line)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
from safetensors.numpy import save_file

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "dog",
         "##s", "a", "log", ".", "café", "cafe"]


def tiny_config(**overrides) -> dict:
    config = {
        "model_type": "bert",
        "architectures": ["BertForMaskedLM"],
        "vocab_size": len(VOCAB),
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 24,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 20,
        "type_vocab_size": 3,
        "layer_norm_eps": 1e-5,
        "position_embedding_type": "absolute",
    }
    config.update(overrides)
    return config


def tiny_weights(config: dict, seed: int = 0, mlm_head: bool = True, prefix: str = "bert.") -> dict:
    rng = np.random.default_rng(seed)
    h, v, f = config["hidden_size"], config["vocab_size"], config["intermediate_size"]

    def rand(*shape):
        return rng.normal(0, 0.3, shape).astype("float32")

    w = {
        "embeddings.word_embeddings.weight": rand(v, h),
        "embeddings.position_embeddings.weight": rand(config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": rand(config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": 1 + rand(h),
        "embeddings.LayerNorm.bias": rand(h),
        "pooler.dense.weight": rand(h, h),
        "pooler.dense.bias": rand(h),
    }
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            w[f"{p}attention.self.{name}.weight"] = rand(h, h)
            w[f"{p}attention.self.{name}.bias"] = rand(h)
        w[f"{p}attention.output.dense.weight"] = rand(h, h)
        w[f"{p}attention.output.dense.bias"] = rand(h)
        w[f"{p}attention.output.LayerNorm.weight"] = 1 + rand(h)
        w[f"{p}attention.output.LayerNorm.bias"] = rand(h)
        w[f"{p}intermediate.dense.weight"] = rand(f, h)
        w[f"{p}intermediate.dense.bias"] = rand(f)
        w[f"{p}output.dense.weight"] = rand(h, f)
        w[f"{p}output.dense.bias"] = rand(h)
        w[f"{p}output.LayerNorm.weight"] = 1 + rand(h)
        w[f"{p}output.LayerNorm.bias"] = rand(h)
    w = {prefix + k: val for k, val in w.items()}
    if mlm_head:
        w["cls.predictions.transform.dense.weight"] = rand(h, h)
        w["cls.predictions.transform.dense.bias"] = rand(h)
        w["cls.predictions.transform.LayerNorm.weight"] = 1 + rand(h)
        w["cls.predictions.transform.LayerNorm.bias"] = rand(h)
        w["cls.predictions.bias"] = rand(v)
        w["cls.predictions.decoder.weight"] = w[prefix + "embeddings.word_embeddings.weight"].copy()
    return w


def write_folder(path, config: dict, weights: dict, vocab=VOCAB, lowercase: bool = True) -> str:
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config, f)
    save_file(weights, os.path.join(path, "model.safetensors"))
    if vocab is not None:
        with open(os.path.join(path, "vocab.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(vocab) + "\n")
        with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": lowercase, "tokenizer_class": "BertTokenizer"}, f)
    return path


# === NumPy reference ===

def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


ACT = {"gelu": _gelu, "gelu_new": _gelu_tanh, "relu": lambda x: np.maximum(x, 0)}


def _ln(x, g, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * g + b


def numpy_bert(w: dict, config: dict, token_ids, segment_ids, padding_mask, prefix: str = "bert."):
    """`BertModel`'s last hidden state and pooled output, in float64 NumPy."""
    w = {k[len(prefix):] if k.startswith(prefix) else k: v.astype("float64") for k, v in w.items()}
    eps, act = config["layer_norm_eps"], ACT[config["hidden_act"]]
    heads = config["num_attention_heads"]
    length = token_ids.shape[1]
    x = (w["embeddings.word_embeddings.weight"][token_ids]
         + w["embeddings.position_embeddings.weight"][:length][None]
         + w["embeddings.token_type_embeddings.weight"][segment_ids])
    x = _ln(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    bias = (1.0 - padding_mask[:, None, None, :]) * -1e9
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(t, name):
            return t @ w[f"{p}{name}.weight"].T + w[f"{p}{name}.bias"]

        def split(t):
            b, s, hd = t.shape
            return t.reshape(b, s, heads, hd // heads).transpose(0, 2, 1, 3)

        q, k, v = (split(lin(x, f"attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1]) + bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        probs = scores / scores.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = _ln(x + lin(ctx, "attention.output.dense"), w[f"{p}attention.output.LayerNorm.weight"],
                w[f"{p}attention.output.LayerNorm.bias"], eps)
        ff = lin(act(lin(x, "intermediate.dense")), "output.dense")
        x = _ln(x + ff, w[f"{p}output.LayerNorm.weight"], w[f"{p}output.LayerNorm.bias"], eps)
    pooled = np.tanh(x[:, 0] @ w["pooler.dense.weight"].T + w["pooler.dense.bias"])
    return x, pooled


def numpy_mlm_logits(w: dict, config: dict, sequence_output, prefix: str = "bert."):
    """`BertForMaskedLM`'s prediction head on every position."""
    w = {k: v.astype("float64") for k, v in w.items()}
    act = ACT[config["hidden_act"]]
    x = act(sequence_output @ w["cls.predictions.transform.dense.weight"].T
            + w["cls.predictions.transform.dense.bias"])
    x = _ln(x, w["cls.predictions.transform.LayerNorm.weight"],
            w["cls.predictions.transform.LayerNorm.bias"], config["layer_norm_eps"])
    return x @ w[prefix + "embeddings.word_embeddings.weight"].T + w["cls.predictions.bias"]
