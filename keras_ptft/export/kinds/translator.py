"""Export of a `keras_ptft.tasks.Translator`: source strings → translations, decoding in the graph.

As for the causal LM (`causal_lm.py`), keras-hub's `generate` (string preprocessing, ragged
tensors, a loop compiled per backend) is not what a graph artifact can hold. Each artifact holds
ONE fixed-length greedy loop instead: the encoder runs once, the cross-attention keys/values are
cached once, and a `tf.while_loop` over `Translator.call_decoder_with_cache` (the cached step
keras-hub's BART loop decodes with) writes one token per iteration up to `max_length`. The cache
lives and dies inside one call, so an app keeps no state. The loop always runs to `max_length`;
tokens after the first end token are masked out in `padding_mask`, which is what keras-hub's
early stop gives. Beam search needs no new code: keras-hub's `generate_step` with a
`BeamSampler` traces into the SavedModel as it is (`num_beams` fixed at export).

Artifacts:
- SavedModel `NAME/1/`: `translate` (= `serving_default`): `texts` string[batch] →
  `translations`, `token_ids`, `padding_mask` (greedy); `translate_beam`: the same with beam
  search; `translate_tokens`: `encoder_token_ids` / `encoder_padding_mask` int32[batch,
  encoder_length] → `token_ids`, `padding_mask` (greedy).
- TFLite `tflite/model.tflite`: the `translate_tokens` graph. The SentencePiece tokenizer stays
  outside: keras-hub's tokenizer runs tensorflow-text's `SentencepieceOp`, which is not among the
  TFLite ops tensorflow-text registers, so the app tokenizes with the exported
  `sentencepiece.model` (any SentencePiece runtime) and the manifest's packing rule.
- No ONNX: tf2onnx would have to convert the `while_loop` whose body updates the key/value cache
  with `XlaDynamicUpdateSlice` (Keras' `slice_update` on TensorFlow), an op tf2onnx has no
  handler for; a step-by-step ONNX decoder with the cache as explicit inputs and outputs is a
  different artifact, left for later.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature
from keras_ptft.validation import check_texts

TOKENIZER_FILE = "sentencepiece.model"
SAMPLERS = ("greedy", "beam")
# Sources to compare on when the caller gives none: short and long (truncated), both scripts.
PROBE_TEXTS = ["I am here.", "Where is the station?", "这是什么？", "Un café crème, s'il vous plaît.",
               "Tom didn't want to go to school today because it was raining.", " ".join(["long"] * 200)]


def greedy_translate(translator, encoder_token_ids: tf.Tensor, encoder_padding_mask: tf.Tensor,
                     max_length: int) -> dict[str, tf.Tensor]:
    """Greedy decoding to a fixed `max_length`, as a graph TFLite can convert.

    Equal to keras-hub's BART `generate_step` with a `GreedySampler` from the `<s>` prompt: the
    cache is seeded on the whole prompt row, then each step feeds the previous token.

    Args:
        translator: a `keras_ptft.tasks.Translator`.
        encoder_token_ids: int32 `(batch, encoder_length)`, packed sources (`<s> … </s>`).
        encoder_padding_mask: int32 `(batch, encoder_length)`, 1 on source tokens.
        max_length: int. Decoder length, the start token included.

    Returns:
        `token_ids` (`<s>` then the translation) and `padding_mask` (1 up to and including the
        first end token), int32 `(batch, max_length)`.
    """
    backbone, tokenizer = translator.backbone, translator.preprocessor.tokenizer
    batch = tf.shape(encoder_token_ids)[0]
    token_ids = tf.concat([tf.fill([batch, 1], tf.constant(tokenizer.start_token_id, tf.int32)),
                           tf.fill([batch, max_length - 1], tf.constant(tokenizer.pad_token_id, tf.int32))], 1)
    encoder_states = translator.call_encoder(encoder_token_ids, encoder_padding_mask)
    head_dim = backbone.hidden_dim // backbone.num_heads
    shape = [batch, backbone.num_layers, 2, max_length, backbone.num_heads, head_dim]
    self_cache = tf.zeros(shape, translator.compute_dtype)
    shape[3] = tf.shape(encoder_token_ids)[1]
    cross_cache = tf.zeros(shape, translator.compute_dtype)
    # Seeding as keras-hub's `_build_cache` does: the whole prompt row at index 0.
    _, _, self_cache, cross_cache = translator.call_decoder_with_cache(
        encoder_states, encoder_padding_mask, token_ids, self_cache, 0, cross_cache, 0)
    positions = tf.range(max_length, dtype=tf.int32)[None, :]

    def step(index, token_ids, self_cache):
        previous = tf.slice(token_ids, [0, index - 1], [batch, 1])
        logits, _, self_cache, _ = translator.call_decoder_with_cache(
            encoder_states, encoder_padding_mask, previous, self_cache, index - 1, cross_cache, None)
        next_token = tf.argmax(logits[:, 0, :], axis=-1, output_type=tf.int32)
        # A dense `where` rather than a scatter: it lowers to plain TFLite builtins.
        return index + 1, tf.where(positions == index, next_token[:, None], token_ids), self_cache

    _, token_ids, _ = tf.while_loop(lambda index, *_: index < max_length, step,
                                    (tf.constant(1, tf.int32), token_ids, self_cache))
    is_end = tf.cast(tf.logical_and(token_ids == tokenizer.end_token_id, positions > 0), tf.int32)
    after_end = tf.cumsum(is_end, axis=-1) - is_end
    return {"token_ids": token_ids, "padding_mask": tf.cast(after_end == 0, tf.int32)}


class TranslatorRunner(KindRunner):
    """Runs a translator export (SavedModel, or TFLite with the tokenizer in Python) on sources."""

    option_fields = predict_options = ("sampler",)

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        self.max_length = manifest["generation"]["max_length"]
        self.samplers = manifest["artifacts"][format].get("samplers", ["greedy"])
        if format == "saved_model":
            self.signatures = {"greedy": load_signature(artifact, "translate")}
            if "beam" in self.samplers:
                self.signatures["beam"] = load_signature(artifact, "translate_beam")
            return
        self.runner = tflite.TFLiteRunner(artifact)
        self._preprocessor = None

    @property
    def preprocessor(self):
        """The export's tokenizer and packer, rebuilt from `sentencepiece.model` (TFLite only)."""
        if self._preprocessor is None:
            import os

            from keras_ptft.data.seq2seq_preprocessing import Seq2SeqPreprocessor, Seq2SeqTokenizer

            with open(os.path.join(self.path, self.manifest["tokenizer_file"]), "rb") as handle:
                tokenizer = Seq2SeqTokenizer(proto=handle.read())
            self._preprocessor = Seq2SeqPreprocessor(
                tokenizer, encoder_sequence_length=self.manifest["preprocessing"]["encoder_sequence_length"],
                decoder_sequence_length=self.max_length)
        return self._preprocessor

    def predict(self, texts, sampler: str = "greedy") -> dict:
        """Translations of `texts` (str or list of non-blank str), greedy or (SavedModel) beam."""
        texts = check_texts(texts, "texts", allow_blank=False)
        self.check_options({"sampler": sampler}, self.manifest, self.format)
        if self.format == "saved_model":
            outputs = self.signatures[sampler](texts=tf.constant(texts, tf.string))
            return {"translations": [t.decode("utf-8", errors="replace") for t in outputs["translations"].numpy()],
                    "token_ids": outputs["token_ids"].numpy(), "padding_mask": outputs["padding_mask"].numpy()}
        features = self.preprocessor.generate_preprocess(texts)
        outputs = self.runner(encoder_token_ids=np.asarray(features["encoder_token_ids"], np.int32),
                              encoder_padding_mask=np.asarray(features["encoder_padding_mask"], np.int32))
        tokenizer = self.preprocessor.tokenizer
        keep = outputs["padding_mask"].astype(bool)
        for special in tokenizer.special_token_ids:
            keep &= outputs["token_ids"] != special
        translations = [tokenizer.detokenize(row[mask].tolist()) if mask.any() else ""
                        for row, mask in zip(outputs["token_ids"], keep)]
        translations = [t if isinstance(t, str) else np.asarray(t).item().decode("utf-8", "replace")
                        for t in translations]
        return {"translations": translations, **outputs}

    @classmethod
    def check_options(cls, options, manifest, format=None) -> None:
        if "sampler" not in options:
            return
        formats = [format] if format else list(manifest["artifacts"])
        offered = sorted({s for name in formats for s in manifest["artifacts"][name].get("samplers", ["greedy"])})
        if options["sampler"] not in offered:
            raise ValueError(f'"sampler" must be one of {offered} for this export, received {options["sampler"]!r}')

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{"text": text, "translation": translation}
                for text, translation in zip(inputs, outputs["translations"])]

    @classmethod
    def health(cls, manifest) -> dict:
        return {"max_length": manifest["generation"]["max_length"]}


