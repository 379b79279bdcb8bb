"""Export of a `keras_ptft.tasks.MaskedLM`: fill-mask from raw strings with `[MASK]`.

Artifacts:
- SavedModel `NAME/1/`, signature `serving_default`: `texts` string[batch] → per [MASK] (in
  order) the `top_k` `tokens` (string), `token_ids` and `probabilities`, plus `mask_count`. The
  tokenizer is keras-hub's `BertTokenizer` with `special_tokens_in_strings=True`, so a literal
  `[MASK]` becomes the mask id instead of being lower-cased into a word. Signature
  `serving_tokens`: the model's own inputs (+ `mask_positions`) → `logits`.
- TFLite `tflite/model.tflite` (token ids in): `token_ids`, `segment_ids`, `padding_mask`
  int32[batch, sequence_length] and `mask_positions` int32[batch, masks] → `logits`
  float32[batch, masks, vocabulary]. An app tokenizes with `vocabulary.txt`.

Texts longer than `sequence_length` are truncated inside the SavedModel (a [MASK] cut off is
simply not predicted; `mask_count` says how many were); `Predictor`'s TFLite path and
`MaskedLM.fill_mask` reject them instead.
"""

from __future__ import annotations

import os

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from keras_ptft.export.base import ExportKind, KindRunner, register_kind
from keras_ptft.export.formats import tflite
from keras_ptft.export.formats.saved_model import load_signature
from keras_ptft.export.kinds.common import softmax, token_ids
from keras_ptft.validation import check_texts

MASK_TOKEN = "[MASK]"
# The backbone's own inputs; `mask_positions` comes on top.
TOKEN_NAMES = ("token_ids", "segment_ids", "padding_mask")


def encode_with_masks(tokenizer, text: str, sequence_length: int, argument: str = "texts"
                      ) -> tuple[list[int], list[int]]:
    """`[CLS] pieces [SEP]` ids of a text with `[MASK]`s, and the mask positions.

    The same encoding as `MaskedLM.fill_mask`: the text is split on `[MASK]` before tokenizing,
    so lower-casing cannot turn the marker into an ordinary word.
    """
    if MASK_TOKEN not in text:
        raise ValueError(f"`{argument}` entries must contain {MASK_TOKEN}; received {text!r}.")
    ids, positions = [tokenizer.cls_token_id], []
    pieces = text.split(MASK_TOKEN)
    for i, piece in enumerate(pieces):
        if piece.strip():
            ids.extend(token_ids(tokenizer, piece))
        if i < len(pieces) - 1:
            positions.append(len(ids))
            ids.append(tokenizer.mask_token_id)
    ids.append(tokenizer.sep_token_id)
    if len(ids) > sequence_length:
        raise ValueError(f"`{argument}` entry {text!r} is {len(ids)} tokens, longer than the export's "
                         f"sequence_length={sequence_length}.")
    return ids, positions


def pack(tokenizer, texts, sequence_length: int) -> dict[str, np.ndarray]:
    """Model inputs (with `mask_positions`, padded with 0) for texts with `[MASK]`s."""
    encoded = [encode_with_masks(tokenizer, text, sequence_length) for text in texts]
    width = max(len(positions) for _, positions in encoded)
    token_ids = np.full((len(texts), sequence_length), tokenizer.pad_token_id, np.int32)
    mask_positions = np.zeros((len(texts), width), np.int32)
    for row, (ids, positions) in enumerate(encoded):
        token_ids[row, : len(ids)] = ids
        mask_positions[row, : len(positions)] = positions
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": (token_ids != tokenizer.pad_token_id).astype(np.int32),
            "mask_positions": mask_positions,
            "mask_count": np.array([len(positions) for _, positions in encoded], np.int32)}


