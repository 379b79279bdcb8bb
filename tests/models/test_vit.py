import json

import keras
import numpy as np
import pytest

from keras_ptft.models import VIT_SIZES, ViT, load_backbone
from keras_ptft.models.sizes import resolve_size
from keras_ptft.models.vit import check_images, patchify, sincos_position_embedding, unpatchify
from tests import harness
from tests.models import backend_worker_vit

CONFIG = dict(image_shape=(16, 8, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16)


def small_vit(**kwargs):
    return harness.tiny_vit(**{**CONFIG, **kwargs})


def numpy_patches(images, p):
    # Independent reference: patches cut out with explicit loops, row-major.
    n, h, w, c = images.shape
    return np.stack([
        np.stack([images[i, r:r + p, s:s + p].reshape(-1) for r in range(0, h, p) for s in range(0, w, p)])
        for i in range(n)
    ])


@pytest.mark.parametrize("pooling,tokens", [("token", 9), ("mean", 8)])
def test_outputs_and_pooling(pooling, tokens):
    vit = small_vit(pooling=pooling)
    images = np.random.default_rng(0).random((2, 16, 8, 3)).astype("float32")
    out = {k: keras.ops.convert_to_numpy(v) for k, v in vit(images).items()}
    assert out["sequence_output"].shape == (2, tokens, 8)
    expected = out["sequence_output"][:, 0] if pooling == "token" else out["sequence_output"].mean(1)
    np.testing.assert_allclose(out["pooled_output"], expected, atol=1e-6)


def test_patch_embedding_is_a_linear_map_of_flattened_patches():
    vit = small_vit()
    images = np.random.default_rng(1).random((2, 16, 8, 3)).astype("float32")
    kernel, bias = [keras.ops.convert_to_numpy(w) for w in vit.patch_embedding.weights]
    positions = keras.ops.convert_to_numpy(vit.patch_positions.embeddings)
    expected = numpy_patches(images, 4) @ kernel.reshape(-1, 8) + bias + positions
    got = keras.ops.convert_to_numpy(vit.embed_patches(images))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(patchify(images, 4)), numpy_patches(images, 4))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(unpatchify(patchify(images, 4), 4, (16, 8, 3))), images)


def test_sincos_positions_match_the_formula():
    table = sincos_position_embedding(3, 4, 8)
    omega = np.array([1.0, 1.0 / 100])  # 1 / 10000^(k / 2) for k = 0, 1
    for index in range(12):
        row, col = divmod(index, 4)
        expected = np.concatenate([np.sin(row * omega), np.cos(row * omega), np.sin(col * omega), np.cos(col * omega)])
        np.testing.assert_allclose(table[index], expected, atol=1e-6)
    vit = small_vit(position_embedding="sincos")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(vit.patch_positions.embeddings), sincos_position_embedding(4, 2, 8))
    assert not vit.patch_positions.trainable_weights


def test_any_divisible_size_and_grey_images():
    vit = small_vit(image_shape=(28, 28, 1), patch_size=7, pooling="mean")
    out = vit(np.zeros((1, 28, 28, 1), "float32"))
    assert tuple(out["sequence_output"].shape) == (1, 16, 8)


def test_named_sizes_match_keras_hub_parameter_counts():
    from keras_hub.models import ViTBackbone

    # keras-hub's ViT (patch conv, class token, pre-LN blocks, final LN) is the independent
    # reference for the parameter count of `tiny`. It keeps a position vector for the class token
    # besides the token itself; ours folds the two into one learned vector (128 fewer parameters,
    # the same function).
    reference = ViTBackbone(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=2, hidden_dim=128,
                            mlp_dim=512, use_mha_bias=True)
    assert ViT.from_size("tiny").count_params() == reference.count_params() - 128
    # ViT-B/16 (Dosovitskiy et al.): 224x224, patch 16, 12 layers of width 768 and 12 heads.
    assert resolve_size("ViT", VIT_SIZES, "base", {}) == dict(
        image_shape=(224, 224, 3), patch_size=16, num_layers=12, hidden_dim=768, num_heads=12, intermediate_dim=3072
    )


def test_backbone_basics(tmp_path):
    # Shapes, compiled predict, config / .keras / preset round trips.
    images = np.random.default_rng(2).random((2, 16, 8, 3)).astype("float32")
    harness.run_backbone_test(ViT, {**CONFIG, "pooling": "mean", "position_embedding": "sincos", "dropout": 0.1},
                              images, {"sequence_output": (2, 8, 8), "pooled_output": (2, 8)}, tmp_path,
                              variable_length=False)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(image_shape=(18, 8, 3)), "divisible by `patch_size`"),
        (dict(image_shape=(16, 8, 2)), "1 or 3 channels"),
        (dict(pooling="max"), "`pooling`"),
        (dict(position_embedding="rope"), "`position_embedding`"),
        (dict(num_heads=3), "divisible by `num_heads`"),
        (dict(patch_size=0), "`patch_size`"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small_vit(**kwargs)


def test_check_images():
    check_images(np.zeros((2, 16, 8, 3), "uint8"), (16, 8, 3))
    with pytest.raises(ValueError, match="channel"):
        check_images(np.zeros((2, 16, 8, 1), "uint8"), (16, 8, 3))
    with pytest.raises(ValueError, match="uint8"):
        check_images(np.zeros((2, 16, 8, 3), "float32"), (16, 8, 3))
    with pytest.raises(ValueError, match=r"shape \(batch, 16, 8, 3\)"):
        check_images(np.zeros((2, 8, 8, 3), "uint8"), (16, 8, 3))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The TensorFlow side of the backend checks: weights, inputs, outputs and an MAE loss."""
    from keras_ptft.tasks import MaskedImageModeling

    work_dir = tmp_path_factory.mktemp("vit_backends")
    keras.utils.set_random_seed(3)
    vit = small_vit(num_layers=2, hidden_dim=16, intermediate_dim=32)
    mae = MaskedImageModeling(vit, decoder_dim=8, decoder_layers=1, decoder_heads=2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 8, 3)).astype("uint8")
    noise = rng.random((3, vit.num_patches)).astype("float32")
    mae(images, noise=noise)
    with open(work_dir / "mae_config.json", "w") as handle:
        json.dump(keras.saving.serialize_keras_object(mae), handle)
    mae.save_weights(work_dir / "mae.weights.h5")
    np.savez(work_dir / "inputs.npz", images=images, noise=noise)
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in vit(images.astype("float32") / 255).items()}
    outputs["mae_loss"] = keras.ops.convert_to_numpy(mae.compute_loss(images, None, mae(images, noise=noise)))
    return work_dir, outputs


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_parity(backend, reference, run_on_backend):
    work_dir, expected = reference
    report = run_on_backend(backend_worker_vit.main, backend, work_dir)
    assert report["backend"] == backend
    for name in ("sequence_output", "pooled_output", "mae_loss"):
        assert np.max(np.abs(report[name] - expected[name])) <= 1e-4, name
    # Pretraining learns on this backend too.
    assert report["mae_fit_loss"][-1] < 0.8 * report["mae_fit_loss"][0], report["mae_fit_loss"]
