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
        # its pixels differ in colour from the background's.
        assert set(np.unique(mask)) == {0, label + 1}
        shape, background = image[mask > 0].astype(float), image[mask == 0].astype(float)
        assert np.linalg.norm(shape.mean(0) - background.mean(0)) > 20


def test_shapes_vary_in_size_and_position():
    data = generate_shapes(60, image_size=32, seed=0)
    areas = (data.masks > 0).mean(axis=(1, 2))
    centres = np.array([np.argwhere(m > 0).mean(0) for m in data.masks])
    assert areas.max() > 2 * areas.min()
    assert centres.std(0).min() > 2  # pixels


def test_grey_images():
    assert generate_shapes(4, image_size=16, channels=1).images.shape == (4, 16, 16, 1)


@pytest.mark.parametrize("kwargs,name", [(dict(num_images=0), "num_images"), (dict(num_images=2, image_size=4), "image_size"),
                                         (dict(num_images=2, channels=2), "channels")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_shapes(**kwargs)
