"""Causal language modeling: GPT pretraining, perplexity, and text generation."""

from __future__ import annotations

import os
from typing import Sequence

import keras
import keras_hub
import numpy as np

from keras_ptft.data.bucketing import bucketed_arrays, check_bucketing
from keras_ptft.data.causal_lm_preprocessing import CausalLMPreprocessor
from keras_ptft.data.packing import pack_for_causal_lm
from keras_ptft.models.gpt import GPT
from keras_ptft.tasks.base import BucketingOption, TrainingMixin
from keras_ptft.tasks.masked_lm import check_corpus, check_packing, is_text_corpus, shuffled_documents, shuffled_rows
from keras_ptft.training.shuffling import shuffled_batches
from keras_ptft.training.optimization import default_compile_kwargs, make_adamw
from keras_ptft.validation import check_sequence_length, check_texts

SAMPLERS = ("greedy", "top_k", "top_p", "random", "beam")


@keras.saving.register_keras_serializable(package="keras_ptft")
class CausalLM(BucketingOption, TrainingMixin, keras_hub.models.GPT2CausalLM):
    """Next-token prediction on raw strings, and `generate()` with a key/value cache.

    A thin layer over keras-hub's `CausalLM` machinery: the GPT backbone shares GPT-2's layer
    names, so keras-hub's cached decoding (`call_with_cache`), its samplers and its per-backend
    compiled generate loop (`tf.function(jit_compile)` / `jax.jit` / torch eager) are reused as they
    are. What this class adds: building the preprocessor from a tokenizer, a vocabulary-size check,
    compile defaults (padding-masked mean loss, perplexity), and a `generate()` that takes the
    sampler by name and rejects bad arguments with clear errors.

    Labels are the next tokens and the sample weight is the padding mask, so padding never counts
    in the loss or the metrics. Prompts of different lengths may share a batch: keras-hub starts
    decoding at the shortest prompt and keeps each longer prompt's own tokens until it ends, so a
    prompt gives the same result alone or in a batch.

    Args:
        backbone: `keras_ptft.models.GPT`.
        tokenizer: a keras-hub tokenizer with start/end/pad ids, e.g.
            `keras_ptft.data.bpe_tokenizer(vocab, merges)`. Used to build the preprocessor.
        preprocessor: a `keras_ptft.data.causal_lm_preprocessing.CausalLMPreprocessor`, or None to
            build one from `tokenizer` (or to feed token ids yourself when there is no tokenizer).
        sequence_length: int or None. Training sequence length (and default generation length);
            defaults to min(128, `backbone.max_sequence_length`). A longer one is refused.
        checkpoint_dir: str or None. Makes `fit` resumable there: a run killed at any moment and
            started again with the same command continues from its last completed epoch, and the
            best model is kept as `best.keras` (`keras_ptft.training.resumable_callbacks`). A
            folder holding another model's checkpoint is refused. Not saved with the model.
        monitor: str or None. Metric of the best model; `"val_loss"` when `fit` gets validation
            data, else `"loss"`.
        seed: int or None. Seed of the shuffling; None follows `keras.utils.set_random_seed`.
        packing: bool. How `fit` lays out a corpus of raw strings (a list, array or
            `tf.data.Dataset` of str). True (the default): documents are concatenated, each
            followed by the end token, and cut into full blocks of `sequence_length` (Hugging
            Face's `group_texts`), so every position is trained; documents are reshuffled before
            packing every epoch, and only the last block may hold padding (weighted 0). False: one
            document per row, with the start token, padded to `sequence_length`. `{"prompts",
            "responses"}` pairs, validation, `evaluate` and `perplexity` always use one example per
            row. A run option like `seed`: not saved with the model.
        bucketing: bool, int or list of int. How the examples kept one per row (prompt/response
            pairs, `packing=False`, validation, `evaluate`, `perplexity`) are batched: True (the
            default) groups them into length buckets from the data's own quantiles, each batch cut
            to its bucket's length (`keras_ptft.data.bucketed_arrays`; only right padding, whose
            loss weight is 0, is dropped); a number of buckets or explicit bucket lengths; False
            pads every row to `sequence_length`. A run option: not saved with the model.

    Example:
    ```python
    import keras_ptft as kp

    texts = ["the cat sat on the mat", "the dog lay on the rug"] * 32
    vocab, merges = kp.data.train_bpe(texts, vocabulary_size=280)
    gpt = kp.models.GPT(vocabulary_size=len(vocab), num_layers=2, num_heads=2, hidden_dim=32,
                        intermediate_dim=64, max_sequence_length=32)
    lm = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocab, merges), sequence_length=16)
    lm.fit(texts, batch_size=8, epochs=2)
    lm.generate(["the cat", "the dog lay"], max_length=12, sampler="greedy")
    ```
    """

    backbone_cls = GPT
    preprocessor_cls = CausalLMPreprocessor

    def __init__(
        self,
        backbone: keras.Model,
        tokenizer: keras.layers.Layer | None = None,
        preprocessor: keras.layers.Layer | None = None,
        sequence_length: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        monitor: str | None = None,
        seed: int | None = None,
        packing: bool = True,
        bucketing: bool | int | Sequence[int] = True,
        **kwargs,
    ):
        bucketing = check_bucketing(bucketing)
        if preprocessor is None and tokenizer is not None:
            sequence_length = check_sequence_length(sequence_length, backbone, minimum=2)
            preprocessor = CausalLMPreprocessor(tokenizer, sequence_length=sequence_length)
        # While a `.keras` file loads, the tokenizer exists before its vocabulary asset is
        # restored; the sizes matched when the model was saved.
        if preprocessor is not None and getattr(preprocessor.tokenizer, "vocabulary", None) is not None:
            tokenizer_size = preprocessor.tokenizer.vocabulary_size()
            if tokenizer_size != backbone.vocabulary_size:
                raise ValueError(
                    f"The tokenizer has {tokenizer_size} tokens but the backbone's "
                    f"`vocabulary_size` is {backbone.vocabulary_size}; they must match."
                )
        super().__init__(backbone=backbone, preprocessor=preprocessor, **kwargs)
        # A property of this training run, not of the model: not in `get_config`.
        self.set_run_options(checkpoint_dir, monitor, seed, bucketing=bucketing)
        self.packing = check_packing(packing)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="greedy",
        **kwargs,
    ):
        """Compiles with pretraining defaults: AdamW (lr 6e-4, weight decay 0.1 on kernels and
        embeddings, clip-norm 1), cross-entropy averaged over real (non-padding) tokens, perplexity
        and accuracy; `sampler` is the default of `generate()`.

        Every argument of `keras.Model.compile` may be passed to override a default.
        """
        if optimizer == "auto":
            optimizer = make_adamw(6e-4, weight_decay=0.1, clipnorm=1.0)
        if loss == "auto":
            # Mean over weighted tokens: the default reduction would also count padding slots.
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight"
            )
        if weighted_metrics == "auto":
            weighted_metrics = [
                keras_hub.metrics.Perplexity(from_logits=True, name="perplexity"),
                keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            ]
        kwargs = {**default_compile_kwargs(), **kwargs}
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            sampler=make_sampler(sampler) if isinstance(sampler, str) else sampler,
            **kwargs,
        )

    # === Training on in-memory text ===
    # keras-hub maps the preprocessor over a tf.data pipeline, which traces its byte-pair
    # tokenizer into ~3,800 graph ops: 10-20 s per `fit`/`evaluate` call on 2 CPU cores before a
    # single step runs. Tokenizing an in-memory list eagerly takes milliseconds, so lists of
    # strings (and prompt/response dicts) are tokenized up front and handed to Keras as arrays,
    # which Keras also shuffles every epoch. `tf.data.Dataset`s still go through keras-hub.

    def check_inputs(self, x, y=None, sample_weight=None, *, with_targets=False):
        return check_corpus(x), y, sample_weight

    def make_batches(self, x, y=None, sample_weight=None, batch_size=None, *, shuffle=False, augment=False):
        # Only training batches (`augment=True`, i.e. `fit`'s own data) of a plain corpus are
        # packed; prompt/response dicts keep one example per row (response-only loss).
        if (augment and self.packing and self.preprocessor is not None and y is None and sample_weight is None
                and is_text_corpus(x)):
            return self._packed_batches(x, batch_size, shuffle)
        if self.preprocessor is not None and _is_text(x) and y is None and sample_weight is None:
            import tensorflow as tf

            x, y, sample_weight = self.tokenize(x)
            if self.bucketing:
                return bucketed_arrays(x, y, sample_weight, batch_size or 32, self.bucketing,
                                       self.preprocessor.sequence_length, shuffle=shuffle, seed=self.seed)
            dataset = shuffled_batches(x, y, sample_weight, batch_size, seed=self.seed, shuffle=shuffle)
            return dataset.prefetch(tf.data.AUTOTUNE)
        return super().make_batches(x, y, sample_weight, batch_size, shuffle=shuffle, augment=augment)

    def _packed_batches(self, texts, batch_size, shuffle):
        import tensorflow as tf

        tokenizer, length = self.preprocessor.tokenizer, self.preprocessor.sequence_length
        documents, num_tokens = shuffled_documents(tokenizer, texts, seed=self.seed, shuffle=shuffle, separator=1)
        # The last, partial block is kept (its padding weighted 0) so no text of a small corpus
        # is dropped; it is one row of many on a real corpus.
        blocks = pack_for_causal_lm(documents, length, tokenizer.end_token_id, tokenizer.pad_token_id,
                                    drop_remainder=False)
        blocks = shuffled_rows(blocks, num_tokens, length + 1, seed=self.seed, shuffle=shuffle)
        return blocks.batch(batch_size or 32).prefetch(tf.data.AUTOTUNE)

    def tokenize(self, texts, chunk_size: int = 1024) -> tuple[dict, np.ndarray, np.ndarray]:
        """Runs the preprocessor eagerly: texts (or a prompt/response dict) → `(x, y, sample_weight)`
        NumPy arrays ready for `keras.Model.fit`."""
        if isinstance(texts, dict):
            count = len(texts["prompts"])
            chunks = [{k: list(v[i : i + chunk_size]) for k, v in texts.items()} for i in range(0, count, chunk_size)]
        else:
            texts = check_texts(texts, "x")
            chunks = [texts[i : i + chunk_size] for i in range(0, len(texts), chunk_size)]
        parts = [keras.tree.map_structure(keras.ops.convert_to_numpy, self.preprocessor(c)) for c in chunks]
        x = {key: np.concatenate([p[0][key] for p in parts]) for key in parts[0][0]}
        x["padding_mask"] = x["padding_mask"].astype("int32")
        y = np.concatenate([p[1] for p in parts])
        weights = np.concatenate([p[2] for p in parts]).astype("float32")
        return x, y, weights

    def perplexity(self, texts: Sequence[str], batch_size: int = 32) -> float:
        """exp(mean next-token cross-entropy) over all real tokens of `texts`.

        Example:
        ```python
        lm.perplexity(["the cat sat on the mat"])
        ```
        """
        texts = check_texts(texts, "texts")
        if not self.compiled:
            self.compile()
        results = self.evaluate(texts, batch_size=batch_size, verbose=0, return_dict=True)
        return float(results["perplexity"])

    def generate(
        self,
        inputs,
        max_length: int | None = None,
        sampler=None,
        stop_token_ids="auto",
        strip_prompt: bool = False,
        **sampler_options,
    ):
        """Continues each prompt until `max_length` tokens or a stop token.

        Args:
            inputs: str or list of str (or, without a preprocessor, a dict of `token_ids` /
                `padding_mask`). Prompts may differ in length.
            max_length: int. Total length in tokens (start token + prompt + continuation); must
                exceed the longest prompt. Defaults to the preprocessor's `sequence_length`.
            sampler: None (the compiled one, greedy by default), a name in `"greedy"`,
                `"top_k"`, `"top_p"`, `"random"` (temperature sampling), `"beam"`, or a
                `keras_hub.samplers.Sampler`.
            stop_token_ids: `"auto"` (the end token), None, or a list of token ids or token
                strings that end a sequence.
            strip_prompt: bool. Return only the continuation.
            **sampler_options: `k`, `p`, `temperature`, `num_beams`, `seed` for a named sampler.

        Returns:
            str or list of str, the prompt followed by its continuation.

        Example:
        ```python
        lm.generate(["the cat", "a"], max_length=20, sampler="top_p", p=0.9, temperature=0.8)
        ```
        """
        if sampler is not None or sampler_options:
            sampler = make_sampler(sampler or "greedy", **sampler_options)
            if _sampler_key(sampler) != _sampler_key(getattr(self, "sampler", None)):
                self.sampler = sampler
                self.generate_function = None  # recompile with the new sampler
        if self.preprocessor is not None:
            single = isinstance(inputs, str)
            prompts = check_texts(inputs, "inputs")
            max_length = self._check_max_length(prompts, max_length)
            stop_token_ids = self._stop_ids(stop_token_ids)
            outputs = super().generate(prompts, max_length=max_length, stop_token_ids=stop_token_ids,
                                       strip_prompt=strip_prompt)
            return outputs[0] if single else outputs
        return super().generate(inputs, max_length=max_length, stop_token_ids=stop_token_ids,
                                strip_prompt=strip_prompt)

    # === Argument checks ===

    def _check_max_length(self, prompts: list[str], max_length) -> int:
        max_length = self.preprocessor.sequence_length if max_length is None else max_length
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ValueError(f"`max_length` must be an integer >= 2, received max_length={max_length!r}.")
        if max_length > self.backbone.max_sequence_length:
            raise ValueError(
                f"`max_length`={max_length} exceeds the backbone's max_sequence_length="
                f"{self.backbone.max_sequence_length}."
            )
        tokenizer = self.preprocessor.tokenizer
        longest = max(len(_as_list(tokenizer(p))) for p in prompts) + int(self.preprocessor.add_start_token)
        if max_length <= longest:
            raise ValueError(
                f"`max_length` must be larger than the longest prompt ({longest} tokens with the "
                f"start token) to leave room to generate, received max_length={max_length}."
            )
        return max_length

    def _stop_ids(self, stop_token_ids):
        if stop_token_ids is None or isinstance(stop_token_ids, str) and stop_token_ids == "auto":
            return stop_token_ids
        tokenizer = self.preprocessor.tokenizer
        ids = []
        for token in stop_token_ids:
            if isinstance(token, str):
                if token not in tokenizer.get_vocabulary():
                    raise ValueError(f"`stop_token_ids` contains {token!r}, which is not in the vocabulary.")
                token = tokenizer.token_to_id(token)
            if not 0 <= int(token) < self.backbone.vocabulary_size:
                raise ValueError(f"`stop_token_ids` contains {token!r}, outside [0, vocabulary_size).")
            ids.append(int(token))
        return tuple(ids)


