"""The bad-input sweep of the export layer: every row is one call, the exception it must raise and a
fragment of the message (the argument or path it names). Rows for behaviour that already worked are
kept on purpose: the sweep guards it. The translator kind's rows are in `test_translator_export.py`,
beside the one translator export they share (building it is the costly part: once per file under
`pytest --dist loadfile`)."""

import json
import os
import re
import shutil
import socket
import threading
import types

import numpy as np
import pytest

import keras
from keras_ptft.export import Predictor, export, verify
from keras_ptft.export.base import load_manifest, write_manifest
from keras_ptft.export.serve import Server, parse_request

from export_helpers import copy_of, manifest_of, truncate


# === Setup helpers the rows use ===


def folder_with(ctx, name, files):
    folder = ctx.tmp / name
    folder.mkdir(exist_ok=True)
    for file, text in files.items():
        (folder / file).write_text(text, encoding="utf-8")
    return folder


def edit_vocabulary(ctx):
    folder = copy_of(ctx)
    tokens = (folder / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    tokens[10], tokens[11] = tokens[11], tokens[10]
    (folder / "vocabulary.txt").write_text("\n".join(tokens[:-3]) + "\n", encoding="utf-8")
    return folder


def edit_manifest(ctx, key, value, keep_digest=False):
    folder = copy_of(ctx)
    manifest = load_manifest(folder)
    manifest[key] = value
    if keep_digest:  # a well-formed manifest, digest and all: what another tool or a newer version writes
        write_manifest(str(folder), manifest)
    else:
        (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def remove(ctx, relative):
    folder = copy_of(ctx)
    target = folder / relative
    shutil.rmtree(target) if target.is_dir() else os.remove(target)
    return folder


def refuse_mkdir(ctx):
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", os.fspath(path))

    ctx.monkeypatch.setattr(os, "mkdir", refuse)
    return ctx.tmp / "locked" / "out"


def unbuilt():
    return keras.Sequential([keras.layers.Dense(2)])


def plain_model():
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])


def predictor(ctx):
    return Predictor(ctx.exported, format="tflite")


# === The table: (id, call, exception, message fragment) ===

EXPORT = [
    ("formats unknown", lambda c: export(c.classifier, c.tmp / "a", formats=["tflite", "coreml"]), ValueError,
     "`formats`"),
    ("formats empty", lambda c: export(c.classifier, c.tmp / "a", formats=[]), ValueError, "`formats`"),
    ("formats not a list", lambda c: export(c.classifier, c.tmp / "a", formats=3), ValueError, "`formats`"),
    ("quantization unknown", lambda c: export(c.classifier, c.tmp / "a", quantization="int4"), ValueError,
     "`quantization`"),
    ("int8 without data", lambda c: export(c.classifier, c.tmp / "a", formats=["tflite"], quantization="int8"),
     ValueError, "representative_data"),
    ("int8 with tflite_text", lambda c: export(c.classifier, c.tmp / "a", formats=["tflite_text"],
                                               quantization="int8", representative_data=["x"]), ValueError,
     "tflite_text"),
    ("representative_data not texts", lambda c: export(c.classifier, c.tmp / "a", representative_data=["a", 7]),
     ValueError, "`representative_data`"),
    ("verify_data empty", lambda c: export(c.classifier, c.tmp / "a", verify_data=[]), ValueError, "`verify_data`"),
    ("verify_data not texts", lambda c: export(c.classifier, c.tmp / "a", verify_data=["ok", 3]), ValueError,
     "`verify_data`"),
    ("verify_data images for text", lambda c: export(c.classifier, c.tmp / "a",
                                                     verify_data=np.zeros((2, 8, 8, 1), "uint8")),
     ValueError, "`verify_data`"),
    ("path not a path", lambda c: export(c.classifier, 3), TypeError, "`path`"),
    ("tolerance not a number", lambda c: export(c.classifier, c.tmp / "a", tolerance="tight"), TypeError,
     "`tolerance`"),
    ("min_label_agreement None", lambda c: export(c.classifier, c.tmp / "a", min_label_agreement=None), TypeError,
     "`min_label_agreement`"),
    ("existing export, no overwrite", lambda c: export(c.classifier, c.exported, formats=["tflite"]),
     FileExistsError, "overwrite=True"),
    # issue 19 item 2: a user's folder is never emptied
    ("overwrite a user folder", lambda c: export(c.classifier, folder_with(c, "mine", {"mydata.txt": "mine"}),
                                                 overwrite=True), FileExistsError, "'mydata.txt'"),
    # issue 19 item 9
    ("path under a file", lambda c: export(c.classifier, folder_with(c, "f", {"report.txt": "x"}) / "report.txt" / "out"),
     NotADirectoryError, "report.txt' is a file"),
    ("path is a file", lambda c: export(c.classifier, folder_with(c, "g", {"model.txt": "x"}) / "model.txt"),
     FileExistsError, "is a file"),
    ("unwritable parent names the path given", lambda c: export(c.classifier, refuse_mkdir(c)), PermissionError,
     os.path.join("locked", "out")),
    ("unbuilt model", lambda c: export(unbuilt(), c.tmp / "a"), ValueError, "built"),
    ("model of no kind", lambda c: export(plain_model(), c.tmp / "a"), ValueError, "no exporter"),
    ("option of another kind", lambda c: export(c.classifier, c.tmp / "a", top_k=3), ValueError, "top_k"),
    ("format of another kind", lambda c: export(c.classifier, c.tmp / "a", formats=["tflite"], max_length=8),
     ValueError, "max_length"),
]

