"""`keras-ptft serve`: an HTTP JSON endpoint over a `Predictor`, with request batching.

Standard library only (`http.server`): one thread per connection parses and checks the request,
then hands its inputs to a single batching thread that runs the model on everything that arrived
within `max_wait_ms` (up to `max_batch_size` inputs; requests with different options, such as a
causal LM's `max_length`, run in separate batches). A bad request gets a 4xx answer and never
reaches the model; inputs the model itself rejects (a prompt too long for the export) answer 400
for their request only; an error inside the model answers 500; the server keeps running.
Limits: bodies over `max_request_bytes` answer 413, a negative Content-Length 400, a client that
stalls mid-request longer than `read_timeout_s` 408 (its thread is freed), a wrong method 405
with an `Allow` header. How each kind of export reads a request and answers it is its
`KindRunner`'s (`export/kinds/`), found through the kind registry.

Endpoints:
    GET  /health   → {"status": "ok", "kind": ..., "format": ..., "labels": [...], "input": field,
                      "read_timeout_s": 10.0, ...}
    POST /predict  (one body per kind of export; "text", "prompt", "image" take one input)

    text classifier   {"texts": ["...", ...]}
                      → {"predictions": [{"label": 1, "label_name": "positive",
                                          "probabilities": [0.1, 0.9]}, ...]}
    masked LM         {"texts": ["the cat sat on the [MASK]", ...]}  (every text has a [MASK])
                      → {"predictions": [{"masks": [[{"token": "mat", "probability": 0.4}, ...top k],
                                                     ...one list per [MASK]]}, ...]}
    token classifier  {"texts": ["Angela Merkel spoke", ...]}
                      → {"predictions": [{"entities": [{"text": "Angela Merkel", "label": "PER",
                                                        "start": 0, "end": 13}, ...]}, ...]}
    question answerer {"questions": ["who spoke?", ...], "contexts": ["Angela Merkel spoke", ...]}
                      (or "question" and "context" for one pair)
                      → {"predictions": [{"text": "Angela Merkel", "start": 0, "end": 13,
                                          "score": 2.1}, ...]}  (text "" for no answer)
    causal LM         {"prompts": ["once upon", ...], "max_length": 32}  (max_length optional, at
                      most the export's) → {"predictions": [{"prompt": "once upon",
                                                             "text": "once upon a time ..."}, ...]}
    image classifier  {"images": [IMAGE, ...]} → as the text classifier
    image segmenter   {"images": [IMAGE, ...], "mask_format": "list" | "png",
                       "return_probabilities": false}
                      → {"predictions": [{"mask": [[0, 0, 2, ...], ...] (class id per pixel) or
                                          base64 PNG (pixel value = class id),
                                          "pixel_counts": {"background": 180, ...},
                                          "probabilities": [[[...classes], ...], ...] if asked}, ...]}

    IMAGE is a base64 PNG or JPEG (a `data:image/...;base64,` prefix is allowed) or nested lists
    of uint8 `[height][width][channels]` (`[height][width]` for one-channel models); its shape
    must be the export's `image_shape` (no resizing or channel conversion behind the caller's back).
"""

from __future__ import annotations

import json
import socket
import queue
import threading
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from keras_ptft.export.base import kind_named
from keras_ptft.export.predictor import Predictor



def _runner(manifest: dict):
    """The `KindRunner` class of an export: how its requests are read and answered."""
    return kind_named(manifest["kind"]).runner


class BatchingPredictor:
    """Runs `predictor.predict` on one thread over batches gathered from many callers.

    Args:
        predictor: a `Predictor`.
        max_batch_size: int. Most inputs run together.
        max_wait_ms: float. How long the first input of a batch waits for others.
    """

    def __init__(self, predictor: Predictor, max_batch_size: int = 32, max_wait_ms: float = 5.0):
        self.predictor = predictor
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="keras-ptft-batcher", daemon=True)
        self._thread.start()

    def submit(self, inputs, options: dict | None = None) -> Future:
        """Queues `inputs` (a list of str, or a uint8 image array); `options` go to `predict`."""
        future: Future = Future()
        self._queue.put((inputs, dict(options or {}), future))
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
            groups: dict = {}
            for request in batch:  # one `predict` call per set of options
                groups.setdefault(json.dumps(request[1], sort_keys=True), []).append(request)
            for requests in groups.values():
                self._run(requests)

    def _run(self, requests) -> None:
        try:
            outputs = self.predictor.predict(_join([inputs for inputs, _, _ in requests]), **requests[0][1])
        except ValueError as error:
            if len(requests) > 1:  # one request's bad input must not fail the others: run each alone
                for request in requests:
                    self._run([request])
                return
            requests[0][2].set_exception(error)
            return
        except Exception as error:  # answered as a 500; the loop must survive
            for _, _, future in requests:
                future.set_exception(error)
            return
        start = 0
        for inputs, _, future in requests:
            end = start + len(inputs)
            # A dict of arrays, or one list item per input (token classifiers, question answerers).
            future.set_result(outputs[start:end] if isinstance(outputs, list) else
                              {key: value[start:end] for key, value in outputs.items()})
            start = end