def make_sampler(name, **options) -> keras_hub.samplers.Sampler:
    """Builds one of keras-hub's samplers by name, checking its options.

    Args:
        name: str or `keras_hub.samplers.Sampler`. `"greedy"`, `"top_k"` (option `k`), `"top_p"`
            (option `p`, in (0, 1], and optional `k`), `"random"` (plain temperature sampling) or
            `"beam"` (option `num_beams`). Every stochastic sampler takes `temperature` and `seed`.

    Example:
    ```python
    sampler = make_sampler("top_k", k=10, temperature=0.7, seed=0)
    ```
    """
    if isinstance(name, keras_hub.samplers.Sampler):
        if options:
            raise ValueError(f"Sampler options {sorted(options)} can only go with a sampler name.")
        return name
    if name not in SAMPLERS:
        raise ValueError(f"`sampler` must be one of {list(SAMPLERS)} or a keras_hub Sampler, received {name!r}.")
    allowed = {
        "greedy": set(),
        "top_k": {"k", "temperature", "seed"},
        "top_p": {"p", "k", "temperature", "seed"},
        "random": {"temperature", "seed"},
        "beam": {"num_beams"},
    }[name]
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(f"Sampler {name!r} takes options {sorted(allowed)}, received {sorted(unknown)}.")
    temperature = options.get("temperature", 1.0)
    if not isinstance(temperature, (int, float)) or temperature <= 0:
        raise ValueError(f"`temperature` must be a positive number, received temperature={temperature!r}.")
    if "k" in options or name == "top_k":
        k = options.get("k", 5)
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"`top_k` (option `k`) must be an integer >= 1, received k={k!r}.")
    if name == "top_p":
        p = options.get("p", 0.9)
        if not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
            raise ValueError(f"`top_p` (option `p`) must be in (0, 1], received p={p!r}.")
    if name == "beam":
        num_beams = options.get("num_beams", 4)
        if not isinstance(num_beams, int) or num_beams < 1:
            raise ValueError(f"`num_beams` must be an integer >= 1, received num_beams={num_beams!r}.")
    classes = {
        "greedy": keras_hub.samplers.GreedySampler,
        "top_k": keras_hub.samplers.TopKSampler,
        "top_p": keras_hub.samplers.TopPSampler,
        "random": keras_hub.samplers.RandomSampler,
        "beam": keras_hub.samplers.BeamSampler,
    }
    return classes[name](**options)


def _sampler_key(sampler):
    if sampler is None:
        return None
    return type(sampler).__name__, sorted(sampler.get_config().items(), key=str)


def _is_text(x) -> bool:
    if isinstance(x, dict):
        return set(x) == {"prompts", "responses"} and _is_text(list(x["prompts"]))
    if isinstance(x, np.ndarray):
        x = x.tolist()
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(isinstance(t, str) for t in x)


def _as_list(ids) -> list:
    if hasattr(ids, "numpy"):
        ids = ids.numpy()
    return list(np.asarray(ids).reshape(-1)) if not isinstance(ids, list) else ids