class MaskedLMRunner(KindRunner):
    """Runs a masked-LM export (SavedModel or TFLite) on texts with `[MASK]`."""

    def __init__(self, path, manifest, format, artifact):
        super().__init__(path, manifest, format, artifact)
        self.top_k = int(manifest["top_k"])
        settings = manifest["preprocessing"]
        self.sequence_length = settings["sequence_length"]
        if format == "saved_model":
            self.signature = load_signature(artifact)
            return
        with open(os.path.join(path, manifest["vocabulary_file"]), encoding="utf-8") as handle:
            vocabulary = handle.read().splitlines()
        self.vocabulary = np.array(vocabulary, dtype=object)
        self.tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=settings["lowercase"],
                                                        strip_accents=settings["strip_accents"])
        self.runner = tflite.TFLiteRunner(artifact)

    def predict(self, texts) -> dict:
        texts = check_texts(texts, "texts")
        missing = [text for text in texts if MASK_TOKEN not in text]
        if missing:
            raise ValueError(f"`texts` entries must contain {MASK_TOKEN}; received {missing[0]!r}.")
        if self.format == "saved_model":
            outputs = {name: value.numpy() for name, value in
                       self.signature(texts=tf.constant(texts, tf.string)).items()}
            outputs["tokens"] = np.vectorize(lambda t: t.decode("utf-8"), otypes=[object])(outputs["tokens"])
            return outputs
        features = pack(self.tokenizer, texts, self.sequence_length)
        logits = self.runner(**{name: features[name] for name in (*TOKEN_NAMES, "mask_positions")})["logits"]
        probabilities = softmax(logits.astype(np.float64))
        token_ids = np.argsort(-probabilities, axis=-1, kind="stable")[..., : self.top_k].astype(np.int32)
        return {"tokens": self.vocabulary[token_ids], "token_ids": token_ids,
                "probabilities": np.take_along_axis(probabilities, token_ids, -1).astype(np.float32),
                "mask_count": features["mask_count"], "logits": logits}

    @classmethod
    def parse_items(cls, items, field, manifest) -> list[str]:
        texts = super().parse_items(items, field, manifest)
        for i, text in enumerate(texts):
            if MASK_TOKEN not in text:
                raise ValueError(f'"{field}"[{i}] has no {MASK_TOKEN} to fill: {text!r:.80}')
        return texts

    @classmethod
    def format_predictions(cls, inputs, outputs, options, label_names) -> list[dict]:
        return [{"masks": [[{"token": str(token), "probability": float(p)}
                            for token, p in zip(outputs["tokens"][row, slot], outputs["probabilities"][row, slot])]
                           for slot in range(int(outputs["mask_count"][row]))]}
                for row in range(len(inputs))]


