"""A procedurally generated image dataset: shapes on textured backgrounds, with labels and masks.

It makes the vision quickstart and tests self-contained (no download): the same seed always gives
the same images. Each image holds one light shape of a class (circle, square, triangle, cross) with
a random colour, size, position and rotation, on a darker background of striped texture with noise.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SHAPE_CLASSES = ("circle", "square", "triangle", "cross")


class ShapesDataset(NamedTuple):
    """`images` uint8 `(n, size, size, channels)`; `labels` int32 `(n,)` indexing `class_names`;
    `masks` uint8 `(n, size, size)`: 0 for background, `label + 1` on the shape's pixels."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    class_names: tuple[str, ...]


def generate_shapes(
    num_images: int,
    image_size: int = 32,
    channels: int = 3,
    seed: int = 0,
    texture_contrast: float = 0.3,
) -> ShapesDataset:
    """Generates `num_images` shape images, deterministic for a given seed.

    Classes are balanced (cycled, then shuffled). Shapes span 35-80% of the image side, are
    rotated uniformly, and are always clearly lighter than the background (mean grey level at
    least 70 above it), so the class is recoverable from every image while colour, size and
    position are not shortcuts. A tiny ViT (2 layers, width 96, patch 4) reaches 0.55 accuracy on
    16 x 16 images after 10 epochs on 3,000 of them (chance 0.25).

    Args:
        num_images: int. How many images.
        image_size: int. Side of the square images, at least 8.
        channels: int. 3 for colour, 1 for grey.
        seed: int. The random seed.
        texture_contrast: float in [0, 1]. How far the background stripes swing between their two
            colours: 0 gives a flat background, 1 stripes from one random colour to another. The
            default keeps the stripes visibly weaker than the shape's edges.

    Returns:
        A `ShapesDataset` with `images`, `labels`, `masks` and `class_names`.

    Example:
    ```python
    data = generate_shapes(100, image_size=32)
    data.images.shape, data.labels[:5], data.class_names
    ```
    """
    if not isinstance(num_images, (int, np.integer)) or num_images < 1:
        raise ValueError(f"`num_images` must be a positive integer, received num_images={num_images!r}.")
    if not isinstance(image_size, (int, np.integer)) or image_size < 8:
        raise ValueError(f"`image_size` must be an integer >= 8, received image_size={image_size!r}.")
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3, received channels={channels!r}.")
    if not 0 <= texture_contrast <= 1:
        raise ValueError(f"`texture_contrast` must be in [0, 1], received texture_contrast={texture_contrast!r}.")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % len(SHAPE_CLASSES)).astype("int32")
    images = np.empty((num_images, image_size, image_size, channels), "uint8")
    masks = np.empty((num_images, image_size, image_size), "uint8")
    # Pixel centres in [-1, 1].
    coords = (np.arange(image_size) + 0.5) / image_size * 2 - 1
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    for i, label in enumerate(labels):
        inside = _shape_mask(SHAPE_CLASSES[label], xs, ys, rng)
        background, colour = _colours(rng, channels, texture_contrast)
        angle, frequency = rng.uniform(0, np.pi), rng.uniform(2, 8)
        stripes = 0.5 + 0.5 * np.sin(frequency * np.pi * (xs * np.cos(angle) + ys * np.sin(angle)) + rng.uniform(0, 6.3))
        texture = background[0] + stripes[..., None] * (background[1] - background[0])
        picture = np.where(inside[..., None], colour, texture)
        picture = picture + rng.normal(0, rng.uniform(0, 12), picture.shape)
        images[i] = np.clip(np.round(picture), 0, 255).astype("uint8")
        masks[i] = np.where(inside, label + 1, 0)
    return ShapesDataset(images, labels, masks, SHAPE_CLASSES)


