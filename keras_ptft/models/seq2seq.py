"""Seq2Seq: an encoder–decoder transformer with pre-LayerNorm blocks and cross-attention."""

from __future__ import annotations

import keras
from keras_hub.layers import PositionEmbedding, TransformerDecoder, TransformerEncoder
from keras_hub.models import Backbone

from keras_ptft.models.common import check_transformer_config
from keras_ptft.models.sizes import resolve_size

# Small sizes for CPU training from scratch, plus the geometry of BART-base (L6/H768/A12 on each
# side). The feed-forward width is 4 x hidden unless given; encoder and decoder have the same depth.
SEQ2SEQ_SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2),
    "mini": dict(num_layers=3, hidden_dim=256, num_heads=4),
    "small": dict(num_layers=6, hidden_dim=512, num_heads=8),
    "base": dict(num_layers=6, hidden_dim=768, num_heads=12),
}


def _initializer() -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="keras_ptft")
class Seq2Seq(Backbone):
    """An encoder–decoder transformer (Vaswani et al., 2017) with pre-LayerNorm blocks.

    The encoder is a stack of keras-hub `TransformerEncoder` blocks over token + learned position
    embeddings; the decoder a stack of `TransformerDecoder` blocks with causal self-attention and
    cross-attention to the encoder output (the decoder layers keep keras-hub's key/value caches,
    which `keras_ptft.tasks.Translator` uses for cached decoding). Each side ends with a
    LayerNorm. The decoder's `token_embedding` is a `ReversibleEmbedding`, so a task projects hidden
    states back onto the vocabulary with the same (tied) matrix; `tie_embeddings=False` gives the
    projection its own matrix. With `share_embeddings=True` (default: one tokenizer for both
    languages) the encoder reads the same token matrix; with False it has its own
    `encoder_token_embedding` over the same vocabulary. Pre-LayerNorm rather than BART's
    post-LayerNorm because it trains stably from scratch at the small sizes CPU budgets allow.

    Args:
        vocabulary_size: int. The number of token ids.
        num_layers: int. The number of blocks in the encoder, and in the decoder.
        num_heads: int. The number of attention heads; must divide `hidden_dim`.
        hidden_dim: int. The width of the embeddings and of every block's output.
        intermediate_dim: int. The width of the feed-forward layer inside each block.
        dropout: float. Dropout rate of the embeddings, attention and feed-forward layers.
        max_sequence_length: int. The longest input either side's position embedding can take.
        share_embeddings: bool. Whether the encoder and the decoder use one token embedding.
        tie_embeddings: bool. Whether the output projection reuses the decoder's token embedding.
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        dtype: str or `keras.DTypePolicy`. The dtype policy, e.g. `"mixed_bfloat16"`.

    Inputs: a dict with `encoder_token_ids`, `encoder_padding_mask`, `decoder_token_ids` and
    `decoder_padding_mask` (1 for real tokens), each `(batch, sequence)`; the two sides may differ in
    length.
    Outputs: a dict with `encoder_sequence_output` and `decoder_sequence_output`, the final hidden
    states `(batch, sequence, hidden_dim)` of each side after its last LayerNorm.

    Example:
    ```python
    import numpy as np
    import keras_ptft as kp

    model = kp.models.Seq2Seq.from_size("tiny", vocabulary_size=1000, max_sequence_length=64)
    outputs = model({
        "encoder_token_ids": np.array([[5, 17, 42, 0]]), "encoder_padding_mask": np.array([[1, 1, 1, 0]]),
        "decoder_token_ids": np.array([[2, 9, 0]]), "decoder_padding_mask": np.array([[1, 1, 0]]),
    })
    outputs["decoder_sequence_output"].shape  # (1, 3, 128)
    logits = model.token_embedding(outputs["decoder_sequence_output"], reverse=True)  # (1, 3, 1000)
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
        max_sequence_length: int = 256,
        share_embeddings: bool = True,
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
        for name, value in (("share_embeddings", share_embeddings), ("tie_embeddings", tie_embeddings)):
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be a bool, received {name}={value!r}.")

        # === Layers ===
        def embedding(name, tie_weights):
            return keras.layers.ReversibleEmbedding(
                input_dim=vocabulary_size,
                output_dim=hidden_dim,
                tie_weights=tie_weights,
                embeddings_initializer=_initializer(),
                dtype=dtype,
                name=name,
            )

        self.token_embedding = embedding("token_embedding", tie_embeddings)
        # Tied so that it has no (unused) output matrix of its own: only the decoder projects.
        self.encoder_token_embedding = (
            self.token_embedding if share_embeddings else embedding("encoder_token_embedding", True)
        )
        self.encoder_position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length, initializer=_initializer(), dtype=dtype,
            name="encoder_position_embedding",
        )
        self.decoder_position_embedding = PositionEmbedding(
            sequence_length=max_sequence_length, initializer=_initializer(), dtype=dtype,
            name="decoder_position_embedding",
        )
        self.encoder_embeddings_add = keras.layers.Add(dtype=dtype, name="encoder_embeddings_add")
        self.decoder_embeddings_add = keras.layers.Add(dtype=dtype, name="decoder_embeddings_add")
        self.encoder_embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="encoder_embeddings_dropout")
        self.decoder_embeddings_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="decoder_embeddings_dropout")
        block_options = dict(
            num_heads=num_heads,
            intermediate_dim=intermediate_dim,
            activation="gelu",
            dropout=dropout,
            layer_norm_epsilon=layer_norm_epsilon,
            kernel_initializer=_initializer(),
            normalize_first=True,
            dtype=dtype,
        )
        self.encoder_transformer_layers = [
            TransformerEncoder(**block_options, name=f"encoder_transformer_layer_{i}") for i in range(num_layers)
        ]
        self.decoder_transformer_layers = [
            TransformerDecoder(**block_options, name=f"decoder_transformer_layer_{i}") for i in range(num_layers)
        ]
        self.encoder_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="encoder_layer_norm"
        )
        self.decoder_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="decoder_layer_norm"
        )

        # === Functional Model ===
        inputs = {
            name: keras.Input(shape=(None,), dtype="int32", name=name)
            for name in ("encoder_token_ids", "encoder_padding_mask", "decoder_token_ids", "decoder_padding_mask")
        }
        tokens = self.encoder_token_embedding(inputs["encoder_token_ids"])
        x = self.encoder_embeddings_add((tokens, self.encoder_position_embedding(tokens)))
        x = self.encoder_embeddings_dropout(x)
        for block in self.encoder_transformer_layers:
            x = block(x, padding_mask=inputs["encoder_padding_mask"])
        encoder_output = self.encoder_layer_norm(x)

        tokens = self.token_embedding(inputs["decoder_token_ids"])
        x = self.decoder_embeddings_add((tokens, self.decoder_position_embedding(tokens)))
        x = self.decoder_embeddings_dropout(x)
        for block in self.decoder_transformer_layers:
            # The decoder applies the causal mask itself; the padding masks hide padding keys.
            x = block(
                decoder_sequence=x,
                encoder_sequence=encoder_output,
                decoder_padding_mask=inputs["decoder_padding_mask"],
                encoder_padding_mask=inputs["encoder_padding_mask"],
            )
        decoder_output = self.decoder_layer_norm(x)
        super().__init__(
            inputs=inputs,
            outputs={"encoder_sequence_output": encoder_output, "decoder_sequence_output": decoder_output},
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
        self.share_embeddings = share_embeddings
        self.tie_embeddings = tie_embeddings
        self.layer_norm_epsilon = layer_norm_epsilon

    @classmethod
    def from_size(cls, size: str, vocabulary_size: int, **kwargs) -> "Seq2Seq":
        """Builds a randomly initialised encoder–decoder of a named size.

        Args:
            size: str. One of `"tiny"` (L2/H128/A2), `"mini"` (L3/H256/A4), `"small"`
                (L6/H512/A8) or `"base"` (L6/H768/A12, BART-base's geometry); L is the depth of
                each side.
            vocabulary_size: int. The number of token ids.
            **kwargs: any other constructor argument (e.g. `max_sequence_length`, `dropout`).

        Example:
        ```python
        model = Seq2Seq.from_size("mini", vocabulary_size=8000, max_sequence_length=128)
        ```
        """
        return cls(vocabulary_size=vocabulary_size, **resolve_size("Seq2Seq", SEQ2SEQ_SIZES, size, kwargs))

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
                "share_embeddings": self.share_embeddings,
                "tie_embeddings": self.tie_embeddings,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config
