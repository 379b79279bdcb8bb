"""Translates with a saved Translator on the Keras backend named by KERAS_BACKEND.

Called by tests/tasks/test_translator.py in one subprocess per backend:
    python tests/tasks/backend_worker_translator.py WORK_DIR
It reads WORK_DIR/translator.keras and sources.json, translates, then fine-tunes one epoch on
the sources (copying them) and pretrains one DenoisingLM epoch, so both fit paths run on this
backend; it writes WORK_DIR/<backend>_translations.json.
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
    import keras_ptft as kp

    history = translator.fit((sources, sources), epochs=1, batch_size=4, verbose=0)
    denoiser = kp.tasks.DenoisingLM(translator.backbone, translator.preprocessor.tokenizer, sequence_length=12)
    denoiser.compile()
    denoising = denoiser.fit(sources * 4, epochs=2, batch_size=4, verbose=0)
    report["fit_loss"] = history.history["loss"][-1]
    report["denoising_loss"] = denoising.history["loss"][-1]
    with open(os.path.join(work_dir, f"{backend}_translations.json"), "w") as handle:
        json.dump(report, handle, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1])
