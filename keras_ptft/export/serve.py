"""`keras-ptft serve`: an HTTP JSON endpoint over a `Predictor`, with request batching.

Standard library only (`http.server`): one thread per connection parses and checks the request,
then hands its texts to a single batching thread that runs the model on everything that arrived
within `max_wait_ms` (up to `max_batch_size` texts). A bad request gets a 4xx answer and never
reaches the model; an error inside the model answers 500 and the server keeps running.

Endpoints:
    GET  /health   → {"status": "ok", "kind": ..., "format": ..., "labels": [...]}
    POST /predict  {"texts": ["...", ...]} or {"text": "..."}
                   → {"predictions": [{"label": 1, "label_name": "positive",
                                        "probabilities": [0.1, 0.9]}, ...]}
"""

from __future__ import annotations

import json
import queue
import threading
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from keras_ptft.export.predictor import Predictor


class BatchingPredictor:
    """Runs `predictor.predict` on one thread over batches gathered from many callers.

    Args:
        predictor: a `Predictor`.
        max_batch_size: int. Most texts run together.
        max_wait_ms: float. How long the first text of a batch waits for others.
    """

    def __init__(self, predictor: Predictor, max_batch_size: int = 32, max_wait_ms: float = 5.0):
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="keras-ptft-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: list[str]) -> Future:
        future: Future = Future()
        self._queue.put((texts, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            size = len(item[0])
            while size < self.max_batch_size:
                try:
                    item = self._queue.get(timeout=self.max_wait)
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                batch.append(item)
                size += len(item[0])
            texts = [text for request, _ in batch for text in request]
            try:
                outputs = self.predictor.predict(texts)
            except Exception as error:  # answered as a 500; the loop must survive
                for _, future in batch:
                    future.set_exception(error)
                continue
            start = 0
            for request, future in batch:
                end = start + len(request)
                future.set_result({key: value[start:end] for key, value in outputs.items()})
                start = end


class _Handler(BaseHTTPRequestHandler):
    server_version = "keras-ptft"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test and benchmark output quiet
        if self.server.verbose:
            super().log_message(format, *args)

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error": message})

    def do_GET(self):
        if self.path != "/health":
            return self._error(HTTPStatus.NOT_FOUND, f"unknown path {self.path!r}; use GET /health or POST /predict")
        predictor = self.server.batcher.predictor
        self._reply(HTTPStatus.OK, {"status": "ok", "kind": predictor.manifest["kind"],
                                    "format": predictor.format, "labels": predictor.label_names})

    def do_POST(self):
        if self.path != "/predict":
            return self._error(HTTPStatus.NOT_FOUND, f"unknown path {self.path!r}; use POST /predict")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
        if length < 0 or length > self.server.max_request_bytes:
            self.close_connection = True  # the body is left unread
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes; the limit is {self.server.max_request_bytes}")
        body = self.rfile.read(length)
        try:
            texts = _parse(body, self.server.max_texts)
        except ValueError as error:
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        try:
            outputs = self.server.batcher.submit(texts).result(timeout=self.server.timeout_s)
        except Exception as error:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"prediction failed: {type(error).__name__}: {error}")
        predictions = [
            {"label": int(label), "label_name": name, "probabilities": [float(p) for p in probabilities]}
            for label, name, probabilities in zip(outputs["labels"], outputs["label_names"], outputs["probabilities"])
        ]
        self._reply(HTTPStatus.OK, {"predictions": predictions})


def _parse(body: bytes, max_texts: int) -> list[str]:
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the body is not valid UTF-8 JSON: {error}") from None
    if not isinstance(request, dict) or ("texts" in request) == ("text" in request):
        raise ValueError('the body must be a JSON object with "texts": [str, ...] or "text": str')
    texts = request["texts"] if "texts" in request else [request["text"]]
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise ValueError('"texts" must be a list of strings ("text" a string)')
    if not texts or len(texts) > max_texts:
        raise ValueError(f'"texts" must hold 1 to {max_texts} strings, received {len(texts)}')
    return texts


class Server(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` runs it, `close()` stops it and its batching thread.

    Args:
        predictor: a `Predictor`, or the path of an export folder.
        host: str. Interface to listen on; the default answers this machine only.
        port: int. 0 picks a free port (see `server_address`).
        max_batch_size: int. Most texts the model runs at once.
        max_wait_ms: float. How long a request waits for others to share its batch.
        max_request_bytes: int. Larger bodies are refused with 413.
        max_texts: int. Most texts in one request.

    Example:
    ```python
    server = Server("saved_models/sentiment", port=8000)
    server.serve_forever()   # POST {"texts": ["a fine film"]} to http://127.0.0.1:8000/predict
    ```
    """

    daemon_threads = True

    def __init__(self, predictor, host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, max_request_bytes: int = 1 << 20, max_texts: int = 256,
                 timeout_s: float = 60.0, verbose: bool = False):
        if not isinstance(predictor, Predictor):
            predictor = Predictor(predictor)
        self.batcher = BatchingPredictor(predictor, max_batch_size, max_wait_ms)
        self.max_request_bytes = int(max_request_bytes)
        self.max_texts = int(max_texts)
        self.timeout_s = timeout_s
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        self._running = True
        try:
            super().serve_forever(poll_interval)
        finally:
            self._running = False

    def close(self) -> None:
        if getattr(self, "_running", False):  # `shutdown` waits forever if the loop never ran
            self.shutdown()
        self.server_close()
        self.batcher.close()