def _shape_mask(name: str, xs: np.ndarray, ys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    radius = rng.uniform(0.35, 0.8)
    cx, cy = rng.uniform(-1 + radius * 0.8, 1 - radius * 0.8, size=2)
    theta = rng.uniform(0, 2 * np.pi)
    # Rotate the grid into the shape's own frame.
    u = (xs - cx) * np.cos(theta) + (ys - cy) * np.sin(theta)
    v = -(xs - cx) * np.sin(theta) + (ys - cy) * np.cos(theta)
    if name == "circle":
        inside = u**2 + v**2 <= radius**2
    elif name == "square":
        inside = np.maximum(np.abs(u), np.abs(v)) <= radius * 0.75
    elif name == "triangle":
        # Equilateral, centred on its centroid: inside three half-planes whose normals are 120° apart.
        normals = [(np.cos(a), np.sin(a)) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3, np.pi / 2 + 4 * np.pi / 3)]
        inside = np.all([u * nx + v * ny <= radius * 0.5 for nx, ny in normals], axis=0)
    else:  # cross
        arm = radius / 3
        inside = ((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))
    if not inside.any():  # a tiny image can miss every pixel centre: keep at least the centre pixel
        inside = (np.abs(xs - cx) == np.abs(xs - cx).min()) & (np.abs(ys - cy) == np.abs(ys - cy).min())
    return inside


def _colours(rng: np.random.Generator, channels: int, texture_contrast: float):
    """Two background colours (the stripes swing between them) and a lighter shape colour.

    The shape's mean grey level is at least 70 above both background colours: light shapes on a
    darker ground, the polarity of the masks. With the polarity random too, a 3-layer CNN stayed at
    chance after 8 epochs on 3,000 images even on a flat background (it learns the bare masks).
    """
    while True:
        background = rng.uniform(0, 170, (2, channels))
        background[1] = background[0] + texture_contrast * (background[1] - background[0])
        colour = rng.uniform(0, 255, channels)
        if colour.mean() - background.mean(axis=1).max() >= 70:
            return background, colour


def image_augmenter(
    image_shape,
    num_classes: int,
    random_flip: bool = True,
    crop_padding: int = 0,
    rand_augment: bool = False,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
    seed: int | None = None,
):
    """A `tf.data` map function `(images, one_hot_labels) -> (images, labels)` for training batches.

    It chains Keras' own preprocessing layers, which run inside `tf.data` on every backend:
    `RandomFlip` (horizontal), zero-padding by `crop_padding` then `RandomCrop` back to size,
    `RandAugment` (2 ops, magnitude 0.5) and, per batch, `MixUp` or `CutMix` (which mix the
    labels too, hence one-hot labels). Images are float32 in [0, 255] in and out.

    Example:
    ```python
    augment = image_augmenter((32, 32, 3), num_classes=10, crop_padding=4, mixup_alpha=0.2)
    dataset = dataset.map(augment)
    ```
    """
    import keras
    import tensorflow as tf

    height, width = image_shape[0], image_shape[1]
    flip = keras.layers.RandomFlip("horizontal", seed=seed) if random_flip else None
    crop = keras.layers.RandomCrop(height, width, seed=seed) if crop_padding else None
    randaug = keras.layers.RandAugment(value_range=(0, 255), seed=seed) if rand_augment else None
    mixers = []
    if mixup_alpha:
        mixers.append(keras.layers.MixUp(alpha=mixup_alpha, seed=seed))
    if cutmix_alpha:
        mixers.append(keras.layers.CutMix(factor=cutmix_alpha, seed=seed))

    def augment(images, labels):
        images = tf.cast(images, "float32")
        if flip is not None:
            images = flip(images, training=True)
        if crop is not None:
            p = crop_padding
            images = crop(tf.pad(images, [[0, 0], [p, p], [p, p], [0, 0]]), training=True)
        if randaug is not None:
            images = randaug(images, training=True)
        if mixers:
            def mix(layer):
                def apply():
                    mixed = layer({"images": images, "labels": labels}, training=True)
                    return mixed["images"], tf.cast(mixed["labels"], "float32")

                return apply

            if len(mixers) == 1:
                images, labels = mix(mixers[0])()
            else:  # as in timm: MixUp or CutMix, half the batches each
                images, labels = tf.cond(tf.random.uniform(()) < 0.5, mix(mixers[0]), mix(mixers[1]))
        return tf.ensure_shape(images, (None, *image_shape)), labels

    return augment
