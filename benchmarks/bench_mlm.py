"""Masked-LM pretraining throughput: keras_ptft `Bert` + `MaskedLM` vs keras-hub `BertMaskedLM`.

Same configuration (BERT tiny / mini, vocabulary 30,522, sequence 128, batch 32, 20 masked
positions per sequence, AdamW), measured in the same process, one process per backend, in
float32 and mixed bfloat16. With `--jit-ab`, TensorFlow also times both with `jit_compile=True`.
A 2048 x 2048 float32 matmul is timed in the same rounds: the roof for the model-FLOPs
utilisation (MFU; bfloat16 rows are set against the same float32 roof, as in the anchors).

Method (as the project's reference anchors): `train_on_batch` on a fixed random batch; one first
call (tracing), `--warmup` calls, then `--rounds` rounds of `--steps` timed calls, the rounds of
the two models and the matmul interleaved (benchmarks/timing.py) so that load changes on a shared
machine hit all alike; the median call time gives tokens/s (all 4,096 input tokens per step). Train FLOPs per token = 3 x the
forward matmul FLOPs (encoder projections + FFN, attention, MLM head on the masked positions).

Usage:
    python benchmarks/bench_mlm.py                       # every backend, one subprocess each
    python benchmarks/bench_mlm.py --backends tensorflow --sizes tiny
"""

from __future__ import annotations

import argparse
import json
import os

from timing import interleaved, load, run_per_backend

SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
}
VOCAB, MAX_POSITIONS, MASKED = 30522, 512, 20
MATMUL_N = 2048  # the fp32 roof: a square matmul timed in the same rounds as the models


def train_flops_per_token(size: str, seq: int) -> float:
    c = SIZES[size]
    layers, d, f = c["num_layers"], c["hidden_dim"], c["intermediate_dim"]
    encoder = 2 * layers * (4 * d * d + 2 * d * f)
    attention = 2 * layers * 2 * seq * d
    head = 2 * (MASKED / seq) * (d * d + d * VOCAB)
    return 3.0 * (encoder + attention + head)


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
    n = MATMUL_N
    a = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"))
    b = keras.ops.convert_to_tensor(rng.normal(size=(n, n)).astype("float32"))

    def matmul():
        return keras.ops.convert_to_numpy(keras.ops.matmul(a, b)[0, 0])

    def build(system: str, size: str):
        if system == "keras_ptft":
            backbone = Bert(vocabulary_size=VOCAB, max_sequence_length=MAX_POSITIONS, **SIZES[size])
            model = MaskedLM(backbone, vocabulary=vocabulary, sequence_length=args.seq)
            model.preprocessor = None  # token ids in, as keras-hub's side gets
        else:
            backbone = keras_hub.models.BertBackbone(
                vocabulary_size=VOCAB, max_sequence_length=MAX_POSITIONS, **SIZES[size]
            )
            model = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
        return model

    for size in args.sizes:
        for policy in args.dtypes:
            keras.config.set_dtype_policy(policy)
            systems = [("keras_ptft", "auto"), ("keras_hub", "auto")]
            if args.jit_ab and args.backend == "tensorflow":
                systems += [("keras_ptft", True), ("keras_hub", True)]
            steps = {}
            for system, jit in systems:
                keras.utils.set_random_seed(0)
                model = build(system, size)
                model.compile(
                    optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    weighted_metrics=[],
                    jit_compile=jit,
                )
                steps[(system, jit)] = lambda model=model: model.train_on_batch(x, y, sample_weight=w)
            timings = interleaved({"matmul": matmul, **steps}, args.warmup, args.steps, args.rounds)
            peak = 2 * n**3 / timings.pop("matmul")["median_s"]
            for (system, jit), result in timings.items():
                tokens_per_s = tokens / result["median_s"]
                flops = tokens_per_s * train_flops_per_token(size, args.seq)
                print(json.dumps({
                    "backend": args.backend, "size": size, "dtype": policy, "system": system,
                    "jit_compile": jit, "tokens_per_s": round(tokens_per_s), **result,
                    "model_gflops": round(flops / 1e9, 1), "matmul_f32_gflops": round(peak / 1e9, 1),
                    "mfu": round(flops / peak, 3), "loadavg": load(),
                }), flush=True)
            del steps, model
            keras.backend.clear_session()
            keras.config.set_dtype_policy("float32")


def report(records: list[dict]) -> None:
    """One row per backend/size/dtype/jit: ours vs keras-hub, MFU, and our bfloat16 speed-up."""
    rows = {}
    for r in records:
        if "size" in r:
            rows.setdefault((r["backend"], r["size"], r["dtype"], str(r["jit_compile"])), {})[r["system"]] = r
    print("\n| backend | size | dtype | jit | keras_ptft tok/s | keras-hub tok/s | ratio | ptft MFU (hub) "
          "| ptft bf16 / fp32 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (backend, size, dtype, jit), row in rows.items():
        ours, hub = row.get("keras_ptft"), row.get("keras_hub")
        ratio = f"{ours['tokens_per_s'] / hub['tokens_per_s']:.2f}x" if ours and hub else "-"
        fp32 = rows.get((backend, size, "float32", jit), {}).get("keras_ptft")
        speedup = f"{ours['tokens_per_s'] / fp32['tokens_per_s']:.2f}x" if ours and fp32 and dtype != "float32" else ""
        mfu = f"{ours['mfu']:.0%} ({hub['mfu']:.0%})" if ours and hub else "-"
        print(f"| {backend} | {size} | {dtype} | {jit} | {ours['tokens_per_s'] if ours else '-'} | "
              f"{hub['tokens_per_s'] if hub else '-'} | {ratio} | {mfu} | {speedup} |")


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
    parser.add_argument("--jit-ab", action="store_true",
                        help="on TensorFlow, also time both models with jit_compile=True (XLA)")
    args = parser.parse_args()
    if args.backend:
        worker(args)
        return
    report(run_per_backend(__file__, args.backends))


if __name__ == "__main__":
    main()
