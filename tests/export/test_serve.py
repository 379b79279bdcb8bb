import http.client
import json
import threading

import numpy as np
import pytest

from keras_ptft.export import Predictor
from keras_ptft.export.serve import Server

from export_helpers import reference


class CountingPredictor:
    """Wraps a Predictor and records the size of every batch the server runs."""

    def __init__(self, predictor):
        self.predictor, self.batches = predictor, []
        self.manifest, self.format, self.label_names = predictor.manifest, predictor.format, predictor.label_names

    def predict(self, texts):
        self.batches.append(len(texts))
        return self.predictor.predict(texts)


@pytest.fixture
def server(exported):
    predictor = CountingPredictor(Predictor(exported, format="tflite_text"))
    server = Server.__new__(Server)
    Server.__init__(server, predictor.predictor, host="127.0.0.1", port=0, max_wait_ms=50, max_request_bytes=2000)
    server.batcher.predictor = predictor
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.close()
    thread.join(timeout=5)


def request(server, method, path, body=None, raw=None, headers=None):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    connection.request(method, path, body=data, headers=headers or {})
    response = connection.getresponse()
    payload = json.loads(response.read() or b"{}")
    connection.close()
    return response.status, payload


def test_health_predict_and_batching(server, exported, classifier):
    status, health = request(server, "GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["labels"] == ["negative", "positive"]
    texts = ["the film was wonderful", "boring 酒店", "très bien", "the film was dull"]
    status, body = request(server, "POST", "/predict", {"texts": texts})
    assert status == 200
    expected = reference(classifier, texts)
    np.testing.assert_allclose([p["probabilities"] for p in body["predictions"]], expected, atol=1e-5)
    assert [p["label"] for p in body["predictions"]] == expected.argmax(-1).tolist()
    # Concurrent single-text requests share batches.
    server.batcher.predictor.batches.clear()
    results = [None] * 8
    def call(i):
        results[i] = request(server, "POST", "/predict", {"text": texts[i % 4]})
    threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
    [thread.start() for thread in threads]
    [thread.join() for thread in threads]
    assert all(status == 200 for status, _ in results)
    for i, (_, body) in enumerate(results):
        assert body["predictions"][0]["label"] == int(expected[i % 4].argmax())
    assert sum(server.batcher.predictor.batches) == 8 and len(server.batcher.predictor.batches) < 8


def test_bad_requests_get_4xx_and_the_server_survives(server):
    assert request(server, "POST", "/predict", raw=b"{not json")[0] == 400
    assert request(server, "POST", "/predict", raw=b"\xff\xfe")[0] == 400
    assert request(server, "POST", "/predict", {"texts": "a string, not a list"})[0] == 400
    assert request(server, "POST", "/predict", {"texts": [1, 2]})[0] == 400
    assert request(server, "POST", "/predict", {"texts": []})[0] == 400
    assert request(server, "POST", "/predict", ["texts"])[0] == 400
    status, body = request(server, "POST", "/predict", {"images": [[[0]]]})
    assert status == 400 and '{"texts": [...]}' in body["error"] and "images" in body["error"]
    status, body = request(server, "POST", "/predict", {"texts": ["a"], "max_length": 4})
    assert status == 400 and "max_length" in body["error"]
    assert request(server, "POST", "/predict", {"texts": ["x" * 5000]})[0] == 413
    assert request(server, "GET", "/nothing")[0] == 404
    assert request(server, "POST", "/health", {})[0] == 405
    status, body = request(server, "POST", "/predict", {"text": "still alive"})
    assert status == 200 and len(body["predictions"]) == 1
