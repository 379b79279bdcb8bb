"""ViT: a Vision Transformer encoder (Dosovitskiy et al., 2020), ready for MAE pretraining."""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
from keras import ops
from keras_hub.layers import TransformerEncoder
from keras_hub.models import Backbone

from keras_ptft.models.layout import transformer_layout_map
from keras_ptft.models.sizes import family_sizes, resolve_size

# The shared size table (keras_ptft.models.sizes). ViT adds its input: 32x32x3 images in patches of
# 4 (64 tokens, CIFAR-10-sized, a CPU epoch within minutes) up to "medium"; ViT-B/16's 224x224x3 in
# patches of 16 for "base" ("base/16" is its deprecated alias).
_CPU_INPUT = dict(image_shape=(32, 32, 3), patch_size=4)
VIT_SIZES = family_sizes("ViT", {
    "tiny": _CPU_INPUT, "mini": _CPU_INPUT, "small": _CPU_INPUT, "medium": _CPU_INPUT,
    "base": dict(image_shape=(224, 224, 3), patch_size=16),
})
POOLINGS = ("token", "mean")
POSITION_EMBEDDINGS = ("learned", "sincos")


def _vit_initializer() -> keras.initializers.Initializer:
    return keras.initializers.TruncatedNormal(stddev=0.02)


def sincos_position_embedding(grid_height: int, grid_width: int, dim: int) -> np.ndarray:
    """Fixed 2-D sine-cosine positions, `(grid_height * grid_width, dim)`, row-major (MAE's form).

    Half the channels encode the row, half the column; each half is `[sin(p w_k), cos(p w_k)]` with
    `w_k = 1 / 10000^(k / (dim/4))`.
    """
    if dim % 4:
        raise ValueError(f"Sine-cosine positions need `hidden_dim` divisible by 4, received {dim}.")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype="float64") / (dim / 4))
    rows, cols = np.meshgrid(np.arange(grid_height), np.arange(grid_width), indexing="ij")

    def encode(positions):
        angles = positions.reshape(-1, 1) * omega[None]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    return np.concatenate([encode(rows), encode(cols)], axis=1).astype("float32")


@keras.saving.register_keras_serializable(package="keras_ptft")
class PatchPositions(keras.layers.Layer):
    """Adds a position vector to each patch token: learned, or fixed 2-D sine-cosine.

    Args:
        grid_shape: tuple of two ints. Patches per column and per row.
        kind: str. `"learned"` or `"sincos"` (a constant, not trained).
    """

    def __init__(self, grid_shape: Sequence[int], kind: str = "learned", **kwargs):
        super().__init__(**kwargs)
        if kind not in POSITION_EMBEDDINGS:
            raise ValueError(f"`position_embedding` must be one of {POSITION_EMBEDDINGS}, received {kind!r}.")
        self.grid_shape = tuple(int(g) for g in grid_shape)
        self.kind = kind

    def build(self, input_shape):
        num_patches, dim = self.grid_shape[0] * self.grid_shape[1], input_shape[-1]
        if self.kind == "learned":
            initializer = _vit_initializer()
        else:
            table = sincos_position_embedding(*self.grid_shape, dim)
            initializer = lambda shape, dtype=None: ops.convert_to_tensor(table, dtype)  # noqa: E731
        self.embeddings = self.add_weight(
            name="embeddings", shape=(num_patches, dim), initializer=initializer,
            trainable=self.kind == "learned",
        )

    def call(self, tokens):
        return tokens + ops.cast(self.embeddings, tokens.dtype)[None]

    def get_config(self) -> dict:
        return {**super().get_config(), "grid_shape": self.grid_shape, "kind": self.kind}


