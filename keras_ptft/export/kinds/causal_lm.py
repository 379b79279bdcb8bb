"""Export of a `keras_ptft.tasks.CausalLM`: greedy generation inside SavedModel and TFLite graphs.

keras-hub's `GPT2CausalLM.generate` cannot be converted to TFLite (keras-hub issue #1090): it
wraps string preprocessing, ragged tensors and a sampler compiled per backend around the model.
We take the second of the two usual routes. Rather than prefill + decode signatures with the
key/value cache as state between calls, each artifact holds ONE fixed-length greedy loop
(`tf.while_loop` over `CausalLM.call_with_cache`, the same cached step keras-hub decodes with):
prefill the cache on the whole packed prompt, then decode one token per iteration up to
`max_length`. The cache lives and dies inside one call, so an app needs no state handling and one
signature does everything, the loop still costs O(1) model positions per new token, and the
output is keras-hub's greedy output bit for bit (tests/export/test_causal_lm_export.py). The price:
`max_length` is fixed at export, and the loop always runs to `max_length` (tokens after the end
token are masked out in the `padding_mask` output, exactly as keras-hub's stop-token handling does).

Artifacts:
- SavedModel `NAME/1/`: signatures `generate` (= `serving_default`): `prompts` string[batch] →
  `texts` (prompt + continuation), `token_ids`, `padding_mask`; and `generate_tokens`:
  `token_ids` / `padding_mask` int32[batch, max_length] → `token_ids`, `padding_mask`.
- TFLite `tflite/model.tflite`: the `generate_tokens` graph (byte-level BPE runs with regular
  expressions that TFLite cannot execute, so the app tokenizes with `vocabulary.json` and
  `merges.txt`).
"""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature
from keras_ptft.export.kinds.common import token_ids
from keras_ptft.validation import check_texts


def greedy_generate(lm, token_ids: tf.Tensor, padding_mask: tf.Tensor) -> dict[str, tf.Tensor]:
    """Greedy decoding of packed prompts up to their full width, as a graph TFLite can convert.

    Equal to keras-hub's `generate_step` with a `GreedySampler`: decoding starts at the shortest
    prompt and a longer prompt keeps its own tokens where `padding_mask` is 1.

    Args:
        lm: a `keras_ptft.tasks.CausalLM`.
        token_ids: int32 tensor `(batch, max_length)`, packed prompts (start token first).
        padding_mask: int32 tensor `(batch, max_length)`, 1 on prompt tokens.

    Returns:
        `token_ids` (prompts + continuations) and `padding_mask` (1 up to and including the first
        generated end token), int32 `(batch, max_length)`.
    """
    backbone = lm.backbone
    batch = tf.shape(token_ids)[0]
    length = token_ids.shape[1]
    head_dim = backbone.hidden_dim // backbone.num_heads
    cache = tf.zeros([batch, backbone.num_layers, 2, length, backbone.num_heads, head_dim], lm.compute_dtype)
    _, _, cache = lm.call_with_cache(token_ids, cache, 0)  # prefill (keras-hub's `_build_cache`)
    is_prompt = tf.cast(padding_mask, tf.bool)
    positions = tf.range(length, dtype=tf.int32)[None, :]

    def step(index, token_ids, cache):
        previous = tf.slice(token_ids, [0, index - 1], [batch, 1])
        logits, _, cache = lm.call_with_cache(previous, cache, index - 1)
        next_token = tf.argmax(logits[:, 0, :], axis=-1, output_type=tf.int32)
        # A dense `where` rather than a scatter: it lowers to plain TFLite builtins.
        write = tf.logical_and(positions == index, tf.logical_not(is_prompt))
        return index + 1, tf.where(write, next_token[:, None], token_ids), cache

    start = tf.reduce_min(tf.reduce_sum(tf.cast(padding_mask, tf.int32), axis=-1))
    _, token_ids, _ = tf.while_loop(lambda index, *_: index < length, step, (start, token_ids, cache))
    # Keep everything up to and including the first generated end token (keras-hub's rule).
    is_end = tf.logical_and(token_ids == lm.preprocessor.tokenizer.end_token_id, tf.logical_not(is_prompt))
    is_end = tf.cast(is_end, tf.int32)
    after_end = tf.cumsum(is_end, axis=-1) - is_end
    return {"token_ids": token_ids, "padding_mask": tf.cast(after_end == 0, tf.int32)}


