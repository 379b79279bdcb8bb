"""Translates with a saved Translator on JAX and PyTorch, run by tests/tasks/test_translator.py
through `run_on_backend`. It reads WORK_DIR/translator.keras and sources.json, translates, then fine-tunes one epoch on
the sources (copying them) and pretrains one DenoisingLM epoch, so both fit paths run on this
backend; it returns the translations and losses.
"""

import json
import os


def main(work_dir: str) -> dict:
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

    # One batch of all the sources: a single batch shape, so JAX compiles the train step once
    # (batches of 4 and 2 measured 20 s of compiling against 11 s).
    history = translator.fit((sources, sources), epochs=1, batch_size=len(sources), verbose=0)
    denoiser = kp.tasks.DenoisingLM(translator.backbone, translator.preprocessor.tokenizer, sequence_length=12)
    denoiser.compile()
    denoising = denoiser.fit(sources * 4, epochs=2, batch_size=4, verbose=0)
    report["fit_loss"] = history.history["loss"][-1]
    report["denoising_loss"] = denoising.history["loss"][-1]
    return report
