"""Fine-tune a pretrained GPT to generate text: domain adaptation or instruction tuning."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras

from keras_ptft.convert.resolve import resolve_checkpoint
from keras_ptft.tasks.causal_lm import CausalLM
from keras_ptft.training.optimization import make_adamw


def text_generator(
    backbone_or_path: keras.Model | str | os.PathLike,
    tokenizer: keras.layers.Layer | None = None,
    sequence_length: int | None = None,
    learning_rate: float = 1e-4,
    weight_decay: float = 0.01,
    sampler: str = "greedy",
    checkpoint_dir: str | os.PathLike | None = None,
    monitor: str | None = None,
    seed: int | None = None,
    distribution=None,
    bucketing: bool | int | Sequence[int] = True,
) -> CausalLM:
    """Returns a compiled `CausalLM` ready to fine-tune with `fit()`.

    `fit()` then takes either plain texts (domain adaptation: every token is a target) or a dict
    `{"prompts": [...], "responses": [...]}` (instruction / dialogue tuning: the model reads
    `prompt + response` but the loss counts the response tokens and the end token only, so it
    learns to answer, not to imitate prompts).

    Args:
        backbone_or_path: `keras_ptft.models.GPT`, or a checkpoint folder
            (`keras_ptft.convert.load_checkpoint`): one written by `save_to_preset` (backbone weights
            plus tokenizer) or a Hugging Face GPT-2 folder (its byte-level BPE comes along).
        tokenizer: the tokenizer, required when `backbone_or_path` is a model (or a folder without
            one).
        sequence_length: int or None. Training sequence length; longer examples are truncated.
            Defaults to min(128, the backbone's `max_sequence_length`); a longer one is refused.
        learning_rate: float. AdamW learning rate (fine-tuning wants ~10x less than pretraining).
        weight_decay: float. AdamW decoupled weight decay on kernels and embeddings.
        sampler: str. Default sampler of `generate()`.
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model.
        monitor: str or None. Metric of the best model.
        seed: int or None. Seed of the shuffling.
        distribution: None, `"data_parallel"`, `"model_parallel"` or a distribution object; passed
            to the task (`keras_ptft.training.distribution`).
        bucketing: bool, int or list of int. Prompt/response pairs (one per row) are batched by
            length bucket, each batch cut to its bucket's length (see `CausalLM`); False pads
            every row to `sequence_length`.

    Example:
    ```python
    generator = kp.recipes.text_generator("saved_models/my_gpt", sequence_length=64)
    generator.fit({"prompts": ["Q: 2+2?\\nA:"], "responses": [" 4"]}, epochs=3)
    generator.generate("Q: 2+2?\\nA:", max_length=16)
    ```
    """
    checkpoint = resolve_checkpoint(backbone_or_path, expected="a GPT backbone")
    backbone, tokenizer = checkpoint.backbone, tokenizer or checkpoint.text_tokenizer
    # A decoder has token embeddings (every keras-hub backbone has the attribute, None when it has
    # none) but, unlike an encoder, no segment input.
    inputs = backbone.input if isinstance(getattr(backbone, "input", None), dict) else {}
    if getattr(backbone, "token_embedding", None) is None or "segment_ids" in inputs:
        raise checkpoint.wrong_model("a GPT backbone or a GPT checkpoint folder")
    if tokenizer is None:
        raise ValueError("`tokenizer` is required when the backbone does not come with one.")
    if not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be positive, received learning_rate={learning_rate!r}.")
    generator = CausalLM(backbone, tokenizer, sequence_length=sequence_length, seed=seed, distribution=distribution,
                         bucketing=bucketing)
    generator.compile(optimizer=make_adamw(learning_rate, weight_decay=weight_decay, clipnorm=1.0), sampler=sampler)
    generator.set_run_options(checkpoint_dir, monitor)
    return generator