@register_kind
class TranslatorKind(ExportKind):
    """`keras_ptft.tasks.Translator`: source strings → translations of up to `max_length` tokens.

    Args:
        model: the `Translator`.
        max_length: int or None. Decoder length in tokens (start token included), fixed at
            export; None uses the preprocessor's `decoder_sequence_length`.
        num_beams: int. Beam width of the SavedModel's `translate_beam` signature (>= 2), or 1
            for no beam signature.

    Example:
    ```python
    kp.export.export(translator, "saved_models/en_zh", formats=["saved_model", "tflite"], max_length=32)
    kp.export.Predictor("saved_models/en_zh").predict(["I am here."])["translations"]
    ```
    """

    name = "translator"
    formats = default_formats = ("saved_model", "tflite")
    runner = TranslatorRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.tasks.translator import Translator

        return isinstance(model, Translator)

    def __init__(self, model, max_length: int | None = None, num_beams: int = 4):
        super().__init__(model)
        if model.preprocessor is None:
            raise ValueError("`model` has no preprocessor; a translator needs its tokenizer to export a "
                             "string signature.")
        self.preprocessor = model.preprocessor
        self.tokenizer = model.preprocessor.tokenizer
        max_length = self.preprocessor.decoder_sequence_length if max_length is None else max_length
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not \
                2 <= max_length <= model.backbone.max_sequence_length:
            raise ValueError(f"`max_length` must be an integer in [2, backbone.max_sequence_length="
                             f"{model.backbone.max_sequence_length}], received max_length={max_length!r}.")
        if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
            raise ValueError(f"`num_beams` must be an integer >= 1, received num_beams={num_beams!r}.")
        self.max_length, self.num_beams = max_length, num_beams

    # === The graphs ===

    def encoder_specs(self) -> dict[str, tf.TensorSpec]:
        length = self.preprocessor.encoder_sequence_length
        return {name: tf.TensorSpec([None, length], tf.int32, name=name)
                for name in ("encoder_token_ids", "encoder_padding_mask")}

    def preprocess(self, texts) -> dict[str, tf.Tensor]:
        features = self.preprocessor.generate_preprocess(texts, sequence_length=self.max_length)
        return {name: tf.cast(value, tf.int32) for name, value in features.items()}

    def greedy(self, encoder_token_ids, encoder_padding_mask) -> dict[str, tf.Tensor]:
        return greedy_translate(self.model, encoder_token_ids, encoder_padding_mask, self.max_length)

    def beam(self, features) -> dict[str, tf.Tensor]:
        # The model's sampler is a `BeamSampler` while this traces (see `_write_saved_model`).
        outputs = self.model.generate_step(features, stop_token_ids=[self.tokenizer.end_token_id])
        return {"token_ids": tf.cast(outputs["decoder_token_ids"], tf.int32),
                "padding_mask": tf.cast(outputs["decoder_padding_mask"], tf.int32)}

    def detokenize(self, outputs) -> tf.Tensor:
        keep = tf.cast(outputs["padding_mask"], tf.bool)
        for special in self.tokenizer.special_token_ids:
            keep = tf.logical_and(keep, outputs["token_ids"] != special)
        return tf.reshape(self.tokenizer.detokenize(tf.ragged.boolean_mask(outputs["token_ids"], keep)), [-1])

    # === Artifacts ===

    def check_data(self, data, argument: str):
        return check_texts(data, argument, allow_blank=False)

    def probe_data(self) -> list[str]:
        return PROBE_TEXTS

    def samplers(self, name: str) -> list[str]:
        return ["greedy", "beam"] if name == "saved_model" and self.num_beams > 1 else ["greedy"]

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "saved_model":
            return self._write_saved_model(target)
        return self._write_tflite(target, quantization, representative_data)

    def _write_saved_model(self, folder: str) -> dict:
        import keras_hub

        if not self.preprocessor.built:
            self.preprocessor.build(None)
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        archive.track(self.preprocessor)

        def translate(texts):
            features = self.preprocess(texts)
            outputs = self.greedy(features["encoder_token_ids"], features["encoder_padding_mask"])
            return {**outputs, "translations": self.detokenize(outputs)}

        def translate_beam(texts):
            outputs = self.beam(self.preprocess(texts))
            return {**outputs, "translations": self.detokenize(outputs)}

        specs = self.encoder_specs()
        text_spec = tf.TensorSpec([None], tf.string, name="texts")
        # Registered first, `translate` is also written as `serving_default`.
        archive.add_endpoint("translate", translate, input_signature=[text_spec])
        archive.add_endpoint("translate_tokens", self.greedy, input_signature=list(specs.values()))
        compiled_sampler = getattr(self.model, "sampler", None)
        try:
            if self.num_beams > 1:
                self.model.sampler = keras_hub.samplers.BeamSampler(num_beams=self.num_beams)
                archive.add_endpoint("translate_beam", translate_beam, input_signature=[text_spec])
            archive.write_out(folder, verbose=False)
        finally:
            self.model.sampler = compiled_sampler
        signatures = {"translate": "texts", "serving_default": "texts", "translate_tokens": list(specs)}
        if self.num_beams > 1:
            signatures["translate_beam"] = "texts"
        return {"signatures": signatures, "samplers": self.samplers("saved_model"), "max_length": self.max_length,
                "num_beams": self.num_beams if self.num_beams > 1 else None}

    def _write_tflite(self, file: str, quantization, representative_data) -> dict:
        specs = self.encoder_specs()
        function = tf.function(self.greedy, input_signature=list(specs.values()), autograph=False)

        def calibration():
            for text in list(representative_data)[: tflite.CALIBRATION_EXAMPLES]:
                features = self.preprocess(tf.constant([text]))
                yield {name: np.asarray(features[name], np.int32) for name in specs}

        try:
            # The backbone, not the task: the task also tracks the tokenizer, which the graph does not use.
            blob = tflite.convert(function, self.model.backbone, quantization,
                                  calibration if representative_data is not None else None)
        except Exception as error:  # the converter raises bare Exceptions (ConverterError)
            raise ValueError(f"TFLite conversion of the translator failed with quantization={quantization!r}: "
                             f"{str(error)[:500]}") from None
        tflite.write_tflite(file, blob)
        length = self.preprocessor.encoder_sequence_length
        return {"signature": "serving_default", "quantization": quantization, "samplers": ["greedy"],
                "max_length": self.max_length,
                "inputs": {name: f"int32[batch, {length}]" for name in specs},
                "outputs": {"token_ids": f"int32[batch, {self.max_length}]",
                            "padding_mask": f"int32[batch, {self.max_length}]"},
                "tokenizer_note": f"Tokenize with {TOKENIZER_FILE} (SentencePiece) and pack <s> ids </s> <pad>... "
                                  f"to {length}; encoder_padding_mask 1 on tokens. Detokenize the token_ids where "
                                  "padding_mask is 1, special tokens removed."}

    def manifest(self) -> dict:
        tokenizer = self.tokenizer
        return {
            "tokenizer_file": TOKENIZER_FILE,
            "generation": {"max_length": self.max_length, "num_beams": self.num_beams,
                           "stop": "end token (kept; later tokens masked)"},
            "preprocessing": {
                "tokenizer": "sentencepiece",
                "encoder_sequence_length": int(self.preprocessor.encoder_sequence_length),
                "special_tokens": {"start": int(tokenizer.start_token_id), "end": int(tokenizer.end_token_id),
                                   "pad": int(tokenizer.pad_token_id)},
                "packing": "<s> source tokens </s> <pad>... (truncated, end token kept); padding_mask 1 on tokens",
            },
            "raw_input": {"texts": "string[batch]"},
            "outputs": {"translations": "string[batch]", "token_ids": f"int32[batch, {self.max_length}]",
                        "padding_mask": f"int32[batch, {self.max_length}]"},
        }

    def files(self) -> dict[str, bytes]:
        return {TOKENIZER_FILE: bytes(self.tokenizer.proto)}

    # === Parity ===

    def bind_manifest(self, manifest) -> None:
        self.max_length = manifest["generation"]["max_length"]
        self.num_beams = manifest["generation"]["num_beams"]

    def reference(self, texts, sampler: str) -> list[str]:
        """The Keras model's own `translate` (keras-hub's cached loop); the compiled sampler is kept."""
        compiled_sampler = getattr(self.model, "sampler", None)
        options = {"num_beams": self.num_beams} if sampler == "beam" else {"sampler": "greedy"}
        try:
            return self.model.translate(list(texts), max_length=self.max_length, **options)
        finally:
            self.model.sampler, self.model.generate_function = compiled_sampler, None

    def parity(self, predict, data, batch_size) -> dict:
        figures = {}
        samplers = ["greedy"]
        try:  # the beam signature is there when the artifact offers it
            predict(data[:1], sampler="beam")
            samplers.append("beam")
        except ValueError:
            pass
        for sampler in samplers:
            same = 0
            for start in range(0, len(data), batch_size):
                batch = data[start : start + batch_size]
                exported = predict(batch, sampler=sampler)["translations"]
                same += sum(a == b for a, b in zip(exported, self.reference(batch, sampler)))
            figures[f"{sampler}_exact_match"] = same / len(data)
        figures["examples"] = len(data)
        return figures

    def parity_failure(self, name, entry, figures, tolerance, min_label_agreement) -> str | None:
        # Float artifacts run the same float32 arithmetic: every translation must be the Keras one.
        needed = min_label_agreement if entry.get("quantization") else 1.0
        for key, value in figures.items():
            if key.endswith("_exact_match") and value < needed:
                return f"{name}: {key} {value:.4f} < {needed}"
        return None
