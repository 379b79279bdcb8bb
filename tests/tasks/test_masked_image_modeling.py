import keras
import numpy as np
import pytest

from keras_ptft.data import generate_shapes
from keras_ptft.models import load_backbone
from keras_ptft.tasks import MaskedImageModeling, save_reconstruction_grid
from tests import harness

PATCH = 4


def make_task(pooling="token", **kwargs):
    vit = harness.tiny_vit(image_shape=(16, 16, 3), patch_size=PATCH, hidden_dim=16, intermediate_dim=32,
                           pooling=pooling)
    return MaskedImageModeling(vit, decoder_dim=16, decoder_layers=1, decoder_heads=2, **kwargs)


def images(n=4, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 16, 16, 3)).astype("uint8")


def patch_slices(index):
    row, col = divmod(index, 16 // PATCH)
    return slice(row * PATCH, (row + 1) * PATCH), slice(col * PATCH, (col + 1) * PATCH)


def numpy_loss(reconstruction, mask, target_images, normalize):
    # Independent reference: per-patch pixels cut out with loops, MSE over masked patches only.
    n = target_images.shape[0]
    losses, count = 0.0, 0.0
    for i in range(n):
        for p in range(16):
            rows, cols = patch_slices(p)
            target = target_images[i, rows, cols].astype("float64").reshape(-1) / 255
            if normalize:
                target = (target - target.mean()) / np.sqrt(target.var() + 1e-6)
            losses += mask[i, p] * np.mean((reconstruction[i, p] - target) ** 2)
            count += mask[i, p]
    return losses / count


@pytest.mark.parametrize("ratio,expected", [(0.75, 12), (0.5, 8), (0.3, 5)])
def test_masking_covers_the_ratio_exactly_and_differs_per_image(ratio, expected):
    task = make_task(mask_rate=ratio)
    mask = keras.ops.convert_to_numpy(task(images(8))["mask"])
    assert mask.shape == (8, 16)
    np.testing.assert_array_equal(mask.sum(axis=1), expected)
    assert len({tuple(row) for row in mask}) > 1
    # A new draw every call: the next step masks differently.
    assert not np.array_equal(mask, keras.ops.convert_to_numpy(task(images(8))["mask"]))


def test_masks_are_reproducible_with_a_seed():
    first = keras.ops.convert_to_numpy(make_task(seed=7)(images())["mask"])
    second = keras.ops.convert_to_numpy(make_task(seed=7)(images())["mask"])
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("pooling", ["token", "mean"])
def test_encoder_sees_only_visible_patches(pooling):
    task = make_task(pooling)
    original = images()
    noise = np.random.default_rng(1).random((4, 16)).astype("float32")
    out = task(original, noise=noise)
    mask = keras.ops.convert_to_numpy(out["mask"])
    changed = original.copy()
    for i in range(4):
        for p in np.flatnonzero(mask[i]):
            changed[i][patch_slices(p)] = 255 - changed[i][patch_slices(p)]
    again = task(changed, noise=noise)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again["reconstruction"]),
                               keras.ops.convert_to_numpy(out["reconstruction"]), atol=1e-6)
    # ... while a change to one visible patch does change the reconstruction.
    visible = np.flatnonzero(mask[0] == 0)[0]
    changed[0][patch_slices(visible)] = 255 - changed[0][patch_slices(visible)]
    third = keras.ops.convert_to_numpy(task(changed, noise=noise)["reconstruction"])
    assert np.abs(third - keras.ops.convert_to_numpy(out["reconstruction"])).max() > 1e-4


