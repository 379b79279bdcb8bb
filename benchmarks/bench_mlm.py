"""Masked-LM pretraining throughput: keras_ptft `Bert` + `MaskedLM` vs keras-hub `BertMaskedLM`.

Same configuration (BERT tiny / mini, vocabulary 30,522, sequence 128, batch 32, 20 masked
positions per sequence, AdamW), measured in the same process, one process per backend, in
float32 and mixed bfloat16. Also measures our model with `jit_compile=True` against Keras'
default, and a square matmul in the same run for the model-FLOPs utilisation (MFU).

Method (as the project's reference anchors): `train_on_batch` on a fixed random batch; one first
call (tracing), `--warmup` calls, then `--rounds` rounds of `--steps` timed calls; the median
call time gives tokens/s (all 4,096 input tokens per step). Train FLOPs per token = 3 x the
forward matmul FLOPs (encoder projections + FFN, attention, MLM head on the masked positions).

Usage:
    python benchmarks/bench_mlm.py                       # every backend, one subprocess each
    python benchmarks/bench_mlm.py --backends tensorflow --sizes tiny
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
}
VOCAB, MAX_POSITIONS, MASKED = 30522, 512, 20


def train_flops_per_token(size: str, seq: int) -> float:
    c = SIZES[size]
    layers, d, f = c["num_layers"], c["hidden_dim"], c["intermediate_dim"]
    encoder = 2 * layers * (4 * d * d + 2 * d * f)
    attention = 2 * layers * 2 * seq * d
    head = 2 * (MASKED / seq) * (d * d + d * VOCAB)
    return 3.0 * (encoder + attention + head)


def timed(fn, warmup: int, steps: int, rounds: int) -> dict:
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds * steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"first_call_s": round(first, 2), "median_s": statistics.median(times)}


def worker(args) -> None:
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import keras_hub
    import numpy as np

    from keras_ptft.models import Bert
    from keras_ptft.tasks import MaskedLM

    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(5, VOCAB, (args.batch, args.seq)).astype("int32"),
        "segment_ids": np.zeros((args.batch, args.seq), "int32"),
        "padding_mask": np.ones((args.batch, args.seq), "int32"),
        "mask_positions": np.stack(
            [np.sort(rng.choice(args.seq, MASKED, replace=False)) for _ in range(args.batch)]
        ).astype("int32"),
    }
    y = rng.integers(0, VOCAB, (args.batch, MASKED)).astype("int32")
    w = np.ones((args.batch, MASKED), "float32")
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    tokens = args.batch * args.seq

    def matmul_flops(dtype: str) -> float:
        n = 1024
        a = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"), dtype)
        b = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"), dtype)
        result = timed(lambda: keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(a, b)[0, 0], "float32")), 2, 10, 1)
        return 2 * n**3 / result["median_s"]

    peaks = {"float32": matmul_flops("float32"), "mixed_bfloat16": matmul_flops("bfloat16")}
    print(json.dumps({"backend": args.backend, "matmul_gflops": {k: round(v / 1e9, 1) for k, v in peaks.items()}}),
          flush=True)

    for size in args.sizes:
        for policy in args.dtypes:
            keras.config.set_dtype_policy(policy)
            systems = [("keras_ptft", "auto"), ("keras_hub", "auto")]
            if args.jit_ab and policy == "float32" and args.backend != "torch":
                systems.append(("keras_ptft", True))
            for system, jit in systems:
                keras.utils.set_random_seed(0)
                if system == "keras_ptft":
                    backbone = Bert(vocabulary_size=VOCAB, max_sequence_length=MAX_POSITIONS, **SIZES[size])
                    model = MaskedLM(backbone, vocabulary=vocabulary, sequence_length=args.seq)
                    model.preprocessor = None  # token ids in, as keras-hub's side gets
                else:
                    backbone = keras_hub.models.BertBackbone(
                        vocabulary_size=VOCAB, max_sequence_length=MAX_POSITIONS, **SIZES[size]
                    )
                    model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
                model.compile(
                    optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    weighted_metrics=[],
                    jit_compile=jit,
                )
                result = timed(lambda: model.train_on_batch(x, y, sample_weight=w), args.warmup, args.steps,
                               args.rounds)
                tokens_per_s = tokens / result["median_s"]
                flops = tokens_per_s * train_flops_per_token(size, args.seq)
                print(json.dumps({
                    "backend": args.backend, "size": size, "dtype": policy, "system": system,
                    "jit_compile": jit, "tokens_per_s": round(tokens_per_s), **result,
                    "model_gflops": round(flops / 1e9, 1), "mfu": round(flops / peaks[policy], 3),
                    "loadavg": [round(v, 1) for v in os.getloadavg()],
                }), flush=True)
                del model, backbone
                keras.backend.clear_session()
            keras.config.set_dtype_policy("float32")


def report(records: list[dict]) -> None:
    print("\n| backend | size | dtype | keras_ptft tok/s | keras-hub tok/s | ratio | ptft MFU | ptft XLA tok/s |")
    print("|---|---|---|---|---|---|---|---|")
    rows = {}
    for r in records:
        if "size" in r:
            rows.setdefault((r["backend"], r["size"], r["dtype"]), {})[(r["system"], r["jit_compile"])] = r
    for (backend, size, dtype), row in rows.items():
        ours, hub, xla = row.get(("keras_ptft", "auto")), row.get(("keras_hub", "auto")), row.get(("keras_ptft", True))
        ratio = f"{ours['tokens_per_s'] / hub['tokens_per_s']:.2f}x" if ours and hub else "-"
        print(f"| {backend} | {size} | {dtype} | {ours['tokens_per_s'] if ours else '-'} | "
              f"{hub['tokens_per_s'] if hub else '-'} | {ratio} | {ours['mfu'] if ours else '-'} | "
              f"{xla['tokens_per_s'] if xla else '-'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # set in the per-backend subprocess
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=sorted(SIZES))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-jit-ab", dest="jit_ab", action="store_false",
                        help="skip the jit_compile=True measurement of keras_ptft")
    args = parser.parse_args()
    if args.backend:
        worker(args)
        return
    records = []
    for backend in args.backends:
        print(f"== {backend} ==", flush=True)
        command = [sys.executable, __file__, "--backend", backend, *sys.argv[1:]]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("{"):
                records.append(json.loads(line))
        process.wait()
    report(records)


if __name__ == "__main__":
    main()
