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


def write_sentence_transformers_pooling(path, **flags) -> str:
    """Turns a Hugging Face BERT folder into a sentence-transformers one: modules.json and
    1_Pooling/config.json with the given `pooling_mode_*` flags on (the others off)."""
    path = os.fspath(path)
    with open(os.path.join(path, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}], f)
    os.makedirs(os.path.join(path, "1_Pooling"), exist_ok=True)
    config = {"pooling_mode_cls_token": False, "pooling_mode_mean_tokens": False,
              "pooling_mode_max_tokens": False, "pooling_mode_mean_sqrt_len_tokens": False, **flags}
    with open(os.path.join(path, "1_Pooling", "config.json"), "w") as f:
        json.dump(config, f)
    return path


def write_bert_folder(path, seed: int = 0) -> str:
    """A tiny Hugging Face BERT folder (config, safetensors, vocab.txt)."""
    config = tiny_config()
    return write_folder(path, config, tiny_weights(config, seed=seed))


def write_gpt2_folder(path, texts, vocabulary_size: int = 264, seed: int = 0, hidden: int = 16, layers: int = 2,
                      positions: int = 32) -> str:
    """A tiny Hugging Face GPT-2 folder written with NumPy: `GPT2LMHeadModel`'s tensor names and
    shapes (Conv1D kernels `(in, out)`, fused `c_attn`), a tied head, and a byte-level BPE
    (vocab.json + merges.txt) learned on `texts`."""
    from keras_ptft.data.bpe import train_bpe

    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    vocabulary, merges = train_bpe(list(texts), vocabulary_size=vocabulary_size, verbose=False)
    rng = np.random.default_rng(seed)
    rand = lambda *shape: rng.normal(0, 0.2, shape).astype("float32")  # noqa: E731
    h, v, f = hidden, len(vocabulary), 2 * hidden
    weights = {"transformer.wte.weight": rand(v, h), "transformer.wpe.weight": rand(positions, h),
               "transformer.ln_f.weight": 1 + rand(h), "transformer.ln_f.bias": rand(h)}
    for i in range(layers):
        p = f"transformer.h.{i}."
        weights.update({
            f"{p}ln_1.weight": 1 + rand(h), f"{p}ln_1.bias": rand(h), f"{p}ln_2.weight": 1 + rand(h),
            f"{p}ln_2.bias": rand(h), f"{p}attn.c_attn.weight": rand(h, 3 * h), f"{p}attn.c_attn.bias": rand(3 * h),
            f"{p}attn.c_proj.weight": rand(h, h), f"{p}attn.c_proj.bias": rand(h),
            f"{p}mlp.c_fc.weight": rand(h, f), f"{p}mlp.c_fc.bias": rand(f),
            f"{p}mlp.c_proj.weight": rand(f, h), f"{p}mlp.c_proj.bias": rand(h),
        })
    config = {"model_type": "gpt2", "vocab_size": v, "n_embd": h, "n_layer": layers, "n_head": 2, "n_inner": f,
              "n_positions": positions, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
              "tie_word_embeddings": True}
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh)
    save_file(weights, os.path.join(path, "model.safetensors"))
    with open(os.path.join(path, "vocab.json"), "w", encoding="utf-8") as fh:
        json.dump(vocabulary, fh, ensure_ascii=False)
    with open(os.path.join(path, "merges.txt"), "w", encoding="utf-8") as fh:
        fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    return path


def write_vit_folder(path, seed: int = 0, image_size: int = 8, patch: int = 4, channels: int = 3,
                     hidden: int = 16, layers: int = 2) -> str:
    """A tiny Hugging Face ViT folder (`ViTModel` tensor names and shapes) written with NumPy."""
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    rand = lambda *shape: rng.normal(0, 0.2, shape).astype("float32")  # noqa: E731
    h, f, tokens = hidden, 2 * hidden, 1 + (image_size // patch) ** 2
    weights = {
        "embeddings.patch_embeddings.projection.weight": rand(h, channels, patch, patch),
        "embeddings.patch_embeddings.projection.bias": rand(h),
        "embeddings.position_embeddings": rand(1, tokens, h), "embeddings.cls_token": rand(1, 1, h),
        "layernorm.weight": 1 + rand(h), "layernorm.bias": rand(h),
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for name in ("query", "key", "value"):
            weights[f"{p}attention.attention.{name}.weight"] = rand(h, h)
            weights[f"{p}attention.attention.{name}.bias"] = rand(h)
        weights.update({
            f"{p}attention.output.dense.weight": rand(h, h), f"{p}attention.output.dense.bias": rand(h),
            f"{p}layernorm_before.weight": 1 + rand(h), f"{p}layernorm_before.bias": rand(h),
            f"{p}layernorm_after.weight": 1 + rand(h), f"{p}layernorm_after.bias": rand(h),
            f"{p}intermediate.dense.weight": rand(f, h), f"{p}intermediate.dense.bias": rand(f),
            f"{p}output.dense.weight": rand(h, f), f"{p}output.dense.bias": rand(h),
        })
    config = {"model_type": "vit", "hidden_size": h, "num_hidden_layers": layers, "num_attention_heads": 2,
              "intermediate_size": f, "image_size": image_size, "patch_size": patch, "num_channels": channels,
              "hidden_act": "gelu", "layer_norm_eps": 1e-12, "qkv_bias": True}
    with open(os.path.join(path, "config.json"), "w") as fh:
        json.dump(config, fh)
    save_file(weights, os.path.join(path, "model.safetensors"))
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