VERIFY = [
    ("data a number", lambda c: verify(c.exported, c.classifier, 7), TypeError, "`data`"),
    ("data empty", lambda c: verify(c.exported, c.classifier, []), ValueError, "`data`"),
    ("formats not in the folder", lambda c: verify(c.exported, c.classifier, formats=["onnx"]), ValueError,
     "`formats`"),
    ("batch_size zero", lambda c: verify(c.exported, c.classifier, batch_size=0), ValueError, "`batch_size`"),
    ("missing folder", lambda c: verify(c.tmp / "nowhere", c.classifier), FileNotFoundError, "not a folder"),
    ("model of no kind", lambda c: verify(c.exported, plain_model()), ValueError, "no exporter"),
]

PREDICTOR = [
    ("missing folder", lambda c: Predictor(c.tmp / "nowhere"), FileNotFoundError, "not a folder"),
    ("folder without manifest", lambda c: Predictor(folder_with(c, "empty", {})), FileNotFoundError,
     "manifest.json"),
    ("format not exported", lambda c: Predictor(c.exported, format="onnx"), ValueError, "`format`"),
    ("format unknown", lambda c: Predictor(c.exported, format="coreml"), ValueError, "`format`"),
    ("texts a number", lambda c: predictor(c).predict(3), TypeError, "`texts`"),
    ("texts with a number", lambda c: predictor(c).predict(["ok", 4]), ValueError, "at index 1"),
    ("texts a dict", lambda c: predictor(c).predict({"text": "a"}), TypeError, "`texts`"),
    ("option of another kind", lambda c: predictor(c).predict(["a"], max_length=4), ValueError, "max_length"),
    ("manifest not JSON", lambda c: Predictor(folder_with(c, "bad", {"manifest.json": '{"kind": "text_cl'})),
     ValueError, "corrupted"),
    ("manifest of an unknown kind", lambda c: Predictor(edit_manifest(c, "kind", "speech", keep_digest=True)),
     ValueError, "'speech'"),
    # issue 19 item 3: everything Predictor reads is under a digest
    ("label_names edited", lambda c: Predictor(edit_manifest(c, "label_names", ["b", "a"])), ValueError,
     "manifest.json"),
    ("manifest digest missing", lambda c: Predictor(remove(c, "manifest.sha256")), ValueError, "manifest.sha256"),
    ("vocabulary swapped and cut", lambda c: Predictor(edit_vocabulary(c), format="tflite"), ValueError,
     "vocabulary.txt"),
    ("vocabulary missing", lambda c: Predictor(remove(c, "vocabulary.txt"), format="tflite"), FileNotFoundError,
     "vocabulary.txt"),
    ("tflite truncated", lambda c: Predictor(truncate(c, "tflite/model_text.tflite"), format="tflite_text"),
     ValueError, "truncated"),
    ("artifact missing", lambda c: Predictor(remove(c, "tflite"), format="tflite"), FileNotFoundError,
     "listed in the manifest is missing"),
    ("saved model file missing", lambda c: Predictor(remove(c, "1/saved_model.pb"), format="saved_model"),
     FileNotFoundError, "saved_model.pb"),
]

SERVE = [
    ("read_timeout_s zero", lambda c: Server(c.exported, port=0, read_timeout_s=0), ValueError, "`read_timeout_s`"),
    ("max_batch_size zero", lambda c: Server(c.exported, port=0, max_batch_size=0), ValueError, "`max_batch_size`"),
    ("max_request_bytes a str", lambda c: Server(c.exported, port=0, max_request_bytes="1MB"), ValueError,
     "`max_request_bytes`"),
    ("missing export", lambda c: Server(c.tmp / "nowhere", port=0), FileNotFoundError, "not a folder"),
    ("body not JSON", lambda c: parse_request(b"{not json", manifest_of(c), 10), ValueError, "JSON"),
    ("body not UTF-8", lambda c: parse_request(b"\xff\xfe", manifest_of(c), 10), ValueError, "UTF-8"),
    ("texts empty", lambda c: parse_request(b'{"texts": []}', manifest_of(c), 10), ValueError, "1 to 10"),
    ("too many texts", lambda c: parse_request(b'{"texts": ["a", "b", "c"]}', manifest_of(c), 2), ValueError,
     "1 to 2"),
    ("texts a str", lambda c: parse_request(b'{"texts": "a"}', manifest_of(c), 10), ValueError,
     '"texts" must be a list'),
    ("texts numbers", lambda c: parse_request(b'{"texts": [1]}', manifest_of(c), 10), ValueError, "list of strings"),
    ("field of another kind", lambda c: parse_request(b'{"texts": ["a"], "max_length": 4}', manifest_of(c), 10),
     ValueError, "max_length"),
    ("both text and texts", lambda c: parse_request(b'{"texts": ["a"], "text": "b"}', manifest_of(c), 10),
     ValueError, '{"texts": [...]}'),
]

