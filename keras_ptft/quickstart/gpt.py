"""GPT quickstart: BPE tokenizer → causal-LM pretraining → perplexity before/after → generations.

Runs on the embedded default data (standard-library docstrings), so it needs no download. The
pretraining itself is `keras_ptft.pipelines.pretrain_gpt`, which also backs
`keras-ptft pretrain gpt --corpus FILES`; this module keeps the demo: data, check, printing.
"""

from __future__ import annotations

import dataclasses
import os

from keras_ptft.quickstart import CheckFailed, phase

SAMPLE_PROMPTS = ("Return the", "This module provides", "If the")


@dataclasses.dataclass(frozen=True)
class Settings:
    """The budget of one quickstart run; `fast()` is the small version the tests use."""

    size: str = "tiny"
    vocabulary_size: int = 2000
    sequence_length: int = 64
    max_documents: int | None = None
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    held_out_fraction: float = 0.1

    @classmethod
    def fast(cls) -> "Settings":
        return cls(vocabulary_size=500, sequence_length=32, max_documents=600, epochs=2)


def run(settings: Settings, output_dir: str = "saved_models", seed: int = 0) -> dict:
    """Pretrains on the embedded corpus; raises `CheckFailed` if perplexity did not drop."""
    import keras_ptft as kp
    from keras_ptft.pipelines import pretrain_gpt

    phase("Loading the embedded corpus (standard-library docstrings and help topics)")
    texts = kp.data.load_embedded_corpus(max_documents=settings.max_documents, seed=seed)
    phase(f"Pretraining a {settings.size} GPT: a byte-level BPE vocabulary, then causal LM")
    results = pretrain_gpt(texts, os.path.join(output_dir, "gpt"), size=settings.size,
                           vocabulary_size=settings.vocabulary_size, sequence_length=settings.sequence_length,
                           epochs=settings.epochs, batch_size=settings.batch_size,
                           learning_rate=settings.learning_rate, held_out_fraction=settings.held_out_fraction,
                           seed=seed, sample_prompts=SAMPLE_PROMPTS).metrics
    if not results["perplexity_after"] < 0.5 * results["perplexity_before"]:
        raise CheckFailed(
            f"held-out perplexity went from {results['perplexity_before']:.1f} to "
            f"{results['perplexity_after']:.1f}; expected it to at least halve."
        )
    return results
