"""Translator export: the SavedModel and TFLite decoding loops give `Translator.translate`'s translations."""

import json
import os
import re
import types

import pytest

from keras_ptft.export import Predictor, export, verify
from keras_ptft.export.serve import parse_request

from export_helpers import TRANSLATOR_SOURCES as SOURCES, manifest_of, post, serving, truncate


def test_artifacts_translate_exactly_like_keras(translator, translator_exported):
    greedy = translator.translate(SOURCES, max_length=9)
    beam = translator.translate(SOURCES, max_length=9, num_beams=2)
    assert len(set(greedy)) >= 3 and all(greedy)  # not trivial: the source decides the output
    for format in ("saved_model", "tflite"):
        predictor = Predictor(translator_exported, format=format)
        assert predictor.predict(SOURCES)["translations"] == greedy, format
    assert Predictor(translator_exported, format="saved_model").predict(SOURCES, sampler="beam")["translations"] \
        == beam
    manifest = json.load(open(os.path.join(translator_exported, "manifest.json"), encoding="utf-8"))
    assert manifest["kind"] == "translator" and sorted(manifest["artifacts"]) == ["saved_model", "tflite"]
    assert manifest["artifacts"]["saved_model"]["parity"] == {"greedy_exact_match": 1.0, "beam_exact_match": 1.0,
                                                              "examples": len(SOURCES)}
    assert manifest["artifacts"]["tflite"]["parity"] == {"greedy_exact_match": 1.0, "examples": len(SOURCES)}
    assert verify(translator_exported, translator, ["sun sun", "cat"], formats=["tflite"])["tflite"] == \
        {"greedy_exact_match": 1.0, "examples": 2}
    # The exported SentencePiece model is the translator's own (an app tokenizes with it).
    with open(os.path.join(translator_exported, manifest["tokenizer_file"]), "rb") as handle:
        assert handle.read() == bytes(translator.preprocessor.tokenizer.proto)


def test_saved_model_signatures_take_and_return_strings(translator, translator_exported):
    import tensorflow as tf
    import tensorflow_text  # noqa: F401  (the SentencePiece ops)

    loaded = tf.saved_model.load(os.path.join(translator_exported, "1"))
    for name, options in (("translate", {}), ("serving_default", {}), ("translate_beam", {"num_beams": 2})):
        # The batch the export was verified on: this barely trained model has near-ties that another
        # batch size (another float summation order) can flip, in Keras as in the export.
        outputs = loaded.signatures[name](texts=tf.constant(SOURCES))
        assert [t.decode() for t in outputs["translations"].numpy()] == \
            translator.translate(SOURCES, max_length=9, **options), name


def test_serve_answers_translations_and_refuses_malformed_requests(translator, translator_exported):
    predictor = Predictor(translator_exported, format="saved_model")
    with serving(predictor) as server:
        status, answer = post(server, {"texts": SOURCES[:2]})
        assert status == 200
        assert answer["predictions"] == [{"text": s, "translation": t} for s, t in
                                         zip(SOURCES[:2], translator.translate(SOURCES[:2], max_length=9))]
        status, answer = post(server, {"text": SOURCES[1], "sampler": "beam"})
        assert status == 200 and answer["predictions"][0]["translation"] == \
            translator.translate(SOURCES[1], max_length=9, num_beams=2)
        for body, message in [({"texts": ["red", " "]}, "row 1 is empty"),
                              ({"texts": [3]}, "list of strings"),
                              ({"texts": ["red"], "sampler": "top_k"}, '"sampler" must be one of'),
                              ({"prompts": ["red"]}, '{"texts": [...]}'),
                              ({"texts": ["red"], "max_length": 4}, "max_length")]:
            status, answer = post(server, body)
            assert status == 400 and message in answer["error"], (body, answer)
        assert post(server, None, "/health", "GET")[1]["max_length"] == 9


# === The translator kind: (id, call, exception, message fragment), on its own export ===

TRANSLATOR = [
    ("export: max_length below the prompt", lambda c: export(c.translator, c.tmp / "a", max_length=1), ValueError,
     "`max_length`"),
    ("export: max_length past the backbone", lambda c: export(c.translator, c.tmp / "a", max_length=99), ValueError,
     "`max_length`"),
    ("export: num_beams zero", lambda c: export(c.translator, c.tmp / "a", num_beams=0), ValueError, "`num_beams`"),
    ("export: onnx", lambda c: export(c.translator, c.tmp / "a", formats=["onnx"]), ValueError, "`formats`"),
    ("export: option of another kind", lambda c: export(c.translator, c.tmp / "a", top_k=2), ValueError, "top_k"),
    ("export: blank verify_data", lambda c: export(c.translator, c.tmp / "a", verify_data=["red", ""]), ValueError,
     "`verify_data` row 1 is empty"),
    ("Predictor: blank text", lambda c: Predictor(c.exported, format="tflite").predict(["red", "  "]), ValueError,
     "`texts` row 1 is empty"),
    ("Predictor: texts a number", lambda c: Predictor(c.exported).predict(3), TypeError, "`texts`"),
    ("Predictor: beam on TFLite", lambda c: Predictor(c.exported, format="tflite").predict(["red"], sampler="beam"),
     ValueError, "sampler"),
    ("Predictor: option of another kind", lambda c: Predictor(c.exported).predict(["red"], max_length=4), ValueError,
     "max_length"),
    ("Predictor: tokenizer file edited", lambda c: Predictor(truncate(c, "sentencepiece.model"), format="tflite"),
     ValueError, "sentencepiece.model"),
    ("serve: texts numbers", lambda c: parse_request(b'{"texts": [1]}', manifest_of(c), 10), ValueError,
     "list of strings"),
    ("serve: sampler unknown", lambda c: parse_request(b'{"texts": ["a"], "sampler": "top_p"}', manifest_of(c), 10),
     ValueError, '"sampler" must be one of'),
    ("serve: prompts field", lambda c: parse_request(b'{"prompts": ["a"]}', manifest_of(c), 10), ValueError,
     '{"texts": [...]}'),
    ("serve: texts empty", lambda c: parse_request(b'{"texts": []}', manifest_of(c), 10), ValueError, "1 to 10"),
]


@pytest.mark.parametrize("call, error, fragment", [pytest.param(*row[1:], id=row[0]) for row in TRANSLATOR])
def test_bad_translator_input_is_refused_with_a_named_error(call, error, fragment, translator, translator_exported,
                                                            tmp_path):
    ctx = types.SimpleNamespace(translator=translator, exported=translator_exported, tmp=tmp_path)
    with pytest.raises(error, match=re.escape(fragment)):
        call(ctx)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".export-")]