class CausalLMRunner(KindRunner):
    """Runs a causal-LM export (SavedModel or TFLite) on prompt strings."""

    input_fields = ("prompts", "prompt")
    option_fields = predict_options = ("max_length",)

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        self.max_length = manifest["generation"]["max_length"]
        self._preprocessor = None
        if format == "saved_model":
            self.signature = load_signature(artifact, "generate")  # keras-hub's BPE uses tensorflow-text's regex ops
            return
        self.runner = tflite.TFLiteRunner(artifact)

    @property
    def preprocessor(self):
        """The export's tokenizer and packer, rebuilt from `vocabulary.json` and `merges.txt`."""
        if self._preprocessor is None:
            from keras_ptft.data.bpe import bpe_tokenizer
            from keras_ptft.data.causal_lm_preprocessing import CausalLMPreprocessor

            with open(os.path.join(self.path, self.manifest["vocabulary_file"]), encoding="utf-8") as handle:
                vocabulary = json.load(handle)
            with open(os.path.join(self.path, self.manifest["merges_file"]), encoding="utf-8") as handle:
                merges = [line for line in handle.read().split("\n") if line]
            self._preprocessor = CausalLMPreprocessor(
                bpe_tokenizer(vocabulary, merges), sequence_length=self.max_length,
                add_start_token=self.manifest["preprocessing"]["add_start_token"])
        return self._preprocessor

    @property
    def tokenizer(self):
        return self.preprocessor.tokenizer

    def predict(self, prompts, max_length: int | None = None) -> dict:
        """Greedy continuations; `max_length` (at most the export's) stops them earlier.

        The artifact always decodes to the export's `max_length`; greedy decoding is causal, so
        its first `max_length` tokens are exactly what a shorter generation gives.
        """
        prompts = check_texts(prompts, "prompts")
        if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool)
                                       or not 2 <= max_length <= self.max_length):
            raise ValueError(f"`max_length` must be an integer in [2, {self.max_length}] (this export generates "
                             f"up to {self.max_length} tokens), received {max_length!r}.")
        if self.format == "saved_model":
            outputs = self.signature(prompts=tf.constant(prompts, tf.string))
            outputs = {"texts": [text.decode("utf-8", errors="replace") for text in outputs["texts"].numpy()],
                       "token_ids": outputs["token_ids"].numpy(), "padding_mask": outputs["padding_mask"].numpy()}
        else:
            features = self._pack(prompts, self.max_length)
            outputs = self.runner(**features)
            outputs = {"texts": self._texts(outputs["token_ids"], outputs["padding_mask"]),
                       "token_ids": outputs["token_ids"], "padding_mask": outputs["padding_mask"]}
        if max_length is None or max_length == self.max_length:
            return outputs
        self._pack(prompts, max_length)  # only checks that every prompt leaves room
        token_ids, padding_mask = outputs["token_ids"][:, :max_length], outputs["padding_mask"][:, :max_length]
        return {"texts": self._texts(token_ids, padding_mask), "token_ids": token_ids, "padding_mask": padding_mask}

    def _pack(self, prompts, max_length: int) -> dict:
        features = self.preprocessor.generate_preprocess(prompts, sequence_length=self.max_length)
        features = {name: np.asarray(value, np.int32) for name, value in features.items()}
        if (features["padding_mask"].sum(-1) >= max_length).any():
            raise ValueError(f"A prompt fills all max_length={max_length} tokens; "
                             "shorten it to leave room to generate.")
        return features

    def _texts(self, token_ids, padding_mask) -> list[str]:
        keep = padding_mask.astype(bool)
        for special in self.tokenizer.special_token_ids:
            keep &= token_ids != special
        texts = [self.tokenizer.detokenize(row[mask].tolist()) for row, mask in zip(token_ids, keep)]
        return [text if isinstance(text, str) else np.asarray(text).item().decode("utf-8", "replace")
                for text in texts]

    @classmethod
    def check_options(cls, options, manifest) -> None:
        if "max_length" in options:
            limit = manifest["generation"]["max_length"]
            value = options["max_length"]
            if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= limit:
                raise ValueError(f'"max_length" must be an integer from 2 to {limit} (this export generates up to '
                                 f"{limit} tokens), received {value!r}")

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{"prompt": prompt, "text": text} for prompt, text in zip(inputs, outputs["texts"])]

    @classmethod
    def health(cls, manifest) -> dict:
        return {"max_length": manifest["generation"]["max_length"]}