@register_kind
class MaskedLMKind(ExportKind):
    """`keras_ptft.tasks.MaskedLM`: texts with `[MASK]` → top-k tokens and probabilities per mask.

    Args:
        model: the `MaskedLM`.
        top_k: int. Candidates returned per `[MASK]` by the SavedModel.

    Example:
    ```python
    kp.export.export(mlm, "saved_models/fill_mask", top_k=5)
    kp.export.Predictor("saved_models/fill_mask").predict(["the cat sat on the [MASK]"])["tokens"]
    ```
    """

    name = "masked_lm"
    formats = default_formats = ("saved_model", "tflite")
    runner = MaskedLMRunner

    @classmethod
    def matches(cls, model) -> bool:
        from keras_ptft.tasks.masked_lm import MaskedLM

        return isinstance(model, MaskedLM)

    def __init__(self, model, top_k: int = 5):
        super().__init__(model)
        vocabulary_size = model.backbone.vocabulary_size
        if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= vocabulary_size:
            raise ValueError(f"`top_k` must be an integer in [1, vocabulary_size={vocabulary_size}], "
                             f"received top_k={top_k!r}.")
        self.top_k = top_k
        self.preprocessor = model.preprocessor
        self.tokenizer = model.preprocessor.tokenizer
        self.sequence_length = int(model.preprocessor.sequence_length)
        self.vocabulary = list(self.tokenizer.get_vocabulary())

    def token_input_specs(self) -> dict[str, tf.TensorSpec]:
        specs = {name: tf.TensorSpec([None, self.sequence_length], tf.int32, name=name) for name in TOKEN_NAMES}
        specs["mask_positions"] = tf.TensorSpec([None, None], tf.int32, name="mask_positions")
        return specs

    def probe_data(self) -> list[str]:
        texts = ["the film was [MASK].", "[MASK] café crème", "这部电影很[MASK]", "[MASK] is [MASK]", "[MASK]"]
        fits = []
        for text in texts:  # only those within this export's sequence_length
            try:
                encode_with_masks(self.tokenizer, text, self.sequence_length)
                fits.append(text)
            except ValueError:
                pass
        return fits

    def check_data(self, data, argument: str):
        texts = check_texts(data, argument)
        for text in texts:  # a missing [MASK] or an over-long text fails here, before any artifact is written
            encode_with_masks(self.tokenizer, text, self.sequence_length, argument)
        return texts

    # === Artifacts ===

    def write_artifact(self, name, target, quantization, representative_data) -> dict:
        if name == "saved_model":
            return self._write_saved_model(target)
        return self._write_tflite(target, quantization, representative_data)

    def _write_saved_model(self, folder: str) -> dict:
        model, top_k, length = self.model, self.top_k, self.sequence_length
        # A tokenizer that maps a literal "[MASK]" to its id (the training one lower-cases it).
        tokenizer = keras_hub.models.BertTokenizer(
            vocabulary=self.vocabulary, lowercase=self.tokenizer.lowercase,
            strip_accents=self.tokenizer.strip_accents, special_tokens_in_strings=True)
        packer = keras_hub.layers.StartEndPacker(
            start_value=self.tokenizer.cls_token_id, end_value=self.tokenizer.sep_token_id,
            pad_value=self.tokenizer.pad_token_id, sequence_length=length, return_padding_mask=True)
        vocabulary = tf.constant(self.vocabulary)
        mask_id = self.tokenizer.mask_token_id

        packer(tokenizer(tf.constant(["build"])))  # ExportArchive tracks built layers only
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(tokenizer)
        archive.track(packer)

        def fill_mask(texts):
            token_ids, padding_mask = packer(tokenizer(texts))
            token_ids = tf.cast(token_ids, tf.int32)
            is_mask = token_ids == mask_id
            positions = tf.broadcast_to(tf.range(length, dtype=tf.int32)[None, :], tf.shape(token_ids))
            mask_positions = tf.ragged.boolean_mask(positions, is_mask).to_tensor(0)
            logits = model({"token_ids": token_ids, "segment_ids": tf.zeros_like(token_ids),
                            "padding_mask": tf.cast(padding_mask, tf.int32), "mask_positions": mask_positions},
                           training=False)
            probabilities, token_ids = tf.math.top_k(tf.nn.softmax(tf.cast(logits, tf.float32)), k=top_k)
            return {"tokens": tf.gather(vocabulary, token_ids), "token_ids": token_ids,
                    "probabilities": probabilities,
                    "mask_count": tf.reduce_sum(tf.cast(is_mask, tf.int32), axis=-1)}

        def logits(features):
            return {"logits": tf.cast(model(features, training=False), tf.float32)}

        archive.add_endpoint("serving_default", fill_mask,
                             input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        archive.add_endpoint("serving_tokens", logits, input_signature=[self.token_input_specs()])
        archive.write_out(folder, verbose=False)
        return {"signatures": {"serving_default": "texts", "serving_tokens": list(self.token_input_specs())},
                "top_k": top_k}

    def _write_tflite(self, file: str, quantization, representative_data) -> dict:
        specs = self.token_input_specs()
        names = list(specs)

        def serve(*inputs):
            return {"logits": tf.cast(self.model(dict(zip(names, inputs)), training=False), tf.float32)}

        function = tf.function(serve, input_signature=[specs[name] for name in names], autograph=False)

        def calibration():
            for text in list(representative_data)[: tflite.CALIBRATION_EXAMPLES]:
                features = pack(self.tokenizer, [text], self.sequence_length)
                yield {name: features[name] for name in names}

        blob = tflite.convert(function, self.model, quantization,
                              calibration if representative_data is not None else None)
        tflite.write_tflite(file, blob)
        return {"signature": "serving_default", "quantization": quantization,
                "inputs": {**{name: f"int32[batch, {self.sequence_length}]" for name in TOKEN_NAMES},
                           "mask_positions": "int32[batch, masks]"},
                "outputs": {"logits": f"float32[batch, masks, {len(self.vocabulary)}]"},
                "tokenizer_note": "Tokenize each piece between [MASK]s with vocabulary.txt and the manifest's "
                                  "preprocessing settings; [CLS] ids [SEP], [MASK] ids at mask_positions."}

    def manifest(self) -> dict:
        special = {name: int(getattr(self.tokenizer, f"{name}_token_id")) for name in ("pad", "cls", "sep", "mask")}
        return {
            "vocabulary_file": "vocabulary.txt",
            "top_k": self.top_k,
            "preprocessing": {"tokenizer": "wordpiece", "sequence_length": self.sequence_length,
                              "lowercase": bool(self.tokenizer.lowercase),
                              "strip_accents": bool(self.tokenizer.strip_accents),
                              "special_tokens": special, "mask_token": MASK_TOKEN},
            "raw_input": {"texts": "string[batch], each with at least one [MASK]"},
            "outputs": {"tokens": f"string[batch, masks, {self.top_k}]",
                        "token_ids": f"int32[batch, masks, {self.top_k}]",
                        "probabilities": f"float32[batch, masks, {self.top_k}]", "mask_count": "int32[batch]"},
        }

    def files(self) -> dict[str, str]:
        return {"vocabulary.txt": "\n".join(self.vocabulary) + "\n"}

    # === Parity ===

    def reference(self, texts) -> dict[str, np.ndarray]:
        """The Keras model's logits at every [MASK] (rows padded to the batch's most masks)."""
        features = pack(self.tokenizer, texts, self.sequence_length)
        logits = self.model({name: features[name] for name in (*TOKEN_NAMES, "mask_positions")}, training=False)
        return {"logits": np.asarray(keras.ops.convert_to_numpy(logits), np.float32),
                "mask_count": features["mask_count"]}

    def parity(self, predict, data, batch_size) -> dict:
        top_diff = logit_diff = 0.0
        agree = total = 0
        has_logits = False  # the token-id artifacts return the logits too
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            expected = self.reference(batch)
            outputs = predict(batch)
            probabilities = softmax(expected["logits"])
            for row, count in enumerate(expected["mask_count"]):
                for slot in range(count):
                    ids = outputs["token_ids"][row, slot]
                    top_diff = max(top_diff, float(np.abs(outputs["probabilities"][row, slot]
                                                          - probabilities[row, slot, ids]).max()))
                    agree += int(ids[0] == probabilities[row, slot].argmax())
                    total += 1
            if "logits" in outputs:
                has_logits = True
                logit_diff = max(logit_diff, float(np.abs(outputs["logits"] - expected["logits"]).max()))
        figures = {"max_abs_diff": top_diff, "top1_agreement": agree / max(total, 1), "examples": len(data)}
        if has_logits:
            figures["max_abs_logit_diff"] = logit_diff
        return figures

    def parity_failure(self, name, entry, figures, tolerance, min_label_agreement) -> str | None:
        if entry.get("quantization"):
            if figures["top1_agreement"] < min_label_agreement:
                return (f"{name} ({entry['quantization']}): top-1 agreement {figures['top1_agreement']:.4f} "
                        f"< min_label_agreement={min_label_agreement}")
            return None
        worst = max(figures["max_abs_diff"], figures.get("max_abs_logit_diff", 0.0))
        if worst > tolerance:
            return f"{name}: max |Δ| {worst:.3g} > tolerance={tolerance}"
        return None
