"""Translates with a saved Translator on the Keras backend named by KERAS_BACKEND.

Called by tests/tasks/test_translator.py in one subprocess per backend:
    python tests/tasks/backend_worker_translator.py WORK_DIR
It reads WORK_DIR/translator.keras and sources.json and writes WORK_DIR/<backend>_translations.json.
"""

import json
import os
import sys


def main(work_dir: str) -> None:
    import keras

    import keras_ptft  # noqa: F401  (registers the saved classes)

    backend = keras.config.backend()
    translator = keras.models.load_model(os.path.join(work_dir, "translator.keras"))
    with open(os.path.join(work_dir, "sources.json")) as handle:
        sources = json.load(handle)
    report = {
        "backend": backend,
        "greedy": translator.translate(sources, sampler="greedy"),
        "beam": translator.translate(sources, sampler="beam", num_beams=3),
    }
    with open(os.path.join(work_dir, f"{backend}_translations.json"), "w") as handle:
        json.dump(report, handle, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