@register_kind
class CausalLMKind(ExportKind):
    """`keras_ptft.tasks.CausalLM`: prompts → greedy continuations up to `max_length` tokens.

    Args:
        model: the `CausalLM`.
        max_length: int or None. Total tokens per sequence (start token + prompt +
            continuation), fixed at export; None uses the preprocessor's `sequence_length`.

    Example:
    ```python
    kp.export.export(lm, "saved_models/writer", formats=["saved_model", "tflite"], max_length=64)
    kp.export.Predictor("saved_models/writer").predict(["the cat"])["texts"]
    ```
    """

    name = "causal_lm"
    formats = default_formats = ("saved_model", "tflite")
    runner = CausalLMRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.tasks.causal_lm import CausalLM

        return isinstance(model, CausalLM)

    def __init__(self, model, max_length: int | None = None):
        super().__init__(model)
        if model.preprocessor is None:
            raise ValueError("`model` has no preprocessor; a causal LM needs its tokenizer to export "
                             "a prompt-string signature.")
        self.preprocessor = model.preprocessor
        self.tokenizer = model.preprocessor.tokenizer
        max_length = self.preprocessor.sequence_length if max_length is None else max_length
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not \
                2 <= max_length <= model.backbone.max_sequence_length:
            raise ValueError(f"`max_length` must be an integer in [2, backbone.max_sequence_length="
                             f"{model.backbone.max_sequence_length}], received max_length={max_length!r}.")
        self.max_length = max_length

    # === Inputs and the generation graph ===

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        return {name: tf.TensorSpec([None, self.max_length], tf.int32, name=name)
                for name in ("token_ids", "padding_mask")}

    def raw_input_spec(self) -> tf.TensorSpec:
        return tf.TensorSpec([None], tf.string, name="prompts")

    def preprocess(self, prompts):
        features = self.preprocessor.generate_preprocess(prompts, sequence_length=self.max_length)
        return {name: tf.cast(value, tf.int32) for name, value in features.items()}

    def generate(self, features) -> dict[str, tf.Tensor]:
        return greedy_generate(self.model, features["token_ids"], features["padding_mask"])

    def detokenize(self, outputs) -> tf.Tensor:
        keep = tf.cast(outputs["padding_mask"], tf.bool)
        for special in self.tokenizer.special_token_ids:
            keep = tf.logical_and(keep, outputs["token_ids"] != special)
        texts = self.tokenizer.detokenize(tf.ragged.boolean_mask(outputs["token_ids"], keep))
        return tf.reshape(texts, [-1])

    # === Artifacts ===

    def check_data(self, data, argument: str):
        return check_texts(data, argument)

    def probe_data(self) -> list[str]:
        # Prompts that leave room to generate at this `max_length`.
        prompts = ["", "the", "a fine, moving film", "Un café crème", "这部电影", "it's not bad... actually"]
        return [prompt for prompt in prompts
                if len(token_ids(self.tokenizer, prompt)) + int(self.preprocessor.add_start_token) < self.max_length]

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "saved_model":
            return self._write_saved_model(target)
        return self._write_tflite(target, quantization, representative_data)

    def _write_saved_model(self, folder: str) -> dict:
        if not self.preprocessor.built:  # a model never fit nor asked to generate
            self.preprocessor.build(None)
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        archive.track(self.preprocessor)

        def generate(prompts):
            outputs = self.generate(self.preprocess(prompts))
            return {**outputs, "texts": self.detokenize(outputs)}

        def generate_tokens(token_ids, padding_mask):
            return self.generate({"token_ids": token_ids, "padding_mask": padding_mask})

        specs = self.token_input_specs()
        # Registered first, `generate` is also written as `serving_default` (Keras aliases the
        # first endpoint), without a second trace of the BPE tokenizer (~40 s on 2 cores).
        archive.add_endpoint("generate", generate, input_signature=[self.raw_input_spec()])
        archive.add_endpoint("generate_tokens", generate_tokens,
                             input_signature=[specs["token_ids"], specs["padding_mask"]])
        archive.write_out(folder, verbose=False)
        return {"signatures": {"generate": "prompts", "serving_default": "prompts",
                               "generate_tokens": ["token_ids", "padding_mask"]},
                "max_length": self.max_length}

    def _write_tflite(self, file: str, quantization, representative_data) -> dict:
        specs = self.token_input_specs()
        function = tf.function(
            lambda token_ids, padding_mask: self.generate({"token_ids": token_ids, "padding_mask": padding_mask}),
            input_signature=[specs["token_ids"], specs["padding_mask"]], autograph=False)

        def calibration():
            for prompt in list(representative_data)[: tflite.CALIBRATION_EXAMPLES]:
                features = self.preprocess(tf.constant([prompt]))
                yield {name: np.asarray(value, np.int32) for name, value in features.items()}

        try:
            # The backbone, not the task: the task also tracks the tokenizer's lookup tables,
            # whose initializers the converter cannot lower (and the graph does not use).
            blob = tflite.convert(function, self.model.backbone, quantization,
                                  calibration if representative_data is not None else None)
        except Exception as error:  # the converter raises bare Exceptions (ConverterError)
            raise ValueError(f"TFLite conversion of the causal LM failed with quantization={quantization!r}: "
                             f"{str(error)[:500]}") from None
        tflite.write_tflite(file, blob)
        return {"signature": "serving_default", "quantization": quantization, "max_length": self.max_length,
                "inputs": {name: f"int32[batch, {self.max_length}]" for name in specs},
                "outputs": {"token_ids": f"int32[batch, {self.max_length}]",
                            "padding_mask": f"int32[batch, {self.max_length}]"},
                "tokenizer_note": "Pack [start] + BPE(prompt) padded to max_length with vocabulary.json and "
                                  "merges.txt (keras_ptft.data.bpe_tokenizer); padding_mask 1 on prompt tokens."}

    def manifest(self) -> dict:
        tokenizer = self.tokenizer
        return {
            "vocabulary_file": "vocabulary.json",
            "merges_file": "merges.txt",
            "generation": {"sampler": "greedy", "max_length": self.max_length,
                           "stop": "end token (kept; later tokens masked)"},
            "preprocessing": {
                "tokenizer": "byte-level BPE",
                "add_start_token": bool(self.preprocessor.add_start_token),
                "special_tokens": {"start": int(tokenizer.start_token_id), "end": int(tokenizer.end_token_id),
                                   "pad": int(tokenizer.pad_token_id)},
                "packing": "[start] prompt tokens [pad]... to max_length; padding_mask 1 on prompt tokens",
            },
            "raw_input": {"prompts": "string[batch]"},
            "outputs": {"texts": "string[batch]", "token_ids": f"int32[batch, {self.max_length}]",
                        "padding_mask": f"int32[batch, {self.max_length}]"},
        }

    def files(self) -> dict[str, str]:
        return {"vocabulary.json": json.dumps(self.tokenizer.vocabulary, ensure_ascii=False),
                "merges.txt": "\n".join(self.tokenizer.merges) + "\n"}

    # === Parity ===

    def reference(self, prompts) -> dict[str, np.ndarray]:
        """keras-hub's own greedy `generate_step` on the packed prompts (no stop: every position)."""
        import keras_hub

        features = self.preprocess(tf.constant(list(prompts)))
        # The artifacts decode greedily whatever sampler the model was compiled with.
        compiled_sampler = getattr(self.model, "sampler", None)
        self.model.sampler = keras_hub.samplers.GreedySampler()
        try:
            outputs = self.model.generate_step(features, stop_token_ids=None)
        finally:
            self.model.sampler = compiled_sampler
        return {"token_ids": np.asarray(outputs["token_ids"]), "prompt_mask": np.asarray(features["padding_mask"])}

    def bind_manifest(self, manifest) -> None:
        self.max_length = manifest["generation"]["max_length"]

    def parity(self, predict, data, batch_size) -> dict:
        agree = total = same = 0
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            reference = self.reference(batch)
            exported = predict(batch)["token_ids"]
            generated = reference["prompt_mask"] == 0
            equal = (exported == reference["token_ids"]) | ~generated
            agree += int(((exported == reference["token_ids"]) & generated).sum())
            total += int(generated.sum())
            same += int(equal.all(axis=-1).sum())
        return {"token_agreement": agree / max(total, 1), "sequence_agreement": same / len(data),
                "examples": len(data)}

    def parity_failure(self, name, entry, figures, tolerance, min_label_agreement) -> str | None:
        # A float artifact runs the same float32 arithmetic, so every greedy token must agree; a
        # quantized one may flip near-ties and is held to `min_label_agreement` per token.
        needed = min_label_agreement if entry.get("quantization") else 1.0
        if figures["token_agreement"] < needed:
            return f"{name}: greedy token agreement {figures['token_agreement']:.4f} < {needed}"
        return None
