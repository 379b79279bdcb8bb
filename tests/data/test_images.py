import numpy as np
import pytest

from keras_ptft.data import SHAPE_CLASSES, generate_shapes


def test_shapes_dataset_is_deterministic_and_well_formed():
    data = generate_shapes(40, image_size=24, seed=5)
    again = generate_shapes(40, image_size=24, seed=5)
    np.testing.assert_array_equal(data.images, again.images)
    np.testing.assert_array_equal(data.masks, again.masks)
    assert not np.array_equal(data.images, generate_shapes(40, image_size=24, seed=6).images)
    assert data.images.shape == (40, 24, 24, 3) and data.images.dtype == np.uint8
    assert data.masks.shape == (40, 24, 24) and data.labels.shape == (40,)
    assert data.class_names == SHAPE_CLASSES
    np.testing.assert_array_equal(np.bincount(data.labels), [10, 10, 10, 10])  # balanced
    for image, mask, label in zip(data.images, data.masks, data.labels):
        # Each mask holds the background and exactly its own class, and the shape is visible:
        # lighter than the background (70 grey levels by design, less the noise).
        assert set(np.unique(mask)) == {0, label + 1}
        shape, background = image[mask > 0].astype(float), image[mask == 0].astype(float)
        assert shape.mean() - background.mean() > 50


def test_shapes_vary_in_size_and_position():
    data = generate_shapes(60, image_size=32, seed=0)
    areas = (data.masks > 0).mean(axis=(1, 2))
    centres = np.array([np.argwhere(m > 0).mean(0) for m in data.masks])
    assert areas.max() > 2 * areas.min()
    assert centres.std(0).min() > 2  # pixels


def test_texture_contrast_sets_the_stripes_strength():
    def background_spread(contrast):
        data = generate_shapes(20, image_size=32, seed=3, texture_contrast=contrast)
        return np.mean([image[mask == 0].std(0).mean() for image, mask in zip(data.images, data.masks)])

    flat, default, full = background_spread(0.0), background_spread(0.3), background_spread(1.0)
    assert flat < 13  # the pixel noise alone (sigma up to 12)
    assert flat < default < full


def test_grey_images():
    assert generate_shapes(4, image_size=16, channels=1).images.shape == (4, 16, 16, 1)


@pytest.mark.parametrize("kwargs,name", [(dict(num_images=0), "num_images"), (dict(num_images=2, image_size=4), "image_size"),
                                         (dict(num_images=2, channels=2), "channels"),
                                         (dict(num_images=2, texture_contrast=1.5), "texture_contrast")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_shapes(**kwargs)
