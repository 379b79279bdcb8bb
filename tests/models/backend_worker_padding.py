"""Padding-invariance cases for `Bert` and `GPT`, run in-process on TensorFlow and on JAX and
PyTorch through `run_on_backend` (tests/models/test_padding_invariance.py). `main` reads
WORK_DIR/{bert,gpt}_config.json and .weights.h5 written by the TensorFlow side and returns the
outputs per case.
"""

import json
import os

import numpy as np

# Three texts of real lengths 5, 13 and 9 (special tokens included) and the bucket lengths a
# batch of them may be padded to.
LENGTHS = (5, 13, 9)
BUCKETS = (16, 24)
VOCABULARY_SIZE = 40


def texts() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [rng.integers(5, VOCABULARY_SIZE, n).astype("int32") for n in LENGTHS]


def batch(rows: list[np.ndarray], length: int, with_segments: bool) -> dict:
    token_ids = np.zeros((len(rows), length), "int32")
    padding_mask = np.zeros((len(rows), length), "int32")
    for i, row in enumerate(rows):
        token_ids[i, : len(row)], padding_mask[i, : len(row)] = row, 1
    inputs = {"token_ids": token_ids, "padding_mask": padding_mask}
    if with_segments:
        inputs["segment_ids"] = np.zeros_like(token_ids)
    return inputs


def outputs_per_case(model, kind: str) -> dict[str, np.ndarray]:
    """Every text's real-token outputs in three settings: alone at its own length, batched with the
    others (padded to the longest), and alone padded to each bucket length. Keys are
    `<output>/<text index>/<case>`."""
    import keras

    rows = texts()
    cases = {f"alone{len(r)}": [(i, batch([r], len(r), kind == "bert"), 0)] for i, r in enumerate(rows)}
    together = batch(rows, max(LENGTHS), kind == "bert")
    cases["together"] = [(i, together, i) for i in range(len(rows))]
    for length in BUCKETS:
        cases[f"bucket{length}"] = [(i, batch([r], length, kind == "bert"), 0) for i, r in enumerate(rows)]
    results = {}
    for case, items in cases.items():
        for text, inputs, row in items:
            n = LENGTHS[text]
            out = model(inputs, training=False)
            if kind == "bert":
                named = {"sequence": out["sequence_output"][row, :n], "pooled": out["pooled_output"][row]}
            else:
                named = {"hidden": out[row, :n], "logits": model.token_embedding(out, reverse=True)[row, :n]}
            for name, value in named.items():
                results[f"{name}/{text}/{case.rstrip('0123456789') if case.startswith('alone') else case}"] = (
                    keras.ops.convert_to_numpy(value)
                )
    return results


def main(work_dir: str) -> dict:
    import keras

    import keras_ptft as kp

    results = {}
    for kind, cls in (("bert", kp.models.Bert), ("gpt", kp.models.GPT)):
        with open(os.path.join(work_dir, f"{kind}_config.json")) as handle:
            model = cls.from_config(json.load(handle))
        model.load_weights(os.path.join(work_dir, f"{kind}.weights.h5"))
        results.update({f"{kind}/{key}": value for key, value in outputs_per_case(model, kind).items()})
    return {"backend": keras.config.backend(), **results}