QA, NER = {"kind": "question_answerer"}, {"kind": "token_classifier"}
SERVE_NER_QA = [
    ("ner: texts numbers", lambda c: parse_request(b'{"texts": [1]}', NER, 10), ValueError, "list of strings"),
    ("ner: a QA body", lambda c: parse_request(b'{"questions": ["a"], "contexts": ["b"]}', NER, 10), ValueError,
     "['contexts', 'questions'] are not fields of a token_classifier request"),
    ("qa: a NER body", lambda c: parse_request(b'{"texts": ["a"]}', QA, 10), ValueError, '{"questions": [...]}'),
    ("qa: questions without contexts", lambda c: parse_request(b'{"questions": ["a"]}', QA, 10), ValueError,
     '"questions" comes with "contexts"'),
    ("qa: question with contexts", lambda c: parse_request(b'{"question": "a", "contexts": ["b"]}', QA, 10),
     ValueError, '"question" with "context"'),
    ("qa: lengths differ", lambda c: parse_request(b'{"questions": ["a", "b"], "contexts": ["c"]}', QA, 10),
     ValueError, '"questions" has 2 items but "contexts" has 1'),
    ("qa: contexts a str", lambda c: parse_request(b'{"questions": ["a"], "contexts": "c"}', QA, 10), ValueError,
     '"contexts" must be a list'),
    ("qa: empty context", lambda c: parse_request(b'{"question": "a", "context": " "}', QA, 10), ValueError,
     '"contexts"[0] must be a non-empty string'),
    ("qa: question a number", lambda c: parse_request(b'{"questions": ["a", 3], "contexts": ["b", "c"]}', QA, 10),
     ValueError, '"questions"[1] must be a non-empty string'),
    ("qa: too many pairs", lambda c: parse_request(b'{"questions": ["a", "b"], "contexts": ["c", "d"]}', QA, 1),
     ValueError, "1 to 1"),
]

ROWS = [pytest.param(call, error, fragment, id=f"{layer}: {name}")
        for layer, table in (("export", EXPORT), ("verify", VERIFY), ("Predictor", PREDICTOR), ("serve", SERVE),
                             ("serve", SERVE_NER_QA))
        for name, call, error, fragment in table]


@pytest.mark.parametrize("call, error, fragment", ROWS)
def test_bad_input_is_refused_with_a_named_error(call, error, fragment, classifier, exported, tmp_path, monkeypatch):
    ctx = types.SimpleNamespace(classifier=classifier, exported=exported, tmp=tmp_path, monkeypatch=monkeypatch)
    with pytest.raises(error, match=re.escape(fragment)):
        result = call(ctx)
        if isinstance(result, Server):  # built when it should not have been: free its socket and thread
            result.close()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".export-")]  # nothing left behind


# === serve over HTTP: (raw request, status, fragment of the answer) ===

HTTP = [
    ("GET /predict", b"GET /predict HTTP/1.1\r\nHost: x\r\n\r\n", 405, b"Allow: POST"),
    ("POST /health", b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, b"Allow: GET"),
    ("unknown path", b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n", 404, b"/nothing"),
    ("negative Content-Length", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400,
     b"Content-Length must be 0 or more"),
    ("no Content-Length", b"POST /predict HTTP/1.1\r\nHost: x\r\n\r\n", 411, b"Content-Length"),
    ("body too large", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n", 413, b"limit"),
    ("body never sent", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n", 408,
     b"read_timeout_s"),
    ("body cut short", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"texts\"", 408,
     b"8 of 50 bytes"),
    ("bad JSON", b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n{not", 400, b"JSON"),
]


@pytest.fixture(scope="module")
def http_server(exported):
    server = Server(exported, host="127.0.0.1", port=0, max_request_bytes=1000, read_timeout_s=0.3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.close()
    thread.join(timeout=5)


@pytest.mark.parametrize("data, status, fragment", [pytest.param(*row[1:], id=row[0]) for row in HTTP])
def test_bad_http_requests_get_a_4xx_and_the_server_survives(http_server, data, status, fragment):
    with socket.create_connection(http_server.server_address[:2], timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while not answer.endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    assert fragment in answer, answer[:400]
    with socket.create_connection(http_server.server_address[:2], timeout=10) as connection:  # still answering
        connection.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert connection.recv(65536).startswith(b"HTTP/1.1 200")
