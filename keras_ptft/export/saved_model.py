"""SavedModel export of a text classifier whose serving signature takes raw strings."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

import keras
import numpy as np

from keras_ptft.version import __version__

SERVING_VERSION = "1"  # TensorFlow Serving loads NAME/<version>/


def export_text_classifier(classifier, path: str | os.PathLike, overwrite: bool = True) -> str:
    """Writes `path/1/` (a SavedModel), `path/model.keras` and `path/manifest.json`.

    The SavedModel's `serving_default` signature takes a 1-D string tensor `texts` and returns
    `probabilities` (float32, `(batch, num_classes)`), `labels` (int64) and `label_names`
    (string). The tokenizer runs inside the graph, so loading needs TensorFlow and
    tensorflow-text only (`import tensorflow_text` registers its ops), not keras_ptft.

    The folder is written next to its destination and moved into place at the end, so an
    interrupted export never leaves a folder that looks complete.

    Args:
        classifier: a `keras_ptft.recipes.TextClassifier`, built (trained or not).
        path: str. The export folder, e.g. `"saved_models/sentiment"`.
        overwrite: bool. Replace an existing folder at `path`.

    Returns:
        The path of the SavedModel (`path/1`).

    Example:
    ```python
    export_text_classifier(classifier, "saved_models/sentiment")
    reloaded = tf.saved_model.load("saved_models/sentiment/1")
    reloaded.signatures["serving_default"](texts=tf.constant(["a fine film"]))["probabilities"]
    ```
    """
    import tensorflow as tf

    if keras.config.backend() != "tensorflow":
        raise RuntimeError(
            "SavedModel export of a string-input classifier runs on the TensorFlow backend; "
            f"the current Keras backend is {keras.config.backend()!r}. Set KERAS_BACKEND=tensorflow."
        )
    path = os.fspath(path)
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise FileExistsError(f"`path` {path!r} exists and is not empty; pass overwrite=True to replace it.")
    preprocessor = classifier.preprocessor
    label_names = classifier.label_names or [str(i) for i in range(classifier.num_classes)]

    archive = keras.export.ExportArchive()
    archive.track(classifier)
    archive.track(preprocessor)
    label_table = tf.constant(label_names)

    def serve(texts):
        probabilities = classifier(preprocessor(texts), training=False)
        labels = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "labels": labels,
            "label_names": tf.gather(label_table, labels),
        }

    archive.add_endpoint(
        "serving_default", serve, input_signature=[tf.TensorSpec([None], tf.string, name="texts")]
    )

    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(os.path.join(staging, SERVING_VERSION), verbose=False)
        classifier.save(os.path.join(staging, "model.keras"))
        manifest = {
            "kind": "text_classifier",
            "keras_ptft_version": __version__,
            "saved_model": SERVING_VERSION,
            "keras_model": "model.keras",
            "signature": "serving_default",
            "inputs": {"texts": "string[batch]"},
            "outputs": {
                "probabilities": f"float32[batch, {classifier.num_classes}]",
                "labels": "int64[batch]",
                "label_names": "string[batch]",
            },
            "label_names": label_names,
            "preprocessing": {
                "sequence_length": int(preprocessor.sequence_length),
                "lowercase": bool(preprocessor.lowercase),
                "vocabulary_size": int(preprocessor.vocabulary_size),
            },
        }
        with open(os.path.join(staging, "manifest.json"), "w") as handle:
            json.dump(manifest, handle, indent=2)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return os.path.join(path, SERVING_VERSION)


def saved_model_parity(saved_model_path: str, classifier, texts) -> dict:
    """Runs the SavedModel (plain `tf.saved_model.load`) and the Keras model on the same texts.

    Returns `{"max_abs_diff": float, "label_agreement": float, "examples": int}`.
    """
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops the graph uses)

    texts = list(texts)
    reloaded = tf.saved_model.load(saved_model_path)
    serving = reloaded.signatures["serving_default"]
    exported = serving(texts=tf.constant(texts))["probabilities"].numpy()
    expected = classifier.predict(texts, verbose=0)
    return {
        "max_abs_diff": float(np.max(np.abs(exported - expected))),
        "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
        "examples": len(texts),
    }


def write_saved_model(kind, folder: str) -> dict:
    """Writes a SavedModel for an `ExportKind` at `folder` (e.g. `NAME/1`).

    Signatures: `serving_default` takes raw inputs (a 1-D string tensor `texts` for text
    models) and `serving_tokens` the model's own tokenized inputs. Both return the kind's named
    outputs (`probabilities`, `labels`, plus `label_names` when the kind has them).

    Returns the manifest entry describing the signatures.
    """
    import tensorflow as tf

    model = kind.model
    archive = keras.export.ExportArchive()
    archive.track(model)
    preprocessor = getattr(kind, "preprocessor", None)
    if preprocessor is not None:
        archive.track(preprocessor)
    label_names = getattr(kind, "label_names", None)
    label_table = tf.constant(label_names) if label_names else None

    def named(outputs):
        if label_table is not None:
            outputs["label_names"] = tf.gather(label_table, outputs["labels"])
        return outputs

    def serve(raw):
        return named(kind.outputs_from_model(model(kind.preprocess(raw), training=False)))

    specs = kind.token_input_specs()

    def serve_tokens(features):
        return named(kind.outputs_from_model(model(features, training=False)))

    archive.add_endpoint("serving_default", serve, input_signature=[kind.raw_input_spec()])
    archive.add_endpoint("serving_tokens", serve_tokens, input_signature=[specs])
    archive.write_out(folder, verbose=False)
    return {"signatures": {"serving_default": kind.raw_input_spec().name, "serving_tokens": list(specs)}}
