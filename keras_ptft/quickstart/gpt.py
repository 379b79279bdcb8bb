"""GPT quickstart: BPE tokenizer → causal-LM pretraining → perplexity before/after → generations.

Runs on the embedded default data (standard-library docstrings), so it needs no download. The
same `pretrain` function backs `keras-ptft pretrain gpt --corpus FILES`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import keras

from keras_ptft.quickstart import CheckFailed

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


def _phase(message: str) -> None:
    print(f"\n=== {message}", flush=True)


def pretrain(texts: list[str], settings: Settings, output_dir: str, seed: int = 0,
             checkpoint_dir: str | None = None) -> dict:
    """Trains a BPE vocabulary and a GPT on `texts` (last `held_out_fraction` held out); saves the
    model to `output_dir` and returns perplexities and sample generations.

    With `checkpoint_dir`, the run is resumable: started again with the same arguments after a
    crash, it reuses the vocabulary stored there and continues from the last completed epoch.
    """
    import keras_ptft as kp

    keras.utils.set_random_seed(seed)
    if len(texts) < 10:
        raise ValueError(f"The corpus has {len(texts)} non-empty lines; at least 10 are needed.")
    split = max(1, int(len(texts) * settings.held_out_fraction))
    train_texts, held_out = texts[:-split], texts[-split:]
    results: dict = {"train_texts": len(train_texts), "held_out_texts": len(held_out)}

    # A resumed run must see the same token ids as the killed one: the vocabulary is kept in the
    # checkpoint folder rather than trained again.
    bpe_path = os.path.join(checkpoint_dir, "bpe.json") if checkpoint_dir else None
    if bpe_path and os.path.exists(bpe_path):
        _phase(f"Reusing the BPE vocabulary of the checkpoint in {checkpoint_dir}")
        with open(bpe_path, encoding="utf-8") as file:
            stored = json.load(file)
        vocabulary, merges = stored["vocabulary"], stored["merges"]
    else:
        _phase(f"Training a byte-level BPE vocabulary of {settings.vocabulary_size} tokens")
        vocabulary, merges = kp.data.train_bpe(train_texts, vocabulary_size=settings.vocabulary_size)
    tokenizer = kp.data.bpe_tokenizer(vocabulary, merges)

    _phase(f"Building GPT-{settings.size} and measuring held-out perplexity before training")
    backbone = kp.models.GPT.from_size(settings.size, vocabulary_size=len(vocabulary),
                                       max_sequence_length=max(settings.sequence_length, 64))
    lm = kp.tasks.CausalLM(backbone, tokenizer, sequence_length=settings.sequence_length,
                           checkpoint_dir=checkpoint_dir)
    if bpe_path and not os.path.exists(bpe_path):
        with open(bpe_path, "w", encoding="utf-8") as file:
            json.dump({"vocabulary": vocabulary, "merges": merges}, file, ensure_ascii=False)
    lm.compile(optimizer=kp.training.optimization.make_adamw(settings.learning_rate, weight_decay=0.1,
                                                             clipnorm=1.0))
    results["parameters"] = backbone.count_params()
    results["perplexity_before"] = lm.perplexity(held_out)
    print(f"held-out perplexity before: {results['perplexity_before']:.1f}")

    _phase(f"Pretraining for {settings.epochs} epochs on {len(train_texts)} texts")
    started = time.perf_counter()
    lm.fit(train_texts, batch_size=settings.batch_size, epochs=settings.epochs)
    results["train_seconds"] = time.perf_counter() - started
    results["perplexity_after"] = lm.perplexity(held_out)
    print(f"held-out perplexity after:  {results['perplexity_after']:.1f}")

    _phase("Sample generations (greedy, then top-p 0.9)")
    results["greedy"] = lm.generate(list(SAMPLE_PROMPTS), max_length=40, sampler="greedy")
    results["top_p"] = lm.generate(list(SAMPLE_PROMPTS), max_length=40, sampler="top_p", p=0.9, seed=seed)
    for text in results["greedy"] + results["top_p"]:
        print(f"  {text!r}")

    os.makedirs(output_dir, exist_ok=True)
    lm.save_to_preset(output_dir)
    print(f"\nSaved to {output_dir} (load with kp.recipes.text_generator or `keras-ptft generate`).")
    return results


def run(settings: Settings, output_dir: str = "saved_models", seed: int = 0) -> dict:
    """Pretrains on the embedded corpus; raises `CheckFailed` if perplexity did not drop."""
    import keras_ptft as kp

    _phase("Loading the embedded corpus (standard-library docstrings and help topics)")
    texts = kp.data.load_embedded_corpus(max_documents=settings.max_documents, seed=seed)
    results = pretrain(texts, settings, os.path.join(output_dir, "gpt"), seed=seed)
    if not results["perplexity_after"] < 0.5 * results["perplexity_before"]:
        raise CheckFailed(
            f"held-out perplexity went from {results['perplexity_before']:.1f} to "
            f"{results['perplexity_after']:.1f}; expected it to at least halve."
        )
    return results