@pytest.mark.parametrize("normalize", [True, False])
def test_loss_counts_masked_patches_only(normalize):
    task = make_task(normalize_targets=normalize)
    original = images()
    noise = np.random.default_rng(2).random((4, 16)).astype("float32")
    out = task(original, noise=noise)
    reconstruction, mask = (keras.ops.convert_to_numpy(out[k]) for k in ("reconstruction", "mask"))
    loss = float(task.compute_loss(original, None, out))
    np.testing.assert_allclose(loss, numpy_loss(reconstruction, mask, original, normalize), rtol=1e-5)
    # Changing the targets of visible patches leaves the loss unchanged ...
    targets = original.copy()
    for i in range(4):
        for p in np.flatnonzero(mask[i] == 0):
            targets[i][patch_slices(p)] = np.random.default_rng(p).integers(0, 256, (PATCH, PATCH, 3))
    assert float(task.compute_loss(original, targets, out)) == pytest.approx(loss, rel=1e-6)
    # ... changing the target of one masked patch (to a flat one, far from any noise patch) changes it.
    masked = np.flatnonzero(mask[0])[0]
    targets[0][patch_slices(masked)] = 128
    changed = float(task.compute_loss(original, targets, out))
    assert abs(changed - loss) > 1e-3
    np.testing.assert_allclose(changed, numpy_loss(reconstruction, mask, targets, normalize), rtol=1e-5)


@pytest.mark.slow
def test_reconstruction_loss_decreases_and_reconstruct(tmp_path):
    data = generate_shapes(96, image_size=16, seed=0)
    task = make_task(normalize_targets=False)
    noise = np.random.default_rng(0).random((3, 16)).astype("float32")

    def masked_error():
        recon, mask = task.reconstruct(data.images[:3], noise=noise, return_mask=True)
        return np.abs(recon[mask == 1].astype(float) - data.images[:3][mask == 1]).mean()

    error_before = masked_error()
    task.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = task.fit(data.images, batch_size=32, epochs=8, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0], losses

    recon, mask = task.reconstruct(data.images[:3], return_mask=True)
    assert recon.shape == (3, 16, 16, 3) and recon.dtype == np.uint8
    np.testing.assert_allclose(mask.mean(axis=(1, 2)), 0.75)
    visible = mask == 0
    np.testing.assert_array_equal(recon[visible], data.images[:3][visible])  # visible patches copied
    assert masked_error() < 0.8 * error_before  # masked pixels are predicted better after training

    path = save_reconstruction_grid(task, data.images[:3], tmp_path / "grid.png")
    import matplotlib.image

    picture = matplotlib.image.imread(path)
    assert picture.ndim == 3 and picture.shape[0] >= 300 and picture[..., :3].std() > 0.05  # drawn, not blank

    task.save_to_preset(tmp_path / "mae_vit")
    backbone = load_backbone(tmp_path / "mae_vit")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(backbone(data.images[:2] / 255.0)["pooled_output"]),
        keras.ops.convert_to_numpy(task.backbone(data.images[:2] / 255.0)["pooled_output"]), atol=1e-6)


def test_config_round_trip():
    task = make_task(mask_rate=0.6, normalize_targets=False, seed=3)
    clone = MaskedImageModeling.from_config(task.get_config())
    assert clone.get_config() == task.get_config()
    noise = np.random.default_rng(0).random((2, 16)).astype("float32")
    task(images(2), noise=noise)
    clone(images(2), noise=noise)
    clone.set_weights(task.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(images(2), noise=noise)["reconstruction"]),
                               keras.ops.convert_to_numpy(task(images(2), noise=noise)["reconstruction"]), atol=1e-6)


@pytest.mark.parametrize("ratio", [0.0, 1.0, 1.5, -0.1, "0.5"])
def test_bad_mask_rate(ratio):
    with pytest.raises(ValueError, match="`mask_rate` must be in \\(0, 1\\)"):
        make_task(mask_rate=ratio)


def test_mask_ratio_is_a_deprecated_alias_of_mask_rate():
    with pytest.warns(DeprecationWarning, match="use `mask_rate`"):
        task = make_task(mask_ratio=0.5)
    assert task.mask_rate == 0.5 and task.num_masked == 8
    old_config = {**task.get_config(), "mask_ratio": 0.25}  # a `.keras` file saved before the rename
    del old_config["mask_rate"]
    with pytest.warns(DeprecationWarning):
        assert MaskedImageModeling.from_config(old_config).num_masked == 4


def test_bad_images():
    task = make_task()
    with pytest.raises(ValueError, match="3 channel"):
        task.fit(np.zeros((4, 16, 16, 1), "uint8"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="uint8"):
        task.fit(np.zeros((4, 16, 16, 3), "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="uint8"):
        task.reconstruct(np.zeros((4, 16, 16, 3), "int64"))
