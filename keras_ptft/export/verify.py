"""Parity of exported artifacts with the Keras model they came from."""

from __future__ import annotations

import os
from typing import Sequence

from keras_ptft.export.base import kind_of, read_manifest
from keras_ptft.export.predictor import Predictor


def verify(path: str | os.PathLike, model, data=None, formats: Sequence[str] | None = None,
           batch_size: int = 32, **kind_options) -> dict[str, dict]:
    """Runs each artifact of an export folder and the Keras model on the same inputs.

    Args:
        path: str. The export folder.
        model: the Keras model that was exported.
        data: list of str, uint8 images (image models) or None. The inputs; None uses the kind's
            built-in probe set (for text: English, accented and Chinese texts).
        formats: list of str or None. The artifacts to check; None checks every one in the folder.
        batch_size: int. Examples per call.
        **kind_options: kind-specific export settings (see `export`).

    Classifiers report `max_abs_diff` (largest |Δ| of the probabilities) and `label_agreement`
    (fraction of equal argmax labels; per pixel for segmenters); causal LMs `token_agreement`
    (generated tokens equal to `CausalLM.generate`'s greedy ones) and `sequence_agreement`;
    masked LMs the max |Δ| of the top-k probabilities and the top-1 agreement at [MASK] positions;
    token classifiers the max |Δ| of the per-piece tag probabilities, their `label_agreement` and
    `entity_f1` (the artifact's entities against the Keras model's, exact span and label);
    question answerers `span_agreement` (same answer text and character span) and the max |Δ| of
    the scores.

    Returns:
        `{format: {figure: float, ..., "examples": int}}`.

    Example:
    ```python
    verify("saved_models/sentiment", classifier, ["a fine film", "a dull film"])
    # {"saved_model": {"max_abs_diff": 1.2e-07, "label_agreement": 1.0, "examples": 2}, ...}
    ```
    """
    kind = kind_of(model, **kind_options)
    manifest = read_manifest(path)
    kind.bind_manifest(manifest)
    if formats is None:
        formats = list(manifest["artifacts"])
    elif isinstance(formats, str) or not all(name in manifest["artifacts"] for name in formats):
        raise ValueError(f"`formats` must be a list of the artifacts in {os.fspath(path)!r}: "
                         f"{list(manifest['artifacts'])}; received {formats!r}.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive integer, received {batch_size!r}.")
    data = kind.check_data(kind.probe_data() if data is None else data, "data")
    return {name: kind.parity(Predictor(path, format=name).predict, data, batch_size) for name in formats}
