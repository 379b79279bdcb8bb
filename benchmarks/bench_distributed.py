"""Data-parallel masked-LM pretraining on 1 vs 2 devices, and model-parallel memory per device.

Throughput: a keras_ptft `MaskedLM` on `Bert` (tiny / mini, vocabulary 30,522, batch 32 x 128, a
fixed masked batch) trained with `train_on_batch` under the toolkit's `distribution="data_parallel"`
on 1 and on 2 devices of this machine, timed in interleaved rounds in one process
(benchmarks/timing.py): JAX gets two host devices from XLA_FLAGS, TensorFlow a MirroredStrategy
over one or two logical CPUs. Scaling efficiency = (2-device tokens/s / 1-device tokens/s) / 2.
On a 2-core CPU the single device already uses both cores through intra-op threads, so the
speed-up is modest; what the figure shows is that the same code scales and what it costs.

Memory (`--memory`, JAX): `Bert.from_size("base")` built under `distribution="model_parallel"` on a
(1, 2) mesh; bytes of the weights held by each device against the unsharded total.

Usage:
    python benchmarks/bench_distributed.py                         # jax and tensorflow
    python benchmarks/bench_distributed.py --backends jax --sizes tiny --memory
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")

from timing import interleaved, load, run_per_backend  # noqa: E402

SIZES = {
    "tiny": dict(num_layers=2, hidden_dim=128, num_heads=2, intermediate_dim=512),
    "mini": dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024),
}
VOCAB, SEQ = 30522, 128


def masked_batch(mlm, batch_size: int):
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(500)]
    texts = [" ".join(rng.choice(words, SEQ)) for _ in range(batch_size)]
    tf.random.set_seed(0)
    x, y, weights = mlm.preprocessor(tf.constant(texts))
    return {k: np.asarray(v) for k, v in x.items()}, np.asarray(y), np.asarray(weights)


def build(size: str, distribution, vocabulary):
    import keras

    import keras_ptft as kp
    from keras_ptft.training.distribution import distribution_scope

    with distribution_scope(distribution):
        bert = kp.models.Bert(vocabulary_size=VOCAB, max_sequence_length=SEQ, **SIZES[size])
        mlm = kp.tasks.MaskedLM(bert, vocabulary=vocabulary, sequence_length=SEQ)
        mlm.compile(optimizer=keras.optimizers.AdamW(1e-4))
    return mlm


def throughput(backend: str, sizes: list[str], batch_size: int, steps: int, rounds: int) -> None:
    import keras

    from keras_ptft.training.distribution import check_global_batch_size, describe, distribution_scope, resolve_distribution

    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(VOCAB - 5)]
    if backend == "jax":
        devices = keras.distribution.list_devices()
        distributions = {n: keras.distribution.DataParallel(devices=devices[:n]) for n in (1, 2)}
    else:
        two = resolve_distribution("data_parallel", devices=2)
        import tensorflow as tf

        one = tf.distribute.MirroredStrategy(devices=two.extended.worker_devices[:1])
        distributions = {1: one, 2: two}
    for size in sizes:
        fns, models = {}, {}
        for n, distribution in distributions.items():
            check_global_batch_size(batch_size, distribution)
            mlm = build(size, distribution, vocabulary)
            x, y, weights = masked_batch(mlm, batch_size)
            mlm.preprocessor = None  # the batch is masked once above; keras-hub's Task would re-run it
            models[n] = mlm

            def step(mlm=mlm, x=x, y=y, weights=weights, distribution=distribution):
                with distribution_scope(distribution):
                    return float(mlm.train_on_batch(x, y, sample_weight=weights, return_dict=True)["loss"])

            fns[f"{n}_devices"] = step
        timed = interleaved(fns, warmup=2, steps=steps, rounds=rounds)
        tokens = batch_size * SEQ
        rates = {n: tokens / timed[f"{n}_devices"]["median_s"] for n in distributions}
        print(json.dumps({
            "backend": backend, "size": size, "batch": batch_size,
            "tokens_per_s_1": round(rates[1]), "tokens_per_s_2": round(rates[2]),
            "speedup": round(rates[2] / rates[1], 3), "efficiency": round(rates[2] / rates[1] / 2, 3),
            "mesh_2": describe(distributions[2]), "first_call_s": {k: v["first_call_s"] for k, v in timed.items()},
            "load": load(),
        }), flush=True)


def memory() -> None:
    import numpy as np

    import keras_ptft as kp
    from keras_ptft.training.distribution import distribution_scope, resolve_distribution

    distribution = resolve_distribution("model_parallel", backbone=kp.models.Bert)
    with distribution_scope(distribution):
        bert = kp.models.Bert.from_size("base", vocabulary_size=VOCAB)
    total = sum(int(np.prod(v.shape)) * 4 for v in bert.weights)
    per_device: dict[str, int] = {}
    for variable in bert.weights:
        for shard in variable.value.addressable_shards:
            per_device[str(shard.device)] = per_device.get(str(shard.device), 0) + shard.data.nbytes
    print(json.dumps({"backend": "jax", "memory": "bert_base_model_parallel", "unsharded_mb": round(total / 2**20, 1),
                      "per_device_mb": {k: round(v / 2**20, 1) for k, v in per_device.items()},
                      "fraction": round(max(per_device.values()) / total, 3)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", help="internal: the backend this subprocess runs")
    parser.add_argument("--backends", nargs="+", default=["jax", "tensorflow"])
    parser.add_argument("--sizes", nargs="+", default=["tiny", "mini"], choices=list(SIZES))
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="also measure model-parallel memory (JAX)")
    args = parser.parse_args()
    if args.backend is None:
        records = run_per_backend(__file__, args.backends)
        print("\n| backend | size | 1 device tok/s | 2 devices tok/s | speed-up | efficiency |\n|---|---|---|---|---|---|")
        for r in (r for r in records if "size" in r):
            print(f"| {r['backend']} | {r['size']} | {r['tokens_per_s_1']:,} | {r['tokens_per_s_2']:,} | "
                  f"{r['speedup']:.2f}x | {r['efficiency']:.0%} |")
        for r in (r for r in records if "memory" in r):
            print(f"\nBERT-base model-parallel on 2 devices: {r['per_device_mb']} of {r['unsharded_mb']} MB "
                  f"unsharded ({r['fraction']:.0%} per device)")
        return
    throughput(args.backend, args.sizes, args.batch_size, args.steps, args.rounds)
    if args.memory and args.backend == "jax":
        memory()


if __name__ == "__main__":
    main()
