import json

import numpy as np
import pytest

from keras_ptft.export import export_image_classifier, image_saved_model_parity
from keras_ptft.models import ViT
from keras_ptft.recipes import image_classifier


@pytest.mark.slow
def test_saved_model_takes_uint8_images_and_matches_keras(tmp_path):
    import tensorflow as tf

    vit = ViT(image_shape=(8, 8, 1), patch_size=4, num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
    classifier = image_classifier(vit, num_classes=3, label_names=["a", "b", "c"])
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1)).astype("uint8")
    with pytest.warns(DeprecationWarning, match="export_image_classifier"):
        path = export_image_classifier(classifier, tmp_path / "clf")  # deprecated: returns path/1 as before
    assert path == str(tmp_path / "clf" / "1")
    served = tf.saved_model.load(path).signatures["serving_default"]
    outputs = served(images=tf.constant(images))
    expected = classifier.predict(images, verbose=0)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(outputs["labels"].numpy(), expected.argmax(-1))
    assert [n.decode() for n in outputs["label_names"].numpy()] == [["a", "b", "c"][i] for i in expected.argmax(-1)]
    assert image_saved_model_parity(classifier, path, images) <= 1e-5
    manifest = json.loads((tmp_path / "clf" / "manifest.json").read_text())
    # The same folder as `export()` writes: the wrapper is `export(classifier, path, ["saved_model"])`.
    assert manifest["kind"] == "image_classifier" and sorted(manifest["artifacts"]) == ["saved_model"]
    assert manifest["raw_input"]["images"] == {"dtype": "uint8", "shape": [None, 8, 8, 1]}
    assert manifest["artifacts"]["saved_model"]["parity"]["max_abs_diff"] <= 1e-4
    with pytest.raises(FileExistsError), pytest.warns(DeprecationWarning):
        export_image_classifier(classifier, tmp_path / "clf", overwrite=False)
