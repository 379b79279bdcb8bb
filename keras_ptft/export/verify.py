"""Parity of exported artifacts with the Keras model they came from."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from keras_ptft.export.predictor import Predictor, read_manifest

# Texts to compare on when the caller gives none: English, accented Latin and Chinese, short and
# long (longer than any test sequence length, so truncation is exercised too).
PROBE_TEXTS = [
    "a fine, moving film",
    "The plot is dull and the acting is worse!",
    "Un café crème, s'il vous plaît — très naïf.",
    "Über-schön: Ärger, Öl und Straße.",
    "这部电影很好看",
    "我不喜欢这个酒店, the room was dirty.",
    "it's not bad... actually it's (quite) good? 10/10",
    " ".join(["long"] * 300),
    "",
]


def verify(path: str | os.PathLike, model, data: Sequence[str] | None = None, formats: Sequence[str] | None = None,
           batch_size: int = 32, **kind_options) -> dict[str, dict]:
    """Runs each artifact of an export folder and the Keras model on the same inputs.

    Args:
        path: str. The export folder.
        model: the Keras model that was exported.
        data: list of str or None. The inputs; None uses a small built-in English / accented /
            Chinese probe set.
        formats: list of str or None. The artifacts to check; None checks every one `Predictor`
            can run.
        batch_size: int. Examples per call.
        **kind_options: kind-specific export settings (see `export`).

    Causal LMs report `token_agreement` (generated tokens equal to `CausalLM.generate`'s greedy
    ones) and `sequence_agreement`; masked LMs the max |Δ| of the logits and the top-1 agreement
    at [MASK] positions; image models take uint8 images as `data` (for segmenters,
    `label_agreement` is the fraction of pixels with the Keras model's class).

    Returns:
        `{format: {"max_abs_diff": float, "label_agreement": float, "examples": int}}`, where
        `max_abs_diff` is the largest |Δ| between the artifact's and the Keras model's
        probabilities and `label_agreement` the fraction of equal argmax labels.

    Example:
    ```python
    verify("saved_models/sentiment", classifier, ["a fine film", "a dull film"])
    # {"saved_model": {"max_abs_diff": 1.2e-07, "label_agreement": 1.0, "examples": 2}, ...}
    ```
    """
    from keras_ptft.export.kinds import kind_of

    kind = kind_of(model, **kind_options)
    if kind.name != "text_classifier":
        manifest = read_manifest(path)
        formats = list(manifest["artifacts"]) if formats is None else list(formats)
        data = kind.check_data(kind.probe_data() if data is None else data, "data")
        return kind.verify_artifacts(os.fspath(path), data, formats, batch_size)
    data = PROBE_TEXTS if data is None else data
    if isinstance(data, str) or not all(isinstance(text, str) for text in data) or not len(data):
        raise ValueError("`data` must be a non-empty list of str.")
    data = list(data)
    manifest = read_manifest(path)
    runnable = [name for name in manifest["artifacts"] if name in ("saved_model", "tflite", "tflite_text", "onnx")]
    formats = runnable if formats is None else list(formats)
    expected = np.concatenate([kind.reference(data[i : i + batch_size])["probabilities"]
                               for i in range(0, len(data), batch_size)])
    results = {}
    for name in formats:
        predictor = Predictor(path, format=name)
        exported = np.concatenate([predictor.predict(data[i : i + batch_size])["probabilities"]
                                   for i in range(0, len(data), batch_size)])
        results[name] = {
            "max_abs_diff": float(np.max(np.abs(exported - expected))),
            "label_agreement": float(np.mean(exported.argmax(-1) == expected.argmax(-1))),
            "examples": len(data),
        }
    return results
