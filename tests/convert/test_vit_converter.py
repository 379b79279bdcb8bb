"""ViT folders → keras_ptft ViT + ImageClassifier, against transformers itself.

Tiny random `ViTModel` / `ViTForImageClassification` folders are written by transformers in the
test; the reference outputs are transformers' on the images its own normalisation would give.
"""

import json

import numpy as np
import pytest

import keras_ptft as kp

MEAN, STD = [0.48, 0.46, 0.41], [0.27, 0.26, 0.28]  # not 0.5: a wrong fold would show


@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers")


def write_vit_folder(transformers, path, classifier: bool, prefix: bool = True, processor: bool = True):
    import torch
    from safetensors.numpy import load_file, save_file

    torch.manual_seed(0)
    config = transformers.ViTConfig(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=24, image_size=(8, 12),
        patch_size=4, num_channels=3, layer_norm_eps=1e-6, num_labels=3,
        id2label={0: "cat", 1: "dog", 2: "bird"}, label2id={"cat": 0, "dog": 1, "bird": 2},
    )
    model_class = transformers.ViTForImageClassification if classifier else transformers.ViTModel
    model = model_class(config).eval()
    with torch.no_grad():  # LayerNorms, class token and head start constant or tiny; randomise them
        for name, parameter in model.named_parameters():
            if any(part in name for part in ("layernorm", "cls_token", "position", "classifier")):
                parameter.copy_(torch.randn_like(parameter) * 0.3 + (1.0 if name.endswith("weight") else 0.0))
    model.save_pretrained(path)
    if not prefix:  # a classifier checkpoint saved without `vit.` (keras-hub issue #3007)
        weights = load_file(str(path / "model.safetensors"))
        save_file({k.removeprefix("vit."): v for k, v in weights.items()}, str(path / "model.safetensors"))
    if processor:
        (path / "preprocessor_config.json").write_text(json.dumps(
            {"do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": MEAN,
             "image_std": STD}))
    return model


def reference(model, images, mean, std):
    import torch

    pixels = (images.astype("float32") / 255 - np.array(mean, "float32")) / np.array(std, "float32")
    with torch.no_grad():
        return model(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(3, 8, 12, 3)).astype("uint8")


@pytest.mark.slow
@pytest.mark.parametrize("prefix", [True, False])
def test_vit_classifier_matches_transformers(transformers, tmp_path, images, prefix):
    import torch

    model = write_vit_folder(transformers, tmp_path, classifier=True, prefix=prefix)
    converted = kp.convert.from_huggingface(tmp_path)
    assert converted.backbone.image_shape == (8, 12, 3)
    assert converted.unused_weights == []
    want = reference(model, images, MEAN, STD)
    got = converted.backbone(images.astype("float32") / 255)
    np.testing.assert_allclose(np.asarray(got["sequence_output"]), _last_hidden(model, images), atol=1e-4)
    probabilities = converted.task.predict(images, verbose=0)
    np.testing.assert_allclose(probabilities, torch.softmax(want.logits, -1).numpy(), atol=1e-5)
    assert np.abs(want.logits.numpy()).max() > 0.1
    assert converted.task.label_names == ["cat", "dog", "bird"]


def _last_hidden(model, images):
    import torch

    pixels = (images.astype("float32") / 255 - np.array(MEAN, "float32")) / np.array(STD, "float32")
    with torch.no_grad():
        return model.vit(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2))).last_hidden_state.numpy()


@pytest.mark.slow
def test_vit_model_without_processor_config(transformers, tmp_path, images):
    model = write_vit_folder(transformers, tmp_path, classifier=False, processor=False)
    with pytest.warns(UserWarning, match="2 tensors .* were not loaded"):
        converted = kp.convert.from_huggingface(tmp_path)
    assert converted.task is None
    assert converted.unused_weights == ["pooler.dense.bias", "pooler.dense.weight"]  # no pooler in ViT
    want = reference(model, images, [0.5] * 3, [0.5] * 3).last_hidden_state.numpy()  # ViTImageProcessor defaults
    got = np.asarray(converted.backbone(images.astype("float32") / 255)["sequence_output"])
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_normalization_fold_is_exact():
    """conv((x - m) / s) == conv'(x) for the folded kernel, checked with NumPy on one patch."""
    from keras_ptft.convert.vit import port_backbone  # noqa: F401  (the fold lives there)

    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(size=(4, 4, 3, 5)), rng.normal(size=5)
    mean, std = np.array(MEAN), np.array(STD)
    patch = rng.random((4, 4, 3))
    want = np.einsum("hwc,hwco->o", (patch - mean) / std, kernel) + bias
    folded = kernel / std[None, None, :, None]
    got = np.einsum("hwc,hwco->o", patch, folded) + bias - np.einsum("hwco,c->o", folded, mean)
    np.testing.assert_allclose(got, want, atol=1e-12)


def _config(**overrides) -> dict:
    config = {"model_type": "vit", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 16, "image_size": 8, "patch_size": 4}
    config.update(overrides)
    return config


@pytest.mark.parametrize("field, value", [("hidden_act", "relu"), ("qkv_bias", False)])
def test_unsupported_vit_config_value_is_named(field, value):
    with pytest.raises(ValueError, match=f"{field}={value!r}"):
        kp.convert.vit.backbone_config(_config(**{field: value}))


def test_vit_positions_that_do_not_fit_the_image_size(tmp_path):
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps(_config()))
    rng = np.random.default_rng(0)
    weights = {"embeddings.patch_embeddings.projection.weight": rng.normal(size=(8, 3, 4, 4)),
               "embeddings.patch_embeddings.projection.bias": rng.normal(size=8),
               "embeddings.position_embeddings": rng.normal(size=(1, 10, 8)),  # 8x8/4x4 needs 1 + 4
               "embeddings.cls_token": rng.normal(size=(1, 1, 8))}
    save_file({k: v.astype("float32") for k, v in weights.items()}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match="'embeddings.position_embeddings'.*\\(1, 10, 8\\).*\\(1, 5, 8\\)"):
        kp.convert.from_huggingface(tmp_path)