def _join(inputs: list):
    if isinstance(inputs[0], np.ndarray):
        return np.concatenate(inputs)
    return [item for request in inputs for item in request]


class _Handler(BaseHTTPRequestHandler):
    server_version = "keras-ptft"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test and benchmark output quiet
        if self.server.verbose:
            super().log_message(format, *args)

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._reply(status, {"error": message})

    def setup(self) -> None:
        # A socket timeout on every read: a client that declares a body and never sends it (or
        # never finishes its headers) frees its thread after `read_timeout_s` instead of holding it.
        self.timeout = self.server.read_timeout_s
        super().setup()

    def _wrong_method(self, allowed: str) -> None:
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        data = json.dumps({"error": f"{self.command} {self.path} is not supported; use {allowed} {self.path}"}).encode()
        self.send_header("Allow", allowed)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/predict":
            return self._wrong_method("POST")
        if self.path != "/health":
            return self._error(HTTPStatus.NOT_FOUND, f"unknown path {self.path!r}; use GET /health or POST /predict")
        self._reply(HTTPStatus.OK, health(self.server.batcher.predictor, self.server.read_timeout_s))

    def do_POST(self):
        if self.path == "/health":
            self.close_connection = True  # the body, if any, is left unread
            return self._wrong_method("GET")
        if self.path != "/predict":
            self.close_connection = True
            return self._error(HTTPStatus.NOT_FOUND, f"unknown path {self.path!r}; use POST /predict")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._error(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header (a whole number) is required")
        if length < 0:
            self.close_connection = True
            return self._error(HTTPStatus.BAD_REQUEST, f"Content-Length must be 0 or more, received {length}")
        if length > self.server.max_request_bytes:
            self.close_connection = True  # the body is left unread
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes; the limit is {self.server.max_request_bytes}")
        body = b""
        try:  # chunk by chunk, so a stalled client's partial body is still counted in the answer
            while len(body) < length:
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    break
                body += chunk
        except (TimeoutError, socket.timeout):
            pass
        if len(body) < length:
            self.close_connection = True
            return self._error(HTTPStatus.REQUEST_TIMEOUT,
                               f"the body ended or stalled after {len(body)} of {length} bytes (Content-Length); "
                               f"the server waits at most read_timeout_s={self.server.read_timeout_s} s per read")
        predictor = self.server.batcher.predictor
        try:
            inputs, options = parse_request(body, predictor.manifest, self.server.max_texts)
        except ValueError as error:
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        predict_options = {key: value for key, value in options.items()
                           if key in _runner(predictor.manifest).predict_options}
        try:
            outputs = self.server.batcher.submit(inputs, predict_options).result(timeout=self.server.timeout_s)
        except ValueError as error:  # the model rejected this request's inputs
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        except Exception as error:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"prediction failed: {type(error).__name__}: {error}")
        self._reply(HTTPStatus.OK, {"predictions": format_predictions(predictor, inputs, outputs, options)})


def health(predictor, read_timeout_s: float | None = None) -> dict:
    """The /health answer: kind, format, class names, what a request must hold and the server's limits."""
    manifest = predictor.manifest
    runner = _runner(manifest)
    answer = {"status": "ok", "kind": manifest["kind"], "format": predictor.format, "labels": predictor.label_names,
              "input": runner.input_fields[0], **runner.health(manifest)}
    if read_timeout_s is not None:
        answer["read_timeout_s"] = read_timeout_s
    return answer


