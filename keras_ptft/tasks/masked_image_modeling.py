"""Masked image modeling: MAE pretraining of a ViT (He et al., 2021), plus reconstructions."""

from __future__ import annotations

import os
import warnings

import json

import keras
import numpy as np
from keras import ops
from keras_hub.layers import TransformerEncoder

from keras_ptft.models.vit import PatchPositions, patchify, unpatchify
from keras_ptft.tasks.base import TrainingMixin
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.validation import check_images


@keras.saving.register_keras_serializable(package="keras_ptft")
class MaskedImageModeling(TrainingMixin, keras.Model):
    """MAE pretraining: mask most patches, encode the rest, reconstruct the masked pixels.

    Every step draws new uniform noise per image and masks the patches with the largest noise:
    exactly `round(mask_rate * num_patches)` patches per image, a different set for each image
    (seeded by `keras.utils.set_random_seed`). The backbone's encoder sees only the visible
    patches. A light decoder (its own width and depth, fixed sine-cosine positions) takes the
    encoded visible tokens plus a shared learned mask token at every masked position and predicts
    each patch's pixels. The loss is the mean squared error over the masked patches only; with
    `normalize_targets` each target patch is first normalised by its own mean and variance, which
    the MAE paper found gives better representations.

    Args:
        backbone: a `keras_ptft.models.ViT` (any backbone with `embed_patches`, `encode`,
            `patch_size`, `image_shape`, `num_patches` and `pooling`).
        mask_rate: float. Fraction of patches masked per image, in (0, 1) (the name `MaskedLM`
            uses too; `mask_ratio=` is still accepted, with a `DeprecationWarning`).
        decoder_dim: int. Width of the decoder.
        decoder_layers: int. Number of decoder blocks.
        decoder_heads: int. Attention heads of the decoder; must divide `decoder_dim`.
        normalize_targets: bool. Normalise each target patch by its mean and variance.
        seed: int or None. Seed of the masking noise and the shuffling; None follows
            `keras.utils.set_random_seed`.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model
            (`keras_ptft.training.resumable_callbacks`). Not saved with the model.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets validation
            data, else `"loss"`.

    Inputs: uint8 images `(batch, height, width, channels)` matching the backbone. `fit(images)`
    needs no labels; a `y` of images, if given, replaces the reconstruction targets.

    Example:
    ```python
    import numpy as np
    import keras_ptft as kp

    images = np.random.randint(0, 256, (64, 32, 32, 3), dtype="uint8")
    vit = kp.models.ViT.from_size("tiny", num_layers=1, hidden_dim=32, num_heads=2)
    mae = kp.tasks.MaskedImageModeling(vit, decoder_dim=32, decoder_layers=1)
    mae.fit(images, batch_size=16, epochs=1)
    reconstructions = mae.reconstruct(images[:4])
    ```
    """

    # Not a keras-hub `Task`: this model is subclassed, and keras-hub resets its pipeline base class
    # whenever a non-functional Task is built, which strips the functional machinery from every
    # functional Task alive in the process. `save_to_preset` / `from_preset` below write and read
    # the same files a keras-hub Task preset holds.

    def __init__(
        self,
        backbone: keras.Model,
        mask_rate: float = 0.75,
        decoder_dim: int = 128,
        decoder_layers: int = 2,
        decoder_heads: int = 4,
        normalize_targets: bool = True,
        seed: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        mask_ratio: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mask_ratio is not None:  # the first name, kept for old code and saved `.keras` files
            warnings.warn("`mask_ratio` is deprecated; use `mask_rate`.", DeprecationWarning, stacklevel=2)
            mask_rate = mask_ratio
        if isinstance(mask_rate, bool) or not isinstance(mask_rate, (int, float)) or not 0.0 < mask_rate < 1.0:
            raise ValueError(f"`mask_rate` must be in (0, 1), received mask_rate={mask_rate!r}.")
        num_masked = int(round(mask_rate * backbone.num_patches))
        if not 0 < num_masked < backbone.num_patches:
            raise ValueError(
                f"`mask_rate`={mask_rate} masks {num_masked} of the backbone's {backbone.num_patches} patches; "
                "at least one patch must be masked and one visible."
            )
        for name, value in (("decoder_dim", decoder_dim), ("decoder_layers", decoder_layers),
                            ("decoder_heads", decoder_heads)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, received {name}={value!r}.")
        if decoder_dim % decoder_heads:
            raise ValueError(f"`decoder_dim` must be divisible by `decoder_heads`, received {decoder_dim} and "
                             f"{decoder_heads}.")
        # === Config ===
        self.mask_rate = float(mask_rate)
        self.num_masked = num_masked
        self.decoder_dim = decoder_dim
        self.decoder_layers = decoder_layers
        self.decoder_heads = decoder_heads
        self.normalize_targets = normalize_targets
        self.seed = seed
        self.patch_size = backbone.patch_size
        self.image_shape = tuple(backbone.image_shape)
        # === Layers ===
        self.backbone = backbone
        init = keras.initializers.TruncatedNormal(stddev=0.02)
        self.decoder_embed = keras.layers.Dense(decoder_dim, kernel_initializer=init, name="decoder_embed")
        self.mask_token = self.add_weight(name="mask_token", shape=(1, 1, decoder_dim), initializer=init)
        self.decoder_positions = PatchPositions(backbone.grid_shape, "sincos", name="decoder_position_embedding")
        self.decoder_blocks = [
            TransformerEncoder(
                num_heads=decoder_heads,
                intermediate_dim=4 * decoder_dim,
                activation=lambda x: keras.activations.gelu(x, approximate=False),
                layer_norm_epsilon=1e-6,
                kernel_initializer=init,
                normalize_first=True,
                name=f"decoder_layer_{i}",
            )
            for i in range(decoder_layers)
        ]
        self.decoder_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="decoder_norm")
        patch_pixels = self.patch_size * self.patch_size * self.image_shape[2]
        self.decoder_pred = keras.layers.Dense(patch_pixels, kernel_initializer=init, name="decoder_pred")
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Built now, on one blank image: `from_preset` and the checkpoint check read the weights.
        self(np.zeros((1, *self.image_shape), "uint8"), noise=np.zeros((1, backbone.num_patches), "float32"))
        # === Training run === (not in `get_config`)
        self.set_run_options(checkpoint_dir, monitor)

    def random_noise(self, batch_size):
        """Uniform noise `(batch, num_patches)`; the `num_masked` largest entries per row are masked."""
        return keras.random.uniform((batch_size, self.backbone.num_patches), seed=self.seed_generator)

    def call(self, images, training=None, noise=None):
        """Returns `reconstruction` `(batch, num_patches, patch pixels)` and `mask` `(batch,
        num_patches)`, 1 where a patch was masked. `noise` (as from `random_noise`) fixes the mask."""
        x = _to_unit_range(images)
        num_patches = self.backbone.num_patches
        num_visible = num_patches - self.num_masked
        if noise is None:
            noise = self.random_noise(ops.shape(x)[0])
        shuffle = ops.argsort(noise, axis=1)  # ascending: the first `num_visible` stay visible
        restore = ops.argsort(shuffle, axis=1)
        keep = shuffle[:, :num_visible]

        tokens = self.backbone.embed_patches(x)
        visible = ops.take_along_axis(tokens, keep[:, :, None], axis=1)
        encoded = self.backbone.encode(visible, training=training)
        has_cls = self.backbone.pooling == "token"

        y = self.decoder_embed(encoded)
        patch_tokens = y[:, 1:] if has_cls else y
        masks = ops.broadcast_to(ops.cast(self.mask_token, y.dtype), (ops.shape(y)[0], self.num_masked, self.decoder_dim))
        y_full = ops.concatenate([patch_tokens, masks], axis=1)
        y_full = ops.take_along_axis(y_full, restore[:, :, None], axis=1)  # back to row-major order
        y_full = self.decoder_positions(y_full)
        if has_cls:
            y_full = ops.concatenate([y[:, :1], y_full], axis=1)
        for block in self.decoder_blocks:
            y_full = block(y_full, training=training)
        pred = self.decoder_pred(self.decoder_norm(y_full))
        if has_cls:
            pred = pred[:, 1:]
        mask = ops.cast(restore >= num_visible, "float32")
        return {"reconstruction": pred, "mask": mask}

    def patch_targets(self, images):
        """The reconstruction targets of `images`: `(batch, num_patches, patch pixels)` in [0, 1],
        per-patch normalised when `normalize_targets`."""
        target = patchify(_to_unit_range(images), self.patch_size)
        if self.normalize_targets:
            mean = ops.mean(target, axis=-1, keepdims=True)
            var = ops.var(target, axis=-1, keepdims=True)
            target = (target - mean) / ops.sqrt(var + 1e-6)
        return target

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean squared error over the pixels of masked patches only."""
        target = self.patch_targets(x if y is None else y)
        pred = ops.cast(y_pred["reconstruction"], "float32")
        mask = y_pred["mask"]
        per_patch = ops.mean(ops.square(pred - target), axis=-1)
        loss = ops.sum(per_patch * mask) / ops.maximum(ops.sum(mask), 1.0)
        losses = [loss] + [ops.cast(extra, "float32") for extra in self.losses]
        return ops.sum(ops.stack(losses)) if len(losses) > 1 else loss

    def compile(self, optimizer="auto", **kwargs):
        """Compiles with MAE's pretraining defaults: AdamW (lr 1.5e-4 x batch/256 in the paper; 1e-3
        here, as small CPU batches need), weight decay 0.05, no decay on LayerNorm/bias. The loss is
        built in; every `keras.Model.compile` argument may be passed."""
        if optimizer == "auto":
            optimizer = make_adamw(1e-3, weight_decay=0.05, beta_2=0.95)
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(optimizer=optimizer, **kwargs)

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        check_images(x, self.image_shape, "x", allow_empty=True)
        if y is not None:
            check_images(y, self.image_shape, "y", allow_empty=True)
        return x, y, sample_weight

    def reconstruct(self, images, noise=None, return_mask: bool = False):
        """Reconstructs `images` from a random (or `noise`-given) subset of their patches.

        Visible patches are copied from the input; masked ones come from the decoder. With
        normalised targets the decoder predicts each patch's pixels up to their mean and variance,
        so these are taken from the true (hidden) patch to map the prediction back to pixels, as
        MAE's published figures do: the picture shows the predicted structure, while each masked
        patch's brightness and contrast come from the original. Use `normalize_targets=False`
        for reconstructions that use nothing from the masked patches.

        Args:
            images: uint8 array `(batch, height, width, channels)`.
            noise: float array `(batch, num_patches)` or None for a random mask.
            return_mask: bool. Also return the per-pixel mask (1 = masked).

        Returns:
            uint8 reconstructions of the same shape, and the mask `(batch, height, width)` if asked.

        Example:
        ```python
        reconstructions = mae.reconstruct(images[:8])
        ```
        """
        check_images(images, self.image_shape, "images")
        outputs = self(images, training=False, noise=noise)
        pred = ops.cast(outputs["reconstruction"], "float32")
        patches = patchify(_to_unit_range(images), self.patch_size)
        if self.normalize_targets:
            mean = ops.mean(patches, axis=-1, keepdims=True)
            std = ops.sqrt(ops.var(patches, axis=-1, keepdims=True) + 1e-6)
            pred = pred * std + mean
        mask = outputs["mask"][:, :, None]
        mixed = patches * (1.0 - mask) + pred * mask
        pixels = unpatchify(ops.clip(mixed, 0.0, 1.0), self.patch_size, self.image_shape)
        result = np.round(keras.ops.convert_to_numpy(pixels) * 255).astype("uint8")
        if not return_mask:
            return result
        mask_pixels = unpatchify(
            ops.broadcast_to(mask, ops.shape(patches)), self.patch_size, self.image_shape
        )
        return result, keras.ops.convert_to_numpy(mask_pixels)[..., 0]

    def save_to_preset(self, path: str | os.PathLike) -> None:
        """Saves the whole task: the backbone as keras-hub saves one (`config.json` +
        `model.weights.h5`, so `image_classifier(path, ...)` loads it) and the task beside it
        (`task.json` + `task.weights.h5`, the decoder), for `from_preset`.

        Example:
        ```python
        mae.save_to_preset("saved_models/my_vit")
        mae = kp.tasks.MaskedImageModeling.from_preset("saved_models/my_vit")
        ```
        """
        path = os.fspath(path)
        self.backbone.save_to_preset(path)
        with open(os.path.join(path, "task.json"), "w", encoding="utf-8") as file:
            json.dump(keras.saving.serialize_keras_object(self), file)
        self.save_weights(os.path.join(path, "task.weights.h5"))

    @classmethod
    def from_preset(cls, path: str | os.PathLike, load_weights: bool = True) -> "MaskedImageModeling":
        """Loads a task saved with `save_to_preset` (backbone and decoder)."""
        path = os.fspath(path)
        task_file = os.path.join(path, "task.json")
        if not os.path.exists(task_file):
            raise FileNotFoundError(
                f"{path!r} holds no task.json: not a `MaskedImageModeling.save_to_preset` folder (a backbone "
                "alone loads with `kp.models.presets.load_backbone`)."
            )
        with open(task_file, encoding="utf-8") as file:
            task = keras.saving.deserialize_keras_object(json.load(file))
        if load_weights:
            task.load_weights(os.path.join(path, "task.weights.h5"))
        return task

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "mask_rate": self.mask_rate,
                "decoder_dim": self.decoder_dim,
                "decoder_layers": self.decoder_layers,
                "decoder_heads": self.decoder_heads,
                "normalize_targets": self.normalize_targets,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)


def save_reconstruction_grid(task: MaskedImageModeling, images, path: str | os.PathLike, noise=None) -> str:
    """Saves a PNG with one row per image: original, masked input, reconstruction.

    Args:
        task: a `MaskedImageModeling`.
        images: uint8 array `(batch, height, width, channels)`; up to 16 are drawn.
        path: str. The PNG file to write.
        noise: float array or None. Fixes the mask, as in `reconstruct`.

    Returns:
        The path written.

    Example:
    ```python
    save_reconstruction_grid(mae, images[:8], "reconstructions.png")
    ```
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    images = np.asarray(images)[:16]
    reconstructions, mask = task.reconstruct(images, noise=noise, return_mask=True)
    masked = (images * (1 - mask[..., None])).astype("uint8")
    gray = images.shape[-1] == 1
    fig, axes = plt.subplots(len(images), 3, figsize=(4.5, 1.5 * len(images)), squeeze=False)
    for row, columns in enumerate(zip(images, masked, reconstructions)):
        for col, picture in enumerate(columns):
            axis = axes[row, col]
            axis.imshow(picture[..., 0] if gray else picture, cmap="gray" if gray else None, vmin=0, vmax=255)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(("original", "masked", "reconstructed")[col], fontsize=8)
    fig.tight_layout()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _to_unit_range(images):
    # uint8 pixels -> float32 in [0, 1]
    return ops.cast(images, "float32") / 255.0
