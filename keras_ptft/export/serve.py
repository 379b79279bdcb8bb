"""`keras-ptft serve`: an HTTP JSON endpoint over a `Predictor`, with request batching.

Standard library only (`http.server`): one thread per connection parses and checks the request,
then hands its inputs to a single batching thread that runs the model on everything that arrived
within `max_wait_ms` (up to `max_batch_size` inputs; requests with different options, such as a
causal LM's `max_length`, run in separate batches). A bad request gets a 4xx answer and never
reaches the model; inputs the model itself rejects (a prompt too long for the export) answer 400
for their request only; an error inside the model answers 500; the server keeps running.

Endpoints:
    GET  /health   → {"status": "ok", "kind": ..., "format": ..., "labels": [...], "input": field, ...}
    POST /predict  (one body per kind of export; "text", "prompt", "image" take one input)

    text classifier   {"texts": ["...", ...]}
                      → {"predictions": [{"label": 1, "label_name": "positive",
                                          "probabilities": [0.1, 0.9]}, ...]}
    masked LM         {"texts": ["the cat sat on the [MASK]", ...]}  (every text has a [MASK])
                      → {"predictions": [{"masks": [[{"token": "mat", "probability": 0.4}, ...top k],
                                                     ...one list per [MASK]]}, ...]}
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

import base64
import binascii
import json
import queue
import threading
from concurrent.futures import Future
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from keras_ptft.export.predictor import Predictor

IMAGE_KINDS = ("image_classifier", "image_segmenter")
# The field holding a request's inputs (plural, and its one-input singular) per kind of export.
INPUT_FIELDS = {"text_classifier": ("texts", "text"), "masked_lm": ("texts", "text"),
                "causal_lm": ("prompts", "prompt"), "image_classifier": ("images", "image"),
                "image_segmenter": ("images", "image")}
# Request options per kind, besides the inputs.
OPTION_FIELDS = {"causal_lm": ("max_length",), "image_segmenter": ("mask_format", "return_probabilities")}


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
            future.set_result({key: value[start:end] for key, value in outputs.items()})
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

    def do_GET(self):
        if self.path != "/health":
            return self._error(HTTPStatus.NOT_FOUND, f"unknown path {self.path!r}; use GET /health or POST /predict")
        self._reply(HTTPStatus.OK, health(self.server.batcher.predictor))

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
        predictor = self.server.batcher.predictor
        try:
            inputs, options = parse_request(body, predictor.manifest, self.server.max_texts)
        except ValueError as error:
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        predict_options = {key: value for key, value in options.items() if key == "max_length"}
        try:
            outputs = self.server.batcher.submit(inputs, predict_options).result(timeout=self.server.timeout_s)
        except ValueError as error:  # the model rejected this request's inputs
            return self._error(HTTPStatus.BAD_REQUEST, str(error))
        except Exception as error:
            return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"prediction failed: {type(error).__name__}: {error}")
        self._reply(HTTPStatus.OK, {"predictions": format_predictions(predictor, inputs, outputs, options)})


def health(predictor) -> dict:
    """The /health answer: kind, format, class names and what a request must hold."""
    manifest = predictor.manifest
    kind = manifest["kind"]
    answer = {"status": "ok", "kind": kind, "format": predictor.format, "labels": predictor.label_names,
              "input": INPUT_FIELDS.get(kind, ("texts",))[0]}
    if kind in IMAGE_KINDS:
        answer["image_shape"] = manifest["raw_input"]["images"]["shape"][1:]
    if kind == "causal_lm":
        answer["max_length"] = manifest["generation"]["max_length"]
    return answer


def parse_request(body: bytes, manifest: dict, max_items: int) -> tuple:
    """A request body → (inputs for `Predictor.predict`, request options), or a ValueError saying
    what is wrong (answered as a 400)."""
    kind = manifest["kind"]
    plural, singular = INPUT_FIELDS.get(kind, ("texts", "text"))
    allowed = (plural, singular, *OPTION_FIELDS.get(kind, ()))
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
    options = {name: request[name] for name in OPTION_FIELDS.get(kind, ()) if name in request}
    if kind in IMAGE_KINDS:
        inputs = np.stack([decode_image(item, manifest["raw_input"]["images"]["shape"][1:], f"{plural}[{i}]")
                           for i, item in enumerate(items)])
    else:
        if not all(isinstance(item, str) for item in items):
            raise ValueError(f'"{plural}" must be a list of strings ("{singular}" a string)')
        inputs = items
    if kind == "masked_lm":
        from keras_ptft.export.masked_lm import MASK_TOKEN

        for i, text in enumerate(items):
            if MASK_TOKEN not in text:
                raise ValueError(f'"{plural}"[{i}] has no {MASK_TOKEN} to fill: {text!r:.80}')
    if "max_length" in options:
        limit = manifest["generation"]["max_length"]
        value = options["max_length"]
        if not isinstance(value, int) or isinstance(value, bool) or not 2 <= value <= limit:
            raise ValueError(f'"max_length" must be an integer from 2 to {limit} (this export generates up to '
                             f"{limit} tokens), received {value!r}")
    if options.get("mask_format", "list") not in ("list", "png"):
        raise ValueError(f'"mask_format" must be "list" or "png", received {options["mask_format"]!r}')
    if not isinstance(options.get("return_probabilities", False), bool):
        raise ValueError(f'"return_probabilities" must be true or false, received {options["return_probabilities"]!r}')
    return inputs, options


def decode_image(item, image_shape, where: str) -> np.ndarray:
    """One request image (base64 PNG/JPEG or nested uint8 lists) as a uint8 `image_shape` array."""
    image_shape = tuple(image_shape)
    if isinstance(item, str):
        import tensorflow as tf

        data = item.split(",", 1)[1] if item.startswith("data:") else item
        try:
            encoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"{where} is not valid base64 (expected a base64 PNG or JPEG)") from None
        try:
            image = tf.io.decode_image(encoded, expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, ValueError):
            raise ValueError(f"{where} is base64 but not a PNG or JPEG image") from None
        source = "decoded image"
    elif isinstance(item, list):
        try:
            image = np.array(item)
        except ValueError:  # ragged rows
            raise ValueError(f"{where} must be nested lists of equal length (height x width x channels)") from None
        if image.dtype.kind not in "iu" or (image.size and (image.min() < 0 or image.max() > 255)):
            raise ValueError(f"{where} must hold integers 0-255 (uint8 pixels)")
        image = image.astype(np.uint8)
        if image.ndim == 2 and image_shape[2] == 1:
            image = image[..., None]
        source = "nested list"
    else:
        raise ValueError(f"{where} must be a base64 PNG/JPEG string or nested lists of uint8, "
                         f"received {type(item).__name__}")
    if image.shape != image_shape:
        if image.ndim == 3 and image.shape[:2] == image_shape[:2]:
            raise ValueError(f"{where} has {image.shape[2]} channel(s); the model takes {image_shape[2]} "
                             f"(image shape {list(image_shape)})")
        raise ValueError(f"{where} ({source}) has shape {list(image.shape)}; the model takes {list(image_shape)}")
    return image


def format_predictions(predictor, inputs, outputs: dict, options: dict) -> list[dict]:
    """`Predictor.predict` outputs → the JSON predictions of one request (see the module docstring)."""
    kind = predictor.manifest["kind"]
    if kind == "causal_lm":
        return [{"prompt": prompt, "text": text} for prompt, text in zip(inputs, outputs["texts"])]
    if kind == "masked_lm":
        return [{"masks": [[{"token": str(token), "probability": float(p)}
                            for token, p in zip(outputs["tokens"][row, slot], outputs["probabilities"][row, slot])]
                           for slot in range(int(outputs["mask_count"][row]))]}
                for row in range(len(inputs))]
    if kind == "image_segmenter":
        from keras_ptft.export.segmenter_kind import encode_mask_png, pixel_counts

        predictions = []
        for row, counts in enumerate(pixel_counts(outputs["labels"], predictor.label_names)):
            mask = outputs["labels"][row]
            prediction = {"mask": base64.b64encode(encode_mask_png(mask)).decode("ascii")
                          if options.get("mask_format") == "png" else mask.tolist(),
                          "pixel_counts": counts}
            if options.get("return_probabilities"):
                prediction["probabilities"] = outputs["probabilities"][row].tolist()
            predictions.append(prediction)
        return predictions
    return [{"label": int(label), "label_name": name, "probabilities": [float(p) for p in probabilities]}
            for label, name, probabilities in zip(outputs["labels"], outputs["label_names"], outputs["probabilities"])]


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
