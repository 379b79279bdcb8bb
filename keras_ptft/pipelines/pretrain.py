"""Pretraining from scratch: tokenizer → backbone → pretraining task → held-out figures → saved folder.

`keras-ptft pretrain bert|gpt` runs `pretrain_bert` / `pretrain_gpt`, and the quickstarts run the
same functions on the embedded data. Every argument is checked (`check_pretrain_arguments`)
before the tokenizer trains, so a bad size or budget fails in a second, not after minutes.

| function        | tokenizer            | task                  | held-out figure            |
| --------------- | -------------------- | --------------------- | -------------------------- |
| `pretrain_bert` | WordPiece            | `MaskedLM`            | masked-token accuracy      |
| `pretrain_gpt`  | byte-level BPE       | `CausalLM`            | perplexity before / after  |
| `pretrain_vit`  | (patches)            | `MaskedImageModeling` | reconstruction loss        |
| `pretrain_seq2seq` | SentencePiece unigram | `DenoisingLM`      | denoising loss before / after |
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence

import keras
import numpy as np

from keras_ptft.data.bpe import bpe_tokenizer, train_bpe
from keras_ptft.data.seq2seq_preprocessing import NUM_SENTINELS, Seq2SeqTokenizer, train_seq2seq_tokenizer
from keras_ptft.data.wordpiece import SPECIAL_TOKENS, load_vocabulary, save_vocabulary, train_wordpiece
from keras_ptft.models.bert import BERT_SIZES, Bert
from keras_ptft.models.gpt import GPT_SIZES, GPT
from keras_ptft.models.sizes import SIZES as SHARED_SIZES
from keras_ptft.models.seq2seq import SEQ2SEQ_SIZES, Seq2Seq
from keras_ptft.models.vit import VIT_SIZES, ViT
from keras_ptft.tasks.causal_lm import CausalLM
from keras_ptft.tasks.denoising_lm import DenoisingLM
from keras_ptft.tasks.masked_image_modeling import MaskedImageModeling
from keras_ptft.tasks.masked_lm import MaskedLM
from keras_ptft.training.optimization import make_adamw
from keras_ptft.training.schedules import WarmupDecay

# Byte-level BPE starts from all 256 bytes plus its two special tokens.
_BPE_ALPHABET = 256 + 2
# A resumed run must see the token ids of the killed one, so the vocabulary is kept in the
# checkpoint folder rather than trained again.
_WORDPIECE_FILE = "vocabulary.txt"
_BPE_FILE = "bpe.json"
_SENTENCEPIECE_FILE = "sentencepiece.model"
# SentencePiece for seq2seq: 256 byte pieces, 5 special tokens and the T5 sentinels come first.
_SEQ2SEQ_RESERVED = 256 + 5 + NUM_SENTINELS
MIN_TEXTS = 10


@dataclasses.dataclass
class PretrainResult:
    """What a pretraining pipeline returns.

    Attributes:
        task: the trained task (`MaskedLM`, `CausalLM` or `MaskedImageModeling`); its backbone is
            `task.backbone`.
        metrics: dict. Held-out figures, losses per epoch, sizes and seconds, by name.
    """

    task: keras.Model
    metrics: dict


def _backtick(argument: str) -> str:
    return f"`{argument}`"


SIZES = {"bert": BERT_SIZES, "gpt": GPT_SIZES, "vit": VIT_SIZES, "seq2seq": SEQ2SEQ_SIZES}


def check_size(model: str, size: str, name: Callable[[str], str] = _backtick) -> None:
    """Raises a `ValueError` unless `size` is a named size of the `model` family (`SIZES`).

    Example:
    ```python
    check_size("gpt", "base")
    ```
    """
    if model not in SIZES:
        raise ValueError(f"`model` must be one of {sorted(SIZES)}, received {model!r}.")
    if size not in SIZES[model]:
        # The message lists the shared names (keras_ptft.models.sizes), not the deprecated aliases.
        shared = [known for known in SIZES[model] if known in SHARED_SIZES]
        raise ValueError(f"{name('size')} must be a {model.upper()} size, one of {shared}; received {size!r}.")


def check_pretrain_arguments(
    model: str,
    size: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    vocabulary_size: int | None = None,
    sequence_length: int | None = None,
    held_out_fraction: float = 0.1,
    name: Callable[[str], str] = _backtick,
) -> None:
    """Raises a `ValueError` naming the first argument of a pretraining run that cannot work.

    Args:
        model: str. `"bert"`, `"gpt"`, `"vit"` or `"seq2seq"`.
        size: str. A named size of that model family (`BERT_SIZES`, `GPT_SIZES`, `VIT_SIZES`,
            `SEQ2SEQ_SIZES`).
        epochs, batch_size: int. Positive.
        learning_rate: float. Positive and finite.
        vocabulary_size: int or None. Text models: more than the tokenizer's fixed tokens.
        sequence_length: int or None. Text models: at least 4 tokens.
        held_out_fraction: float. In [0, 1).
        name: callable. How an argument is named in the message; the CLI passes one that turns
            `batch_size` into `--batch-size`.

    Example:
    ```python
    check_pretrain_arguments("gpt", "tiny", epochs=3, batch_size=32, learning_rate=1e-3,
                             vocabulary_size=2000, sequence_length=64)
    ```
    """
    check_size(model, size, name)
    for argument, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name(argument)} must be a positive integer, received {value!r}.")
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) or not 0 < learning_rate < np.inf:
        raise ValueError(f"{name('learning_rate')} must be a positive number, received {learning_rate!r}.")
    if not isinstance(held_out_fraction, (int, float)) or not 0 <= held_out_fraction < 1:
        raise ValueError(f"{name('held_out_fraction')} must be in [0, 1), received {held_out_fraction!r}.")
    if model == "vit":
        return
    smallest, first = {"bert": (len(SPECIAL_TOKENS) + 1, "its special tokens"),
                       "gpt": (_BPE_ALPHABET + 1, "256 bytes and 2 special tokens"),
                       "seq2seq": (_SEQ2SEQ_RESERVED + 1, f"256 bytes, 5 special tokens and {NUM_SENTINELS} "
                                                          "sentinels")}[model]
    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, (int, np.integer)) \
            or vocabulary_size < smallest:
        raise ValueError(f"{name('vocabulary_size')} must be an integer >= {smallest} for {model.upper()} "
                         f"({first} come first), received {vocabulary_size!r}.")
    if isinstance(sequence_length, bool) or not isinstance(sequence_length, (int, np.integer)) or sequence_length < 4:
        raise ValueError(f"{name('sequence_length')} must be an integer >= 4, received {sequence_length!r}.")


def pretrain_bert(
    texts: Sequence[str],
    output_dir: str | os.PathLike | None = None,
    size: str = "tiny",
    vocabulary_size: int = 2000,
    sequence_length: int = 64,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    held_out_fraction: float = 0.1,
    held_out_texts: Sequence[str] | None = None,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    distribution=None,
) -> PretrainResult:
    """Trains a WordPiece vocabulary and a BERT with masked LM on `texts`.

    Args:
        texts: list of str. The corpus, one document each.
        output_dir: str or None. Save the backbone and tokenizer here (`save_to_preset`), ready for
            `kp.recipes.text_classifier(output_dir, ...)` or `keras-ptft finetune`.
        size: str. A `BERT_SIZES` name.
        vocabulary_size: int. The largest WordPiece vocabulary.
        sequence_length: int. Tokens per example (also the backbone's maximum).
        epochs, batch_size: int. The budget.
        learning_rate: float. Peak rate of a linear warm-up (6%) and decay schedule.
        held_out_fraction: float. The last this fraction of `texts` is held out for the masked-token
            accuracy (ignored when `held_out_texts` is given).
        held_out_texts: list of str or None. Texts to measure the masked-token accuracy on instead.
        seed: int. Seeds weights, masks and the shuffle.
        checkpoint_dir: str or None. Resumable run: started again with the same arguments after a
            crash, it reuses the vocabulary stored there and continues from the last epoch.
        distribution: None, "data_parallel", "model_parallel" or a distribution object (see
            `keras_ptft.training.resolve_distribution`): train over several devices; `batch_size`
            is then the global batch.

    Returns:
        A `PretrainResult`: the `MaskedLM` and `metrics` (`masked_accuracy`, `loss`, ...).

    Example:
    ```python
    result = kp.pipelines.pretrain_bert(texts, "saved_models/my_bert", epochs=1)
    result.metrics["masked_accuracy"]
    ```
    """
    import tensorflow as tf

    check_pretrain_arguments("bert", size, epochs, batch_size, learning_rate, vocabulary_size, sequence_length,
                             held_out_fraction)
    keras.utils.set_random_seed(seed)
    train_texts, held_out, metrics = _split(texts, held_out_fraction, held_out_texts)
    vocabulary, vocabulary_path = _stored_or_trained(
        checkpoint_dir, _WORDPIECE_FILE, f"WordPiece vocabulary (at most {vocabulary_size} tokens)",
        load_vocabulary, lambda: train_wordpiece(train_texts, vocabulary_size=vocabulary_size))
    print(f"vocabulary: {len(vocabulary)} tokens, e.g. {vocabulary[100:108]}")

    _step(f"pretraining a {size} BERT with masked LM ({epochs} epochs, {len(train_texts)} texts)")
    backbone = Bert.from_size(size, vocabulary_size=len(vocabulary), max_sequence_length=sequence_length)
    mlm = MaskedLM(backbone, vocabulary=vocabulary, sequence_length=sequence_length, checkpoint_dir=checkpoint_dir,
                   seed=seed, distribution=distribution)
    if vocabulary_path and not os.path.exists(vocabulary_path):
        save_vocabulary(vocabulary, vocabulary_path)
    # The schedule's length is left open: `fit` packs the texts into full rows and sizes it from
    # the number of packed batches.
    mlm.compile(optimizer=make_adamw(WarmupDecay(learning_rate, total_steps=None, warmup_ratio=0.06),
                                     clipnorm=1.0))
    history = _timed_fit(mlm, train_texts, metrics, batch_size=batch_size, epochs=epochs, verbose=2)
    metrics["loss"] = [round(v, 4) for v in history.history.get("loss", [])]
    held_out_ds = tf.data.Dataset.from_tensor_slices(held_out).batch(batch_size)
    metrics["masked_accuracy"] = float(mlm.evaluate(held_out_ds, verbose=0, return_dict=True)["masked_accuracy"])
    print(f"held-out masked-token accuracy: {metrics['masked_accuracy']:.3f}")
    return _result(mlm, metrics, output_dir, "fine-tune with kp.recipes.text_classifier or `keras-ptft finetune`")


def pretrain_gpt(
    texts: Sequence[str],
    output_dir: str | os.PathLike | None = None,
    size: str = "tiny",
    vocabulary_size: int = 2000,
    sequence_length: int = 64,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    held_out_fraction: float = 0.1,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    sample_prompts: Sequence[str] = (),
    distribution=None,
) -> PretrainResult:
    """Trains a byte-level BPE vocabulary and a GPT (causal LM) on `texts`.

    Args:
        texts: list of str. The corpus, one document each.
        output_dir: str or None. Save the model and tokenizer here (`save_to_preset`), ready for
            `kp.recipes.text_generator(output_dir)` or `keras-ptft generate`.
        size: str. A `GPT_SIZES` name.
        vocabulary_size: int. BPE tokens wanted, the 256 bytes and 2 special tokens included.
        sequence_length: int. Training tokens per example (the backbone holds at least 64).
        epochs, batch_size: int. The budget.
        learning_rate: float. AdamW learning rate (weight decay 0.1, gradients clipped at 1).
        held_out_fraction: float. The last this fraction of `texts` is held out for perplexity.
        seed: int. Seeds weights, the shuffle and sampling.
        checkpoint_dir: str or None. Resumable run, as in `pretrain_bert`.
        sample_prompts: list of str. Print greedy and top-p generations of these after training.
        distribution: None, a name or a distribution object, as in `pretrain_bert`.

    Returns:
        A `PretrainResult`: the `CausalLM` and `metrics` (`perplexity_before`,
        `perplexity_after`, `greedy`, `top_p`, ...).

    Example:
    ```python
    result = kp.pipelines.pretrain_gpt(texts, "saved_models/my_gpt", vocabulary_size=500, epochs=1)
    result.task.generate("The", max_length=20)
    ```
    """
    check_pretrain_arguments("gpt", size, epochs, batch_size, learning_rate, vocabulary_size, sequence_length,
                             held_out_fraction)
    keras.utils.set_random_seed(seed)
    train_texts, held_out, metrics = _split(texts, held_out_fraction, None)
    (vocabulary, merges), bpe_path = _stored_or_trained(
        checkpoint_dir, _BPE_FILE, f"byte-level BPE vocabulary of {vocabulary_size} tokens", _load_bpe,
        lambda: train_bpe(train_texts, vocabulary_size=vocabulary_size))
    tokenizer = bpe_tokenizer(vocabulary, merges)

    _step(f"building GPT-{size} and measuring held-out perplexity before training")
    backbone = GPT.from_size(size, vocabulary_size=len(vocabulary), max_sequence_length=max(sequence_length, 64))
    lm = CausalLM(backbone, tokenizer, sequence_length=sequence_length, checkpoint_dir=checkpoint_dir,
                  distribution=distribution)
    if bpe_path and not os.path.exists(bpe_path):
        with open(bpe_path, "w", encoding="utf-8") as file:
            json.dump({"vocabulary": vocabulary, "merges": merges}, file, ensure_ascii=False)
    lm.compile(optimizer=make_adamw(learning_rate, weight_decay=0.1, clipnorm=1.0))
    metrics["parameters"] = backbone.count_params()
    metrics["perplexity_before"] = lm.perplexity(held_out)
    print(f"held-out perplexity before: {metrics['perplexity_before']:.1f}")

    _step(f"pretraining for {epochs} epochs on {len(train_texts)} texts")
    _timed_fit(lm, train_texts, metrics, batch_size=batch_size, epochs=epochs)
    metrics["perplexity_after"] = lm.perplexity(held_out)
    print(f"held-out perplexity after:  {metrics['perplexity_after']:.1f}")
    if sample_prompts:
        _step("sample generations (greedy, then top-p 0.9)")
        metrics["greedy"] = lm.generate(list(sample_prompts), max_length=40, sampler="greedy")
        metrics["top_p"] = lm.generate(list(sample_prompts), max_length=40, sampler="top_p", p=0.9, seed=seed)
        for text in metrics["greedy"] + metrics["top_p"]:
            print(f"  {text!r}")
    return _result(lm, metrics, output_dir, "load with kp.recipes.text_generator or `keras-ptft generate`")


def pretrain_vit(
    images: np.ndarray,
    output_dir: str | os.PathLike | None = None,
    size: str = "tiny",
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    decoder_dim: int = 64,
    decoder_layers: int = 1,
    seed: int = 0,
    **backbone_options,
) -> PretrainResult:
    """Pretrains a ViT as a masked autoencoder (MAE, 75% of patches masked) on unlabeled images.

    Args:
        images: uint8 or float array `(n, height, width, channels)`. The unlabeled images.
        output_dir: str or None. Save the backbone here (`save_to_preset`), ready for
            `kp.recipes.image_classifier(output_dir, ...)`.
        size: str. A `VIT_SIZES` name; `**backbone_options` override its numbers (e.g.
            `image_shape`, `num_layers`, `hidden_dim`).
        epochs, batch_size: int. The budget.
        learning_rate: float. AdamW learning rate (weight decay 0.05).
        decoder_dim, decoder_layers: int. The MAE decoder, dropped after pretraining.
        seed: int. Seeds weights and masks.

    Returns:
        A `PretrainResult`: the `MaskedImageModeling` task and `metrics` (`loss` per epoch).

    Example:
    ```python
    shapes = kp.data.generate_shapes(256, 16)
    result = kp.pipelines.pretrain_vit(shapes.images, image_shape=(16, 16, 3), num_layers=1, epochs=1)
    ```
    """
    check_pretrain_arguments("vit", size, epochs, batch_size, learning_rate)
    keras.utils.set_random_seed(seed)
    _step(f"MAE pretraining of a {size} ViT on {len(images)} images (75% of patches masked, {epochs} epochs)")
    backbone = ViT.from_size(size, pooling="mean", position_embedding="sincos", **backbone_options)
    mae = MaskedImageModeling(backbone, decoder_dim=decoder_dim, decoder_layers=decoder_layers, seed=seed)
    mae.compile(optimizer=make_adamw(learning_rate, weight_decay=0.05))
    metrics = {}
    history = _timed_fit(mae, images, metrics, batch_size=batch_size, epochs=epochs, verbose=2)
    metrics["loss"] = list(history.history["loss"])
    return _result(mae, metrics, output_dir, "fine-tune with kp.recipes.image_classifier")


def pretrain_seq2seq(
    texts: Sequence[str],
    output_dir: str | os.PathLike | None = None,
    size: str = "tiny",
    vocabulary_size: int = 2000,
    sequence_length: int = 64,
    epochs: int = 3,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    held_out_fraction: float = 0.1,
    seed: int = 0,
    checkpoint_dir: str | os.PathLike | None = None,
    objective: str = "span_corruption",
    rate: float = 0.15,
    mean_span_length: float = 3.0,
    distribution=None,
) -> PretrainResult:
    """Trains a SentencePiece vocabulary and an encoder–decoder by denoising (`DenoisingLM`) on `texts`.

    Args:
        texts: list of str. Monolingual sentences in either or both languages (for a translator:
            the sources and the targets of the training pairs).
        output_dir: str or None. Save the backbone and tokenizer here (`save_to_preset`), ready for
            `kp.recipes.translator(output_dir)` or `keras-ptft finetune translator --backbone`.
        size: str. A `SEQ2SEQ_SIZES` name.
        vocabulary_size: int. SentencePiece pieces wanted (bytes, special tokens and sentinels
            included; a small corpus may give fewer).
        sequence_length: int. Tokens per packed row (also the backbone's maximum).
        epochs, batch_size: int. The budget.
        learning_rate: float. Peak rate of a linear warm-up (6%) and decay schedule.
        held_out_fraction: float. The last this fraction of `texts` is held out for the loss.
        seed: int. Seeds weights, noise and the shuffle.
        checkpoint_dir: str or None. Resumable run, as in `pretrain_bert` (the tokenizer is kept there).
        objective, rate, mean_span_length: the corruption (see `kp.tasks.DenoisingLM`).
        distribution: None, "data_parallel" or a distribution object, as in `pretrain_bert`
            ("model_parallel" is refused: `Seq2Seq` has no `get_layout_map`).

    Returns:
        A `PretrainResult`: the `DenoisingLM` and `metrics` (`loss_before`, `loss_after` on the
        held-out texts, `loss` per epoch, ...).

    Example:
    ```python
    result = kp.pipelines.pretrain_seq2seq(english + chinese, "saved_models/my_seq2seq", epochs=1)
    translator = kp.recipes.translator("saved_models/my_seq2seq")
    ```
    """
    check_pretrain_arguments("seq2seq", size, epochs, batch_size, learning_rate, vocabulary_size, sequence_length,
                             held_out_fraction)
    keras.utils.set_random_seed(seed)
    train_texts, held_out, metrics = _split(texts, held_out_fraction, None)
    tokenizer, tokenizer_path = _stored_or_trained(
        checkpoint_dir, _SENTENCEPIECE_FILE, f"SentencePiece vocabulary (at most {vocabulary_size} pieces)",
        lambda path: Seq2SeqTokenizer(proto=path),
        lambda: train_seq2seq_tokenizer(train_texts, vocabulary_size=vocabulary_size))
    print(f"vocabulary: {tokenizer.vocabulary_size()} pieces")

    _step(f"building a {size} Seq2Seq and measuring the held-out denoising loss before training")
    backbone = Seq2Seq.from_size(size, vocabulary_size=tokenizer.vocabulary_size(),
                                 max_sequence_length=sequence_length)
    denoiser = DenoisingLM(backbone, tokenizer, sequence_length=sequence_length, objective=objective, rate=rate,
                           mean_span_length=mean_span_length, seed=seed, checkpoint_dir=checkpoint_dir,
                           distribution=distribution)
    if tokenizer_path and not os.path.exists(tokenizer_path):
        with open(tokenizer_path, "wb") as file:
            file.write(bytes(tokenizer.proto))
    # The schedule's length is left open: `fit` sizes it from the number of packed batches.
    denoiser.compile(optimizer=make_adamw(WarmupDecay(learning_rate, total_steps=None, warmup_ratio=0.06),
                                          clipnorm=1.0))
    metrics["parameters"] = backbone.count_params()
    metrics["loss_before"] = float(denoiser.evaluate(held_out, batch_size=batch_size, verbose=0,
                                                     return_dict=True)["loss"])
    print(f"held-out denoising loss before: {metrics['loss_before']:.3f}")

    _step(f"pretraining by {objective} ({epochs} epochs, {len(train_texts)} texts)")
    history = _timed_fit(denoiser, train_texts, metrics, batch_size=batch_size, epochs=epochs, verbose=2)
    metrics["loss"] = [round(v, 4) for v in history.history.get("loss", [])]
    metrics["loss_after"] = float(denoiser.evaluate(held_out, batch_size=batch_size, verbose=0,
                                                    return_dict=True)["loss"])
    print(f"held-out denoising loss after:  {metrics['loss_after']:.3f}")
    return _result(denoiser, metrics, output_dir,
                   "fine-tune with kp.recipes.translator or `keras-ptft finetune translator`")


def _split(texts, held_out_fraction, held_out_texts):
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise ValueError("`texts` must be a list of str, one document each.")
    texts = list(texts)
    if len(texts) < MIN_TEXTS:
        raise ValueError(f"`texts` holds {len(texts)} documents (non-empty lines); at least {MIN_TEXTS} are needed.")
    if held_out_texts is not None:
        train_texts, held_out = texts, list(held_out_texts)
    else:
        split = max(1, int(len(texts) * held_out_fraction))
        train_texts, held_out = texts[:-split], texts[-split:]
    return train_texts, held_out, {"train_texts": len(train_texts), "held_out_texts": len(held_out)}


def _stored_or_trained(checkpoint_dir, filename: str, what: str, load, train):
    """The tokenizer vocabulary kept in `checkpoint_dir` by an earlier (killed) run, else a new one.

    Returns `(vocabulary, path)`: the path to save a new vocabulary to once the task is built (None
    without a checkpoint folder)."""
    path = os.path.join(checkpoint_dir, filename) if checkpoint_dir else None
    if path and os.path.exists(path):
        _step(f"reusing the {what} kept in the checkpoint folder {checkpoint_dir}")
        return load(path), path
    _step(f"training a {what}")
    return train(), path


def _load_bpe(path: str):
    with open(path, encoding="utf-8") as file:
        stored = json.load(file)
    return stored["vocabulary"], stored["merges"]


def _step(message: str) -> None:
    print(f"--- {message}", flush=True)


def _timed_fit(task, x, metrics: dict, **fit_kwargs):
    """`task.fit(x, **fit_kwargs)`, its wall-clock time written to `metrics["train_seconds"]`."""
    started = time.perf_counter()
    history = task.fit(x, **fit_kwargs)
    metrics["train_seconds"] = time.perf_counter() - started
    return history


def _result(task, metrics: dict, output_dir, hint: str) -> PretrainResult:
    """The pipeline's `PretrainResult`, the task saved to `output_dir` first when one is given."""
    if output_dir is not None:
        output_dir = os.fspath(output_dir)
        os.makedirs(output_dir, exist_ok=True)
        task.save_to_preset(output_dir)
        print(f"\nSaved to {output_dir} ({hint}).", flush=True)
    return PretrainResult(task, metrics)
