"""Translation: an encoder–decoder trained on string pairs, with cached greedy and beam decoding."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import keras_hub
import numpy as np
from keras import ops

from keras_ptft.data.seq2seq_preprocessing import Seq2SeqPreprocessor, check_chinese_coverage
from keras_ptft.models.seq2seq import Seq2Seq
from keras_ptft.tasks.base import TrainingMixin
from keras_ptft.tasks.causal_lm import make_sampler
from keras_ptft.tasks.translation_metrics import translation_scores
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.training.shuffling import shuffled_batches
from keras_ptft.validation import check_texts


@keras.saving.register_keras_serializable(package="keras_ptft")
class Translator(TrainingMixin, keras_hub.models.BartSeq2SeqLM):
    """Sequence-to-sequence learning on `(source, target)` string pairs, and `translate()`.

    A thin layer over keras-hub's `Seq2SeqLM` machinery: keras-hub's generate loop for BART
    (encoder run once, cross-attention keys/values cached once, self-attention keys/values cached
    token by token, its samplers, its per-backend compiled loop) drives our `Seq2Seq` backbone
    through `call_encoder` / `call_decoder_with_cache` below. What this class adds: a preprocessor
    built from a tokenizer, compile defaults, string pairs through the shared fit path
    (`keras_ptft.tasks.base`: checks, validation split, seeded shuffling, schedule sizing,
    checkpoints, distribution), `translate` with the sampler by name and clear errors, and
    BLEU/chrF in `evaluate` and `score`.

    Training pairs go in as `fit((sources, targets))` or `fit(sources, targets)`: two equally long
    lists of non-empty strings (validation data as a `(sources, targets)` tuple). The loss is the
    cross-entropy of each target token given the source and the previous target tokens, averaged
    over real tokens (padding has zero weight). Sources longer than `sequence_length` tokens (with
    the start and end tokens) are truncated, as are targets. The first `fit` checks that the
    tokenizer keeps at least 99% of the Chinese characters of the pairs and refuses it otherwise,
    with the figure. Token-id dicts (as `tokenize` returns them) and `tf.data.Dataset`s also train.

    Args:
        backbone: `keras_ptft.models.Seq2Seq`.
        tokenizer: a tokenizer with start, end and pad ids, e.g. from
            `keras_ptft.data.train_seq2seq_tokenizer`. Used to build the preprocessor.
        preprocessor: a `keras_ptft.data.Seq2SeqPreprocessor`, or None to build one from
            `tokenizer`.
        sequence_length: int. Encoder and decoder length for training (and the default
            `max_length` of `translate`).
        checkpoint_dir: str or None. Makes `fit` resumable there and keeps the best model
            (`keras_ptft.training.resumable_callbacks`). Not saved with the model.
        monitor: str or None. Metric of the best model; `"val_loss"` with validation data, else
            `"loss"`.
        seed: int or None. Seed of the shuffling; None follows `keras.utils.set_random_seed`.
        distribution: None, `"data_parallel"` or a distribution object
            (`keras_ptft.training.resolve_distribution`); `fit`'s `batch_size` is then the global
            batch. `"model_parallel"` is refused: `Seq2Seq` has no `get_layout_map`. A run option,
            not saved with the model.

    Example:
    ```python
    import keras_ptft as kp

    sources, targets = ["I am here.", "You are late."] * 16, ["我在这里。", "你迟到了。"] * 16
    tokenizer = kp.data.train_seq2seq_tokenizer(sources + targets, vocabulary_size=320)
    model = kp.models.Seq2Seq(vocabulary_size=tokenizer.vocabulary_size(), num_layers=1, num_heads=2, hidden_dim=32,
                              intermediate_dim=64, max_sequence_length=16)
    translator = kp.tasks.Translator(model, tokenizer, sequence_length=16)
    translator.compile()
    translator.fit((sources, targets), epochs=2, batch_size=8)
    translator.translate(["I am here."], sampler="beam", num_beams=2, max_length=12)
    ```
    """

    backbone_cls = Seq2Seq
    preprocessor_cls = Seq2SeqPreprocessor

    def __init__(
        self,
        backbone: keras.Model,
        tokenizer: keras.layers.Layer | None = None,
        preprocessor: keras.layers.Layer | None = None,
        sequence_length: int = 64,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        seed: int | None = None,
        **kwargs,
    ):
        if preprocessor is None and tokenizer is not None:
            if not isinstance(sequence_length, int) or not 3 <= sequence_length <= backbone.max_sequence_length:
                raise ValueError(
                    "`sequence_length` must be an integer in [3, backbone.max_sequence_length="
                    f"{backbone.max_sequence_length}], received sequence_length={sequence_length!r}."
                )
            preprocessor = Seq2SeqPreprocessor(
                tokenizer, encoder_sequence_length=sequence_length, decoder_sequence_length=sequence_length
            )
        # While a `.keras` file loads, the tokenizer exists before its proto asset is restored.
        if preprocessor is not None and getattr(preprocessor.tokenizer, "proto", True) is not None:
            size = preprocessor.tokenizer.vocabulary_size()
            if size != backbone.vocabulary_size:
                raise ValueError(
                    f"The tokenizer has {size} tokens but the backbone's `vocabulary_size` is "
                    f"{backbone.vocabulary_size}; they must match."
                )
        super().__init__(backbone=backbone, preprocessor=preprocessor, **kwargs)
        # Options of this training run, not of the model: not in `get_config`.
        self.set_run_options(checkpoint_dir, monitor, seed)

    def compile(self, optimizer="auto", loss="auto", *, weighted_metrics="auto", sampler="greedy", **kwargs):
        """Compiles with defaults: AdamW (lr 5e-4, weight decay 0.01, clip-norm 1), cross-entropy
        averaged over real target tokens, token accuracy; `sampler` is the default of `translate()`.

        Every argument of `keras.Model.compile` may be passed to override a default.
        """
        if optimizer == "auto":
            optimizer = make_adamw(5e-4, weight_decay=0.01, clipnorm=1.0)
        if loss == "auto":
            # Mean over weighted tokens: the default reduction would also count padding slots.
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        if weighted_metrics == "auto":
            weighted_metrics = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics,
                        sampler=make_sampler(sampler) if isinstance(sampler, str) else sampler,
                        **{**default_compile_kwargs(), **kwargs})
        # What `translate(sampler=None)` uses: `self.sampler` is whichever the last call chose.
        self.default_sampler = self.sampler

    # === The backbone, step by step (keras-hub's BART generate loop calls these) ===

    def call_encoder(self, token_ids, padding_mask):
        backbone = self.backbone
        tokens = backbone.encoder_token_embedding(token_ids)
        x = backbone.encoder_embeddings_add((tokens, backbone.encoder_position_embedding(tokens)))
        x = backbone.encoder_embeddings_dropout(x)
        for layer in backbone.encoder_transformer_layers:
            x = layer(x, padding_mask=padding_mask)
        return backbone.encoder_layer_norm(x)

    def call_decoder_with_cache(
        self,
        encoder_hidden_states,
        encoder_padding_mask,
        decoder_token_ids,
        self_attention_cache=None,
        self_attention_cache_update_index=None,
        cross_attention_cache=None,
        cross_attention_cache_update_index=None,
    ):
        """Runs the decoder on `decoder_token_ids` at `self_attention_cache_update_index`, reading and
        updating the per-layer caches; returns `(logits, hidden_states, self_cache, cross_cache)`."""
        backbone = self.backbone
        tokens = backbone.token_embedding(decoder_token_ids)
        positions = backbone.decoder_position_embedding(tokens, start_index=self_attention_cache_update_index)
        x = backbone.decoder_embeddings_dropout(backbone.decoder_embeddings_add((tokens, positions)))
        self_caches, cross_caches = [], []
        for i, layer in enumerate(backbone.decoder_transformer_layers):
            x, next_self_cache, next_cross_cache = layer(
                decoder_sequence=x,
                encoder_sequence=encoder_hidden_states,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=self_attention_cache[:, i, ...],
                self_attention_cache_update_index=self_attention_cache_update_index,
                cross_attention_cache=cross_attention_cache[:, i, ...],
                cross_attention_cache_update_index=cross_attention_cache_update_index,
            )
            self_caches.append(next_self_cache)
            cross_caches.append(next_cross_cache)
        if self_attention_cache_update_index is not None:
            self_attention_cache = ops.stack(self_caches, axis=1)
        if cross_attention_cache_update_index is not None:
            cross_attention_cache = ops.stack(cross_caches, axis=1)
        hidden_states = backbone.decoder_layer_norm(x)
        logits = backbone.token_embedding(hidden_states, reverse=True)
        return logits, hidden_states, self_attention_cache, cross_attention_cache

    # === Training and evaluation on string pairs (the shared path's hooks) ===
    # Pairs are tokenized eagerly, as CausalLM does: mapping the SentencePiece preprocessor over
    # a tf.data pipeline costs seconds of tracing per call for what takes milliseconds eagerly.

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        pairs = _as_pairs(x, y)
        if pairs is None or self.preprocessor is None:
            return x, y, sample_weight
        check_chinese_coverage(self.preprocessor.tokenizer, pairs[0] + pairs[1])
        return pairs[0], pairs[1], sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        if self.preprocessor is not None and _is_text(x) and _is_text(y):
            x, y, weights = self.tokenize(x, y)
            if sample_weight is not None:  # a weight per pair scales each of its tokens
                weights = weights * np.asarray(sample_weight, "float32").reshape(-1, 1)
            return _prefetched(shuffled_batches(x, y, weights, batch_size, seed=self.seed, shuffle=shuffle))
        if isinstance(x, dict) and "encoder_token_ids" in x:  # token ids already: no preprocessor
            return _prefetched(shuffled_batches(x, y, sample_weight, batch_size, seed=self.seed, shuffle=shuffle))
        return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)

    def evaluate(self, x=None, y=None, batch_size=None, sample_weight=None, **kwargs):
        """On string pairs, returns a dict of the compiled metrics plus `bleu` and `chrf` of the
        greedy translations of the sources (`keras_ptft.tasks.translation_metrics`)."""
        pairs = None if kwargs.get("_use_cached_eval_dataset") else _as_pairs(x, y)
        if pairs is None or self.preprocessor is None:
            return super().evaluate(x, y, batch_size=batch_size, sample_weight=sample_weight, **kwargs)
        kwargs["return_dict"] = True
        results = super().evaluate(*pairs, batch_size=batch_size, sample_weight=sample_weight, **kwargs)
        return {**results, **self.score(*pairs, batch_size=batch_size or 32)}

    def score(self, sources: Sequence[str], references: Sequence[str], **translate_options) -> dict:
        """Translates `sources` and returns `{"bleu", "chrf"}` against `references` (sacrebleu).

        Example:
        ```python
        translator.score(["I am here."], ["我在这里。"], sampler="beam", num_beams=4)
        ```
        """
        sources, references = _as_pairs(sources, references, ("sources", "references"))
        return translation_scores(self.translate(sources, **translate_options), references)

    def tokenize(self, sources: Sequence[str], targets: Sequence[str], chunk_size: int = 1024):
        """Runs the preprocessor eagerly: pairs → `(x, y, sample_weight)` NumPy arrays."""
        parts = [
            keras.tree.map_structure(
                keras.ops.convert_to_numpy,
                self.preprocessor({"encoder_text": sources[i : i + chunk_size],
                                   "decoder_text": targets[i : i + chunk_size]}),
            )
            for i in range(0, len(sources), chunk_size)
        ]
        x = {key: np.concatenate([p[0][key] for p in parts]).astype("int32") for key in parts[0][0]}
        y = np.concatenate([p[1] for p in parts])
        return x, y, np.concatenate([p[2] for p in parts]).astype("float32")

    # === Translation ===

    def translate(
        self,
        texts: str | Sequence[str],
        sampler: str | None = None,
        num_beams: int | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
    ) -> str | list[str]:
        """Translates each source with cached decoding until the end token or `max_length`.

        Args:
            texts: str or list of str. The sources (truncated to the preprocessor's
                `encoder_sequence_length` tokens).
            sampler: None (the compiled one, greedy by default), `"greedy"`, `"beam"`, or any
                name `keras_ptft.tasks.make_sampler` takes.
            num_beams: int >= 1. Beam width; implies `sampler="beam"` when `sampler` is None.
                `num_beams=1` gives the greedy translation.
            max_length: int. Decoder length in tokens, the start token included (so at least 2);
                at most the backbone's `max_sequence_length`. Defaults to `sequence_length`.
            batch_size: int. Sources decoded together.

        Returns:
            str or list of str: one translation per source, special tokens removed.

        Example:
        ```python
        translator.translate(["I am here.", "You are late."], sampler="beam", num_beams=4, max_length=32)
        ```
        """
        single = isinstance(texts, str)
        texts = check_texts([texts] if single else texts, "texts", allow_blank=False)
        max_length = self._check_max_length(max_length)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, received batch_size={batch_size!r}.")
        self._set_sampler(sampler, num_beams)
        outputs = []
        for start in range(0, len(texts), batch_size):
            outputs.extend(super().generate(texts[start : start + batch_size], max_length=max_length))
        outputs = [text.decode("utf-8") if isinstance(text, bytes) else str(text) for text in outputs]
        return outputs[0] if single else outputs

    def _set_sampler(self, sampler, num_beams) -> None:
        if num_beams is not None:
            if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
                raise ValueError(f"`num_beams` must be an integer >= 1, received num_beams={num_beams!r}.")
            if sampler not in (None, "beam"):
                raise ValueError(f"`num_beams` goes with sampler='beam', received sampler={sampler!r}.")
            sampler = make_sampler("beam", num_beams=num_beams)
        elif sampler is not None:
            sampler = make_sampler(sampler)
        if sampler is None:
            if not self.compiled:
                self.compile()
            sampler = getattr(self, "default_sampler", None) or self.sampler
        key = (type(sampler).__name__, getattr(sampler, "num_beams", None))
        current = getattr(self, "sampler", None)
        if current is None or key != (type(current).__name__, getattr(current, "num_beams", None)):
            self.sampler = sampler
            self.generate_function = None  # recompiled with the new sampler

    def _check_max_length(self, max_length) -> int:
        max_length = self.preprocessor.decoder_sequence_length if max_length is None else max_length
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ValueError(
                "`max_length` must be an integer >= 2: the decoder prompt is the start token and at least "
                f"one token must be generated, received max_length={max_length!r}."
            )
        if max_length > self.backbone.max_sequence_length:
            raise ValueError(
                f"`max_length`={max_length} exceeds the backbone's max_sequence_length="
                f"{self.backbone.max_sequence_length}."
            )
        return max_length


def _as_pairs(x, y, names: tuple[str, str] = ("x", "y")) -> tuple[list[str], list[str]] | None:
    """`(sources, targets)` from `fit((sources, targets))` or `fit(sources, targets)`, checked; None
    when neither is text (arrays or a dataset go to Keras as they are)."""
    if y is None and isinstance(x, tuple) and len(x) == 2:
        x, y = x
    if not _is_text(x) and not _is_text(y):
        return None
    if y is None:
        raise ValueError(
            f"`{names[0]}` holds sources without targets; pass (sources, targets) or sources and y=targets."
        )
    sources, targets = check_texts(x, names[0], allow_blank=False), check_texts(y, names[1], allow_blank=False)
    if len(sources) != len(targets):
        raise ValueError(
            f"`{names[0]}` and `{names[1]}` must hold as many sources as targets, received {len(sources)} "
            f"sources and {len(targets)} targets."
        )
    return sources, targets


def _prefetched(dataset):
    import tensorflow as tf  # tf.data feeds every backend

    return dataset.prefetch(tf.data.AUTOTUNE)


def _is_text(x) -> bool:
    if isinstance(x, np.ndarray):
        x = x.tolist()
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, str) for t in x)
