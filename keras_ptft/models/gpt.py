"""GPT: a decoder-only transformer with pre-LayerNorm blocks (Radford et al., 2019)."""

from __future__ import annotations

import keras
from keras_hub.layers import PositionEmbedding, TransformerDecoder
from keras_hub.models import Backbone

from keras_ptft.models.layout import transformer_layout_map
from keras_ptft.models.common import check_transformer_config
from keras_ptft.models.sizes import family_sizes, resolve_size

# The shared size table (keras_ptft.models.sizes); "base" is GPT-2 small (124M parameters with its
# 50257-token vocabulary) and takes its 1024-token context. "124M" is its deprecated alias.
GPT_SIZES = family_sizes("GPT", {"base": dict(max_sequence_length=1024)})


@keras.saving.register_keras_serializable(package="keras_ptft")
def gelu_approximate(x):
    """GELU in GPT-2's tanh form; a named function so saved configs can find it again."""
    return keras.activations.gelu(x, approximate=True)


def _gpt_initializer() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="keras_ptft")
class GPT(Backbone):
    """A GPT decoder: token + learned position embeddings, pre-LayerNorm causal blocks, final LayerNorm.

    Every block is `x + attention(layer_norm(x))` then `x + mlp(layer_norm(x))` with a causal
    mask, as in GPT-2. The token embedding is a `ReversibleEmbedding`, so a language-model head can
    project hidden states back onto the vocabulary with the same (tied) matrix; pass
    `tie_embeddings=False` to give the head its own matrix. Sub-layers carry the same names as
    keras-hub's `GPT2Backbone` (`token_embedding`, `position_embedding`, `transformer_layer_{i}`,
    `layer_norm`), so weights move between the two and keras-hub's cached decoding applies.

    Args:
        vocabulary_size: int. The number of token ids.
        num_layers: int. The number of decoder blocks.
        num_heads: int. The number of attention heads; must divide `hidden_dim`.
        hidden_dim: int. The width of the embeddings and of every block's output.
        intermediate_dim: int. The width of the feed-forward layer inside each block.
        dropout: float. Dropout rate of the embeddings, attention and feed-forward layers.
        max_sequence_length: int. The longest input the position embedding can take.
        tie_embeddings: bool. Whether the output projection reuses the token embedding matrix.
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        dtype: str or `keras.DTypePolicy`. The dtype policy, e.g. `"mixed_bfloat16"`.

    Inputs: a dict with `token_ids` and `padding_mask` (1 for real tokens), each `(batch, sequence)`.
    Outputs: the final hidden states `(batch, sequence, hidden_dim)` after the last LayerNorm.

    Example:
    ```python
    import numpy as np
    import keras_ptft as kp

    gpt = kp.models.GPT.from_size("tiny", vocabulary_size=1000, max_sequence_length=64)
    hidden = gpt({"token_ids": np.array([[5, 17, 42, 0]]), "padding_mask": np.array([[1, 1, 1, 0]])})
    hidden.shape  # (1, 4, 128)
    logits = gpt.token_embedding(hidden, reverse=True)  # (1, 4, 1000)
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
        tie_embeddings: bool = True,
        layer_norm_epsilon: float = 1e-5,
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
        if not isinstance(tie_embeddings, bool):
            raise ValueError(f"`tie_embeddings` must be a bool, received tie_embeddings={tie_embeddings!r}.")

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            input_dim=vocabulary_size,
            output_dim=hidden_dim,
            tie_weights=tie_embeddings,
            embeddings_initializer=_gpt_initializer(),
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length,
            initializer=_gpt_initializer(),
            dtype=dtype,
            name="position_embedding",
        )
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            TransformerDecoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=gelu_approximate,
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=_gpt_initializer(),
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="layer_norm"
        )

        # === Functional Model ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="int32", name="padding_mask")
        tokens = self.token_embedding(token_ids)
        x = self.embeddings_add((tokens, self.position_embedding(tokens)))
        x = self.embeddings_dropout(x)
        for block in self.transformer_layers:
            # The decoder applies the causal mask itself; the padding mask also hides padding keys.
            x = block(x, decoder_padding_mask=padding_mask)
        x = self.layer_norm(x)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=x,
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
        self.tie_embeddings = tie_embeddings
        self.layer_norm_epsilon = layer_norm_epsilon

    # The Megatron-style model-parallel LayoutMap shared by the three backbones (models/layout.py).
    get_layout_map = staticmethod(transformer_layout_map)

    @classmethod
    def from_size(cls, size: str, vocabulary_size: int, **kwargs) -> "GPT":
        """Builds a randomly initialised GPT of a named size.

        Args:
            size: str. A name of the shared table (`keras_ptft.models.sizes`): `"tiny"`
                (L2/H128/A2), `"mini"` (L4/H256/A4), `"small"` (L4/H512/A8), `"medium"` (L8/H512/A8)
                or `"base"` (GPT-2 small: L12/H768/A12, 1024 positions; `"124M"` is its deprecated
                alias). `"small"` meant L6/H512/A8 before; it warns once.
            vocabulary_size: int. The number of token ids (50257 for GPT-2's own vocabulary).
            **kwargs: any other constructor argument (e.g. `max_sequence_length`, `dropout`).

        Example:
        ```python
        gpt = GPT.from_size("mini", vocabulary_size=8000, max_sequence_length=256)
        ```
        """
        return cls(vocabulary_size=vocabulary_size, **resolve_size("GPT", GPT_SIZES, size, kwargs))

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
                "tie_embeddings": self.tie_embeddings,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
