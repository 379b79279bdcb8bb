"""SavedModel artifacts: a raw-input `serving_default` and a tokenized-input `serving_tokens` signature."""

from __future__ import annotations

import keras


def write_saved_model(kind, folder: str) -> dict:
    """Writes a SavedModel for an `ExportKind` at `folder` (e.g. `NAME/1`).

    The kind provides `raw_input_spec()`, `preprocess(raw)`, `token_input_specs()` and
    `outputs_from_model(outputs)`, and optionally `preprocessor` (tracked) and `label_names`
    (added as a `label_names` output). Signatures: `serving_default` takes raw inputs (a 1-D
    string tensor `texts` for text models) and `serving_tokens` the model's own tokenized inputs.

    Returns the manifest entry describing the signatures.

    Example:
    ```python
    write_saved_model(kind_of(classifier), "saved_models/sentiment/1")
    ```
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


def load_signature(folder: str, name: str = "serving_default"):
    """The signature `name` of the SavedModel at `folder`, with the tensorflow-text ops registered."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops text graphs use)

    return tf.saved_model.load(folder).signatures[name]
