"""Export benchmark: size, batch-1 latency and accuracy of each artifact; `serve` throughput.

For two classifiers: the quickstart one (a tiny BERT trained on the embedded classification task)
and an SST-2 one (a tiny BERT trained from scratch on `../shared/data/sst2`, scored on its dev set).
Artifacts: Keras, SavedModel, TFLite fp32 (token ids in, and raw strings in), fp16, dynamic-range
int8 and full int8, and ONNX (onnxruntime, 1 thread, tokenized in Python). Prints a Markdown table.

    python benchmarks/bench_export.py            # both models
    python benchmarks/bench_export.py --fast     # smaller training, fewer latency samples
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import statistics
import tempfile
import threading
import time

import numpy as np

import keras
import keras_ptft as kp
from keras_ptft.export.serve import Server

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


def read_sst2(split, limit=None):
    with gzip.open(os.path.join(DATA, "sst2", f"{split}.tsv.gz"), "rt", encoding="utf-8") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle][1:]
    rows = rows[:limit] if limit else rows
    return [text.strip() for text, _ in rows], np.array([int(label) for _, label in rows], "int32")


def train_classifier(train_texts, train_labels, label_names, vocabulary_size, sequence_length, epochs, seed=0):
    keras.utils.set_random_seed(seed)
    vocabulary = kp.data.train_wordpiece(train_texts, vocabulary_size=vocabulary_size)
    backbone = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocabulary), max_sequence_length=sequence_length)
    classifier = kp.recipes.text_classifier(backbone, len(label_names), vocabulary=vocabulary,
                                            sequence_length=sequence_length, learning_rate=1e-3,
                                            label_names=label_names)
    classifier.fit(train_texts, train_labels, batch_size=32, epochs=epochs, verbose=2)
    return classifier


def latency(fn, texts, samples):
    times = []
    for text in texts[:samples]:
        start = time.perf_counter()
        fn(text)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def serve_throughput(path, texts, clients=8, requests_per_client=25):
    server = Server(path, host="127.0.0.1", port=0, max_batch_size=32, max_wait_ms=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    errors = []

    def client(index):
        connection = http.client.HTTPConnection(host, port, timeout=60)
        for i in range(requests_per_client):
            body = json.dumps({"text": texts[(index * requests_per_client + i) % len(texts)]})
            connection.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                errors.append(response.status)
        connection.close()

    start = time.perf_counter()
    workers = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    [worker.start() for worker in workers]
    [worker.join() for worker in workers]
    elapsed = time.perf_counter() - start
    server.close()
    thread.join(timeout=5)
    return clients * requests_per_client / elapsed, len(errors)


def benchmark(name, classifier, dev_texts, dev_labels, calibration, samples, workdir):
    rows = []
    # `predict_on_batch` tokenizes raw strings itself (a keras-hub Task) and skips `predict`'s
    # per-call tf.data pipeline: the fair Keras batch-1 baseline.
    keras_fn = lambda text: classifier.predict_on_batch([text])  # noqa: E731
    keras_fn(dev_texts[0])
    probabilities = np.concatenate([np.asarray(classifier.predict_on_batch(dev_texts[i:i + 64]))
                                    for i in range(0, len(dev_texts), 64)])
    keras_size = None
    variants = [("float", None, ["saved_model", "tflite", "tflite_text", "onnx"]), ("fp16", "float16", ["tflite"]),
                ("dynamic_int8", "dynamic_int8", ["tflite", "tflite_text"]), ("int8", "int8", ["tflite"])]
    keras_accuracy = float(np.mean(probabilities.argmax(-1) == dev_labels))
    median, p95 = latency(keras_fn, dev_texts, samples)
    rows.append([name, "keras", "-", median, p95, keras_accuracy, 1.0, 0.0])
    for label, quantization, formats in variants:
        path = os.path.join(workdir, f"{name}_{label}")
        print(f"\n=== {name}: export {label} {formats}", flush=True)
        kp.export.export(classifier, path, formats=formats, quantization=quantization,
                         representative_data=calibration if quantization == "int8" else None,
                         verify_data=dev_texts[:200], overwrite=True, min_label_agreement=0.0,
                         save_keras=keras_size is None)
        manifest = json.load(open(os.path.join(path, "manifest.json")))
        if keras_size is None:
            keras_size = os.path.getsize(os.path.join(path, "model.keras"))
            rows[0][2] = keras_size
        for format in formats:
            predictor = kp.export.Predictor(path, format=format)
            predictor.predict([dev_texts[0]])
            outputs = np.concatenate([predictor.predict(dev_texts[i:i + 64])["probabilities"]
                                      for i in range(0, len(dev_texts), 64)])
            median, p95 = latency(lambda text: predictor.predict([text]), dev_texts, samples)
            rows.append([name, f"{format} {label}", manifest["artifacts"][format]["bytes"], median, p95,
                         float(np.mean(outputs.argmax(-1) == dev_labels)),
                         float(np.mean(outputs.argmax(-1) == probabilities.argmax(-1))),
                         float(np.abs(outputs - probabilities).max())])
    throughput, errors = serve_throughput(os.path.join(workdir, f"{name}_float"), dev_texts)
    return rows, (name, throughput, errors)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--models", nargs="+", default=["quickstart", "sst2"])
    parser.add_argument("--data-dir", default=None, help="the shared data folder (default: <repo>/../shared/data)")
    args = parser.parse_args()
    global DATA
    DATA = args.data_dir or DATA
    samples = 50 if args.fast else 200
    results, serving = [], []
    with tempfile.TemporaryDirectory() as workdir:
        if "quickstart" in args.models:
            task = kp.data.load_embedded_classification(seed=0)
            classifier = train_classifier(task.train_texts, np.asarray(task.train_labels, "int32"), task.label_names,
                                          2000, 64, 3 if args.fast else 6)
            rows, serve = benchmark("quickstart", classifier, list(task.test_texts),
                                    np.asarray(task.test_labels), list(task.train_texts[:200]), samples, workdir)
            results += rows
            serving.append(serve)
        if "sst2" in args.models:
            if not os.path.isdir(os.path.join(DATA, "sst2")):
                raise SystemExit(f"SST-2 not found under {DATA}")
            train_texts, train_labels = read_sst2("train", 8000 if args.fast else 30000)
            dev_texts, dev_labels = read_sst2("dev")
            classifier = train_classifier(train_texts, train_labels, ["negative", "positive"], 4000, 64,
                                          1 if args.fast else 3)
            rows, serve = benchmark("sst2", classifier, dev_texts, dev_labels, train_texts[:200], samples, workdir)
            results += rows
            serving.append(serve)
    print("\n| model | artifact | size (bytes) | batch-1 median ms | p95 ms | accuracy | label agreement | max abs diff |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, artifact, size, median, p95, accuracy, agreement, diff in results:
        print(f"| {name} | {artifact} | {size} | {median:.2f} | {p95:.2f} | {accuracy:.4f} | {agreement:.4f} | {diff:.2e} |")
    print("\n| model | serve throughput (req/s, 8 clients, 1 text each) | errors |")
    print("| --- | --- | --- |")
    for name, throughput, errors in serving:
        print(f"| {name} | {throughput:.1f} | {errors} |")


if __name__ == "__main__":
    main()
