"""`Predictor`: one class that loads any exported artifact and predicts from raw inputs."""

from __future__ import annotations

import os

from keras_ptft.export.base import ARTIFACTS, MANIFEST, PREFERENCE, check_digests, file_digests, kind_named, \
    read_manifest

__all__ = ["Predictor", "ARTIFACTS", "MANIFEST", "PREFERENCE", "file_digests", "read_manifest"]


class Predictor:
    """Loads an export folder's artifact (SavedModel, TFLite or ONNX) and predicts from raw inputs.

    Everything the predictor reads is checked first: the manifest against the digest beside it
    (manifest.sha256), and the artifact and the files beside it (vocabulary, merges) against the
    sizes and SHA-256 digests in the manifest; a truncated, corrupted or edited file is refused
    with its name instead of giving a crash or wrong output. The kind of export (text classifier,
    masked LM, causal LM, image classifier, image segmenter) is looked up in the kind registry.

    Args:
        path: str. The export folder written by `keras_ptft.export.export`.
        format: str or None. `"saved_model"`, `"tflite_text"`, `"tflite"` or `"onnx"`; None
            picks the first present in that order.

    Example:
    ```python
    predictor = Predictor("saved_models/sentiment")
    predictor.predict(["a fine film"])   # {"probabilities": ..., "labels": ..., "label_names": [...]}
    ```
    """

    def __init__(self, path: str | os.PathLike, format: str | None = None):
        self.path = os.fspath(path)
        self.manifest = read_manifest(self.path)
        runner = kind_named(self.manifest["kind"]).runner
        available = [name for name in PREFERENCE if name in self.manifest["artifacts"]]
        if format is None:
            if not available:
                raise ValueError(f"{self.path!r} holds no artifact Predictor can run; its manifest lists "
                                 f"{sorted(self.manifest['artifacts'])}.")
            format = available[0]
        if format not in available:
            raise ValueError(f"`format` must be one of the artifacts in {self.path!r}: {available}; received {format!r}.")
        self.format = format
        artifact = os.path.join(self.path, ARTIFACTS[format])
        if not os.path.exists(artifact):
            raise FileNotFoundError(f"The {format!r} artifact {artifact!r} listed in the manifest is missing.")
        check_digests(artifact, self.manifest["artifacts"][format].get("files", {}), f"The {format!r} artifact")
        check_digests(self.path, self.manifest.get("files", {}), f"The export {self.path!r}")
        self.runner = runner(self.path, self.manifest, format, artifact)
        self.label_names = self.runner.label_names

    def predict(self, inputs, **options) -> dict:
        """Predictions for one input or a batch, by kind of export.

        A text classifier returns `"probabilities"` (float32 `(batch, classes)`), `"labels"` (int
        `(batch,)`) and `"label_names"`; a causal LM `texts` (prompt + continuation), `token_ids`
        and `padding_mask`; a masked LM the `top_k` `tokens` and `probabilities` per [MASK]; an
        image classifier takes uint8 images `(batch, height, width, channels)` and returns what a
        text classifier does; an image segmenter per-pixel `probabilities` `(batch, height,
        width, classes)` and label masks `labels` `(batch, height, width)`. A token classifier
        returns what `TokenClassifier.predict` does (per text a list of `{"text", "label",
        "start", "end"}` entities), a question answerer what `QuestionAnswerer.predict` does
        (per `(question, context)` pair `{"text", "start", "end", "score"}`).

        Args:
            inputs: str or list of str (a uint8 image array for image models, a list of
                `(question, context)` pairs for question answerers).
            **options: causal LMs: `max_length` (int), stop generating earlier than the
                export's `max_length`; token classifiers: `return_probabilities` (bool), return
                `{"entities": ..., "probabilities": per-piece tag probabilities}` instead.

        Returns:
            A dict of arrays, as above.
        """
        unknown = sorted(set(options) - set(self.runner.predict_options))
        if unknown:
            raise ValueError(f"`predict` options {unknown} do not apply to a {self.manifest['kind']!r} export; it "
                             f"takes {list(self.runner.predict_options) or 'none'}.")
        return self.runner.predict(inputs, **options)
