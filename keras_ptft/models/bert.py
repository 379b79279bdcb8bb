"""BERT: a bidirectional transformer encoder (Devlin et al., 2018)."""

from __future__ import annotations

from typing import Sequence

import keras
from keras_hub.layers import PositionEmbedding, TransformerEncoder
from keras_hub.models import Backbone

from keras_ptft.models.layout import transformer_layout_map
from keras_ptft.models.common import check_transformer_config
from keras_ptft.models.sizes import family_sizes, resolve_size

# The shared size table (keras_ptft.models.sizes: the BERT miniatures of Turc et al., 2019, and
# BERT-base); BERT adds no field of its own.
BERT_SIZES = family_sizes("Bert")


def _bert_initializer() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="keras_ptft")
class HeadPrunedEncoder(TransformerEncoder):
    """keras-hub's `TransformerEncoder` with an explicit attention head width `key_dim`.

    keras-hub derives `key_dim = hidden_dim // num_heads`, so a block with some heads removed
    (`kp.recipes.prune_heads`) would get wider heads; this one keeps the original head width with
    fewer heads. Sub-layers and weight paths are keras-hub's.

    Args:
        key_dim: int. The width of every attention head.
        **kwargs: `TransformerEncoder` arguments (`num_heads` is this block's head count).

    Example:
    ```python
    block = HeadPrunedEncoder(num_heads=3, key_dim=8, intermediate_dim=64)  # 3 heads of 8 on any width
    ```
    """

    def __init__(self, *args, key_dim: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_dim = int(key_dim)

    def build(self, inputs_shape):
        super().build(inputs_shape)
        # Replaces keras-hub's attention (built with hidden // num_heads wide heads) by one with
        # `key_dim` wide heads; untracked first, so the block holds only the new weights.
        self._tracker.untrack(self._self_attention_layer)
        self._self_attention_layer = keras.layers.MultiHeadAttention(
            num_heads=self.num_heads,
            key_dim=self.key_dim,
            dropout=self.dropout,
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            bias_initializer=keras.initializers.get(keras.initializers.serialize(self.bias_initializer)),
            dtype=self.dtype_policy,
            name="self_attention_layer",
        )
        self._self_attention_layer.build(query_shape=inputs_shape, value_shape=inputs_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "key_dim": self.key_dim}


@keras.saving.register_keras_serializable(package="keras_ptft")
class Bert(Backbone):
    """A BERT encoder: token, position and segment embeddings, then post-LayerNorm encoder blocks.

    Sub-layers carry the same names as keras-hub's `BertBackbone`, so weights move between the two
    (see `keras_ptft.convert`). Unlike it, the activation, LayerNorm epsilon and number of segment
    types are configurable, which Hugging Face checkpoints need.

    Args:
        vocabulary_size: int. The number of token ids.
        num_layers: int. The number of encoder blocks.
        num_heads: int. The number of attention heads; must divide `hidden_dim`.
        hidden_dim: int. The width of the embeddings and of every block's output.
        intermediate_dim: int. The width of the feed-forward layer inside each block.
        dropout: float. Dropout rate of the embeddings, attention and feed-forward layers.
        max_sequence_length: int. The longest input the position embedding can take.
        num_segments: int. The number of segment (token type) ids.
        activation: str. The feed-forward activation: `"gelu"` (exact erf form, as in BERT),
            `"gelu_approximate"` (tanh form) or `"relu"`.
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        head_counts: list of int or None. The number of attention heads of each block, for a
            model whose heads were pruned (`kp.recipes.prune_heads`); None: `num_heads` in every
            block.
        key_dim: int or None. The width of each attention head; None: `hidden_dim // num_heads`.
        dtype: str or `keras.DTypePolicy`. The dtype policy, e.g. `"mixed_bfloat16"`.

    Inputs: a dict with `token_ids`, `segment_ids` and `padding_mask` (1 for real tokens), each of
    shape `(batch, sequence)`.
    Outputs: a dict with `sequence_output` `(batch, sequence, hidden_dim)` and `pooled_output`
    `(batch, hidden_dim)` (tanh projection of the first, `[CLS]`, position).

    Example:
    ```python
    import numpy as np
    import keras_ptft as kp

    bert = kp.models.Bert.from_size("tiny", vocabulary_size=1000, max_sequence_length=64)
    outputs = bert({
        "token_ids": np.array([[2, 57, 98, 3, 0]]),
        "segment_ids": np.zeros((1, 5), "int32"),
        "padding_mask": np.array([[1, 1, 1, 1, 0]]),
    })
    outputs["pooled_output"].shape  # (1, 128)
    ```
    """

    def __init__(
        self,
        vocabulary_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.1,
        max_sequence_length: int = 512,
        num_segments: int = 2,
        activation: str = "gelu",
        layer_norm_epsilon: float = 1e-12,
        head_counts: Sequence[int] | None = None,
        key_dim: int | None = None,
        dtype=None,
        **kwargs,
    ):
        check_transformer_config(
            vocabulary_size=vocabulary_size,
            num_layers=num_layers,
            num_heads=num_heads,
            hidden_dim=hidden_dim,
            intermediate_dim=intermediate_dim,
            dropout=dropout,
            max_sequence_length=max_sequence_length,
        )
        if num_segments < 1:
            raise ValueError(f"`num_segments` must be >= 1, received num_segments={num_segments}.")
        activation_fn = _activation(activation)
        head_counts = _check_head_counts(head_counts, num_layers)
        if key_dim is not None and (isinstance(key_dim, bool) or not isinstance(key_dim, int) or key_dim < 1):
            raise ValueError(f"`key_dim` must be a positive integer or None, received key_dim={key_dim!r}.")

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            embeddings_initializer=_bert_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=_bert_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            input_dim=num_segments,
            output_dim=hidden_dim,
            embeddings_initializer=_bert_initializer(),
            dtype=dtype,
            name="segment_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        # keras-hub's block unless heads were pruned (existing configs build exactly as before).
        pruned = head_counts is not None or key_dim is not None
        self.transformer_layers = [
            (HeadPrunedEncoder if pruned else TransformerEncoder)(
                num_heads=head_counts[i] if head_counts is not None else num_heads,
                intermediate_dim=intermediate_dim,
                activation=activation_fn,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=_bert_initializer(),
                dtype=dtype,
                name=f"transformer_layer_{i}",
                **({"key_dim": key_dim or hidden_dim // num_heads} if pruned else {}),
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim,
            activation="tanh",
            kernel_initializer=_bert_initializer(),
            dtype=dtype,
            name="pooled_dense",
        )

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_ids)
        x = self.embeddings_add(
            (tokens, self.position_embedding(tokens), self.segment_embedding(segment_ids))
        )
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        for block in self.transformer_layers:
            x = block(x, padding_mask=padding_mask)
        pooled = self.pooled_dense(x[:, 0, :])
        super().__init__(
            inputs={"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask},
            outputs={"sequence_output": x, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.head_counts = None if head_counts is None else tuple(head_counts)
        self.key_dim = key_dim

    # The Megatron-style model-parallel LayoutMap shared by the three backbones (models/layout.py).
    get_layout_map = staticmethod(transformer_layout_map)

    @classmethod
    def from_size(cls, size: str, vocabulary_size: int, **kwargs) -> "Bert":
        """Builds a randomly initialised BERT of a named size.

        Args:
            size: str. One of `"tiny"` (L2/H128/A2), `"mini"` (L4/H256/A4), `"small"`
                (L4/H512/A8), `"medium"` (L8/H512/A8) or `"base"` (L12/H768/A12).
            vocabulary_size: int. The number of token ids.
            **kwargs: any other constructor argument (e.g. `max_sequence_length`, `dropout`).

        Example:
        ```python
        bert = Bert.from_size("mini", vocabulary_size=8000)
        ```
        """
        return cls(vocabulary_size=vocabulary_size, **resolve_size("Bert", BERT_SIZES, size, kwargs))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "vocabulary_size": self.vocabulary_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "max_sequence_length": self.max_sequence_length,
                "num_segments": self.num_segments,
                "activation": self.activation,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        # Only when set, so configs of unpruned models stay as they were.
        if self.head_counts is not None:
            config["head_counts"] = list(self.head_counts)
        if self.key_dim is not None:
            config["key_dim"] = self.key_dim
        return config


def _check_head_counts(head_counts, num_layers: int):
    if head_counts is None:
        return None
    counts = list(head_counts) if isinstance(head_counts, (list, tuple)) else None
    if counts is None or len(counts) != num_layers or not all(
        isinstance(c, int) and not isinstance(c, bool) and 1 <= c for c in counts
    ):
        raise ValueError(
            f"`head_counts` must be a list of `num_layers`={num_layers} integers >= 1 (heads per block), "
            f"received head_counts={head_counts!r}."
        )
    return counts


def _activation(name: str):
    # BERT's reference code uses the exact erf GELU; keras-hub's BertBackbone uses the tanh
    # approximation. Both are offered so checkpoints from either side reproduce exactly.
    choices = {
        "gelu": lambda x: keras.activations.gelu(x, approximate=False),
        "gelu_approximate": lambda x: keras.activations.gelu(x, approximate=True),
        "relu": keras.activations.relu,
    }
    if name not in choices:
        raise ValueError(
            f"`activation` must be one of {sorted(choices)}, received activation={name!r}."
        )
    return choices[name]