def parse_request(body: bytes, manifest: dict, max_items: int) -> tuple:
    """A request body → (inputs for `Predictor.predict`, request options), or a ValueError saying
    what is wrong (answered as a 400)."""
    kind = manifest["kind"]
    runner = _runner(manifest)
    plural, singular = runner.input_fields
    allowed = (plural, singular, *runner.pair_fields, *runner.option_fields)
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the body is not valid UTF-8 JSON: {error}") from None
    example = f'{{"{plural}": [...]}} or {{"{singular}": ...}}'
    if not isinstance(request, dict) or (plural in request) == (singular in request):
        other = sorted(set(request) - set(allowed)) if isinstance(request, dict) else []
        hint = f"; {other} are not fields of a {kind} request" if other else ""
        raise ValueError(f"the body must be a JSON object with {example}{hint}")
    unknown = sorted(set(request) - set(allowed))
    if unknown:
        raise ValueError(f"{unknown} are not fields of a {kind} request; it takes {list(allowed)}")
    items = request[plural] if plural in request else [request[singular]]
    if not isinstance(items, list):
        raise ValueError(f'"{plural}" must be a list ("{singular}" one item)')
    if not items or len(items) > max_items:
        raise ValueError(f'"{plural}" must hold 1 to {max_items} items, received {len(items)}')
    if runner.pair_fields:
        items = _paired_items(request, items, (plural, singular), runner.pair_fields)
    options = {name: request[name] for name in runner.option_fields if name in request}
    runner.check_options(options, manifest)
    return runner.parse_items(items, plural, manifest), options


def _paired_items(request: dict, items: list, fields: tuple, pair_fields: tuple) -> list[tuple]:
    """The inputs of a two-field request (QA's "questions" and "contexts") as pairs, or a ValueError."""
    (plural, singular), (pair_plural, pair_singular) = fields, pair_fields
    many = plural in request
    expected, other = (pair_plural, pair_singular) if many else (pair_singular, pair_plural)
    if other in request or expected not in request:
        raise ValueError(f'"{plural}" comes with "{pair_plural}" (lists of the same length), "{singular}" with '
                         f'"{pair_singular}"; received the fields {sorted(request)}')
    partners = request[expected] if many else [request[expected]]
    if not isinstance(partners, list):
        raise ValueError(f'"{pair_plural}" must be a list ("{pair_singular}" one item)')
    if len(partners) != len(items):
        raise ValueError(f'"{plural}" has {len(items)} items but "{pair_plural}" has {len(partners)}; give one '
                         f'{pair_singular} per {singular}')
    return list(zip(items, partners))


def format_predictions(predictor, inputs, outputs: dict, options: dict) -> list[dict]:
    """`Predictor.predict` outputs → the JSON predictions of one request (see the module docstring)."""
    return _runner(predictor.manifest).format_predictions(inputs, outputs, options, predictor.label_names)


class Server(ThreadingHTTPServer):
    """The HTTP server; `serve_forever()` runs it, `close()` stops it and its batching thread.

    Args:
        predictor: a `Predictor`, or the path of an export folder.
        host: str. Interface to listen on; the default answers this machine only.
        port: int. 0 picks a free port (see `server_address`).
        max_batch_size: int. Most inputs the model runs at once.
        max_wait_ms: float. How long a request waits for others to share its batch.
        max_request_bytes: int. Larger bodies are refused with 413.
        max_texts: int. Most inputs (texts, prompts or images) in one request.
        timeout_s: float. Longest wait for a prediction before answering 500.
        read_timeout_s: float. Longest wait for each read from a client (request line, headers,
            body); a client that stalls longer gets 408 (or, before its headers, a closed
            connection) and frees its thread. Shown in `/health`.
        verbose: bool. Log every request.

    Example:
    ```python
    server = Server("saved_models/sentiment", port=8000)
    server.serve_forever()   # POST {"texts": ["a fine film"]} to http://127.0.0.1:8000/predict
    ```
    """

    daemon_threads = True

    def __init__(self, predictor, host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 32,
                 max_wait_ms: float = 5.0, max_request_bytes: int = 1 << 20, max_texts: int = 256,
                 timeout_s: float = 60.0, read_timeout_s: float = 10.0, verbose: bool = False):
        limits = {"max_batch_size": max_batch_size, "max_wait_ms": max_wait_ms, "max_request_bytes": max_request_bytes,
                  "max_texts": max_texts, "timeout_s": timeout_s, "read_timeout_s": read_timeout_s}
        for name, value in limits.items():  # checked before any thread or socket exists
            integer = name in ("max_batch_size", "max_request_bytes", "max_texts")
            number = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
            if not number or value < 0 or (value == 0 and name != "max_wait_ms"):
                raise ValueError(f"`{name}` must be a positive {'integer' if integer else 'number'}, received "
                                 f"{value!r}.")
        if not isinstance(predictor, Predictor):
            predictor = Predictor(predictor)
        self.batcher = BatchingPredictor(predictor, max_batch_size, max_wait_ms)
        self.max_request_bytes = max_request_bytes
        self.max_texts = max_texts
        self.timeout_s = timeout_s
        self.read_timeout_s = float(read_timeout_s)
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