@keras.saving.register_keras_serializable(package="keras_ptft")
class ClassToken(keras.layers.Layer):
    """Prepends one learned `[CLS]` vector to a token sequence (its position is folded in)."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]), initializer=_vit_initializer())

    def call(self, tokens):
        batch = ops.shape(tokens)[0]
        token = ops.broadcast_to(ops.cast(self.token, tokens.dtype), (batch, 1, ops.shape(tokens)[-1]))
        return ops.concatenate([token, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])


@keras.saving.register_keras_serializable(package="keras_ptft")
class ViT(Backbone):
    """A ViT encoder: patch embedding, positions, optional class token, pre-LayerNorm blocks.

    The backbone maps float images to token features. Its two halves are also public so tasks can
    run the encoder on a subset of patches (MAE, `keras_ptft.tasks.MaskedImageModeling`):
    `embed_patches(images)` gives position-encoded patch tokens `(batch, num_patches, hidden_dim)`
    and `encode(tokens)` runs the class token, the blocks and the final LayerNorm on any subset.
    keras-hub's `ViTBackbone` offers no such split, hence this class.

    Args:
        image_shape: tuple of three ints. `(height, width, channels)`; height and width divisible
            by `patch_size`, channels 1 or 3.
        patch_size: int. Side of the square patches.
        num_layers: int. The number of encoder blocks.
        num_heads: int. The number of attention heads; must divide `hidden_dim`.
        hidden_dim: int. The width of the patch tokens and of every block's output.
        intermediate_dim: int. The width of the feed-forward layer inside each block.
        dropout: float. Dropout rate of the attention and feed-forward layers.
        pooling: str. `"token"` (a class token, as in ViT) or `"mean"` (average of the patch
            tokens, no class token, as MAE fine-tuning prefers).
        position_embedding: str. `"learned"` or `"sincos"` (fixed 2-D sine-cosine, as in MAE).
        layer_norm_epsilon: float. Epsilon of every LayerNorm.
        dtype: str or `keras.DTypePolicy`. The dtype policy.

    Inputs: float images `(batch, height, width, channels)`, scaled as the caller likes (the
    tasks and recipes feed uint8 / 255).
    Outputs: a dict with `sequence_output` `(batch, tokens, hidden_dim)` (the class token first
    when `pooling="token"`) and `pooled_output` `(batch, hidden_dim)`.

    Example:
    ```python
    import numpy as np
    import keras_ptft as kp

    vit = kp.models.ViT.from_size("tiny")
    outputs = vit(np.random.rand(2, 32, 32, 3).astype("float32"))
    outputs["pooled_output"].shape  # (2, 128)
    ```
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        patch_size: int,
        num_layers: int,
        num_heads: int,
        hidden_dim: int,
        intermediate_dim: int,
        dropout: float = 0.0,
        pooling: str = "token",
        position_embedding: str = "learned",
        layer_norm_epsilon: float = 1e-6,
        dtype=None,
        **kwargs,
    ):
        image_shape = _check_image_shape(image_shape, patch_size)
        for name, value in (("num_layers", num_layers), ("num_heads", num_heads), ("hidden_dim", hidden_dim),
                            ("intermediate_dim", intermediate_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")
        if hidden_dim % num_heads:
            raise ValueError(f"`hidden_dim` must be divisible by `num_heads`, received hidden_dim={hidden_dim} "
                             f"and num_heads={num_heads}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must be in [0, 1), received dropout={dropout!r}.")
        if pooling not in POOLINGS:
            raise ValueError(f"`pooling` must be one of {POOLINGS}, received pooling={pooling!r}.")
        grid_shape = (image_shape[0] // patch_size, image_shape[1] // patch_size)

        # === Layers ===
        # A strided convolution is the patch embedding: one linear map of each flattened patch.
        self.patch_embedding = keras.layers.Conv2D(
            hidden_dim, patch_size, strides=patch_size, kernel_initializer=_vit_initializer(),
            dtype=dtype, name="patch_embedding",
        )
        self.patch_positions = PatchPositions(grid_shape, position_embedding, dtype=dtype, name="position_embedding")
        self.class_token = ClassToken(dtype=dtype, name="class_token") if pooling == "token" else None
        self.transformer_layers = [
            TransformerEncoder(
                num_heads=num_heads,
                intermediate_dim=intermediate_dim,
                activation=lambda x: keras.activations.gelu(x, approximate=False),
                dropout=dropout,
                layer_norm_epsilon=layer_norm_epsilon,
                kernel_initializer=_vit_initializer(),
                normalize_first=True,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm"
        )
        # === Config === (before the graph: `embed_patches` and `encode` read them)
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.grid_shape = grid_shape
        self.num_patches = grid_shape[0] * grid_shape[1]
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.pooling = pooling
        self.position_embedding = position_embedding
        self.layer_norm_epsilon = layer_norm_epsilon

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        x = self.encode(self.embed_patches(images))
        pooled = x[:, 0, :] if pooling == "token" else ops.mean(x, axis=1)
        super().__init__(inputs=images, outputs={"sequence_output": x, "pooled_output": pooled}, dtype=dtype,
                         **kwargs)

    def embed_patches(self, images):
        """Images `(batch, H, W, C)` -> position-encoded patch tokens `(batch, num_patches, hidden_dim)`,
        row-major (the order of `patchify`)."""
        x = self.patch_embedding(images)
        x = ops.reshape(x, (-1, self.num_patches, self.hidden_dim))
        return self.patch_positions(x)

    def encode(self, tokens, training=None):
        """Runs the class token (if any), the blocks and the final LayerNorm on patch tokens."""
        x = self.class_token(tokens) if self.class_token is not None else tokens
        for block in self.transformer_layers:
            x = block(x, training=training)
        return self.final_layer_norm(x)

    # The Megatron-style model-parallel LayoutMap shared by the three backbones (models/layout.py).
    get_layout_map = staticmethod(transformer_layout_map)

    @classmethod
    def from_size(cls, size: str, **kwargs) -> "ViT":
        """Builds a randomly initialised ViT of a named size.

        Args:
            size: str. A name of the shared table (`keras_ptft.models.sizes`): `"tiny"`
                (L2/H128/A2), `"mini"` (L4/H256/A4), `"small"` (L4/H512/A8), `"medium"` (L8/H512/A8),
                all on 32x32x3 images in patches of 4, or `"base"` (ViT-B/16: 224x224x3, patch 16,
                L12/H768/A12; `"base/16"` is its deprecated alias). `"tiny"` and `"small"` meant
                L4/H192/A3 and a 224x224 L12/H384/A6 before; they warn once.
            **kwargs: any other constructor argument (e.g. `image_shape=(28, 28, 1)`).

        Example:
        ```python
        vit = ViT.from_size("tiny", image_shape=(28, 28, 1), pooling="mean")
        ```
        """
        return cls(**resolve_size("ViT", VIT_SIZES, size, kwargs))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "hidden_dim": self.hidden_dim,
                "intermediate_dim": self.intermediate_dim,
                "dropout": self.dropout,
                "pooling": self.pooling,
                "position_embedding": self.position_embedding,
                "layer_norm_epsilon": self.layer_norm_epsilon,
            }
        )
        return config


def patchify(images, patch_size: int):
    """`(batch, H, W, C)` -> `(batch, num_patches, patch_size * patch_size * C)`, row-major patches."""
    _, height, width, channels = images.shape
    h, w = height // patch_size, width // patch_size
    x = ops.reshape(images, (-1, h, patch_size, w, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, h * w, patch_size * patch_size * channels))


def unpatchify(patches, patch_size: int, image_shape: Sequence[int]):
    """The inverse of `patchify`."""
    height, width, channels = image_shape
    h, w = height // patch_size, width // patch_size
    x = ops.reshape(patches, (-1, h, w, patch_size, patch_size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def check_images(images, image_shape: Sequence[int], argument: str = "images") -> None:
    """Raises a `ValueError` unless `images` is uint8 `(batch, *image_shape)` (arrays or a
    tf.data element spec)."""
    shape, dtype = _shape_and_dtype(images)
    if shape is None:
        return
    if str(dtype) != "uint8":
        raise ValueError(f"`{argument}` must be uint8 images (0..255), received dtype {dtype}.")
    if len(shape) != 4 or tuple(shape[1:]) != tuple(image_shape):
        if len(shape) == 4 and shape[1:3] == tuple(image_shape[:2]):
            raise ValueError(
                f"`{argument}` must have {image_shape[2]} channel(s) to match the backbone, received images "
                f"of shape {tuple(shape)}."
            )
        raise ValueError(
            f"`{argument}` must have shape (batch, {', '.join(map(str, image_shape))}), received {tuple(shape)}."
        )


def _shape_and_dtype(images):
    if hasattr(images, "element_spec"):  # a tf.data.Dataset of images or (images, ...) tuples
        spec = images.element_spec
        spec = spec[0] if isinstance(spec, tuple) else spec
        return tuple(spec.shape), spec.dtype.name
    if isinstance(images, (list, tuple)):
        images = np.asarray(images)
    if hasattr(images, "shape") and hasattr(images, "dtype"):
        dtype = getattr(images.dtype, "name", images.dtype)
        return tuple(images.shape), str(dtype).replace("torch.", "")
    raise ValueError(f"`images` must be an array of uint8 images, received {type(images).__name__}.")


def _check_image_shape(image_shape, patch_size) -> tuple[int, int, int]:
    if not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size < 1:
        raise ValueError(f"`patch_size` must be a positive integer, received patch_size={patch_size!r}.")
    try:
        image_shape = tuple(int(s) for s in image_shape)
    except TypeError:
        raise ValueError(f"`image_shape` must be (height, width, channels), received {image_shape!r}.") from None
    if len(image_shape) != 3:
        raise ValueError(f"`image_shape` must be (height, width, channels), received {image_shape!r}.")
    height, width, channels = image_shape
    if channels not in (1, 3):
        raise ValueError(f"`image_shape` must have 1 or 3 channels, received image_shape={image_shape}.")
    if height < 1 or width < 1 or height % patch_size or width % patch_size:
        raise ValueError(
            f"`image_shape` height and width must be divisible by `patch_size`, received image_shape="
            f"{image_shape} and patch_size={patch_size}."
        )
    return image_shape
