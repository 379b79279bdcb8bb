"""Training and generation throughput of `keras_ptft.tasks.CausalLM` vs keras-hub's `GPT2CausalLM`.

Same configuration as the project's reference anchors (GPT "mini": 4 layers, hidden 256, 4 heads,
feed-forward 1024; vocabulary 8,192; training batch 8 x sequence 256), the same token ids and the
same optimizer, in the same process, one process per backend (`--backends`), reported as ratios
ours / keras-hub:

- training tokens/s: `train_on_batch` on a fixed batch (AdamW 1e-4, cross-entropy, no metrics),
  all input tokens counted;
- generation tokens/s: greedy `generate()` of 128 new tokens after a 32-token prompt, batch 1 and
  8, new tokens counted (prefill of the prompt included in the time), `stop_token_ids=None` so
  every sequence runs to the end.

Both models are timed in interleaved rounds (benchmarks/timing.py), so a load change on a shared
machine hits both alike. Dropout is 0.1 on both, as in the anchors.

Usage:
    python benchmarks/bench_gpt.py                        # every backend, one subprocess each
    python benchmarks/bench_gpt.py --backends jax --jit   # also TF with jit_compile=True
"""

from __future__ import annotations

import argparse
import json
import os

from timing import interleaved, load, print_ratio_table, run_per_backend


def worker(args) -> None:
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import keras_hub
    import numpy as np

    import keras_ptft as kp

    config = dict(num_layers=4, hidden_dim=256, num_heads=4, intermediate_dim=1024,
                  vocabulary_size=args.vocabulary_size,
                  max_sequence_length=max(args.sequence_length, args.prompt_length + args.new_tokens))
    models = {}
    for name in ("keras_ptft", "keras_hub"):
        keras.utils.set_random_seed(0)
        if name == "keras_ptft":
            model = kp.tasks.CausalLM(kp.models.GPT(**config))
        else:
            model = keras_hub.models.GPT2CausalLM(keras_hub.models.GPT2Backbone(**config), preprocessor=None)
        model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[],
                      sampler="greedy", jit_compile=args.jit if args.jit else "auto")
        models[name] = model
    rng = np.random.default_rng(0)
    token_ids = rng.integers(1, args.vocabulary_size, (args.batch_size, args.sequence_length + 1)).astype("int32")
    x = {"token_ids": token_ids[:, :-1], "padding_mask": np.ones_like(token_ids[:, :-1])}
    y = token_ids[:, 1:]
    common = {"backend": args.backend, "jit_compile": args.jit or "auto"}

    train = {name: (lambda m=model: m.train_on_batch(x, y)) for name, model in models.items()}
    for name, result in interleaved(train, args.warmup, args.train_steps, args.rounds).items():
        print(json.dumps({**common, "system": name, "measure": "train",
                          "tokens_per_s": round(args.batch_size * args.sequence_length / result["median_s"]),
                          **result, "loadavg": load()}), flush=True)

    for batch in (1, 8):
        length = args.prompt_length + args.new_tokens
        prompt = np.zeros((batch, length), "int32")
        prompt[:, : args.prompt_length] = rng.integers(1, args.vocabulary_size, (batch, args.prompt_length))
        mask = np.zeros((batch, length), bool)
        mask[:, : args.prompt_length] = True
        inputs = {"token_ids": prompt, "padding_mask": mask}
        generate = {name: (lambda m=model: m.generate(inputs, stop_token_ids=None)) for name, model in models.items()}
        outputs = {name: fn() for name, fn in generate.items()}
        filled = {name: int(np.asarray(o["padding_mask"]).sum()) - batch * args.prompt_length
                  for name, o in outputs.items()}
        assert all(f == batch * args.new_tokens for f in filled.values()), f"new tokens generated: {filled}"
        for name, result in interleaved(generate, 0, args.generate_calls, args.rounds).items():
            print(json.dumps({**common, "system": name, "measure": f"generate b={batch}",
                              "tokens_per_s": round(batch * args.new_tokens / result["median_s"]),
                              **result, "loadavg": load()}), flush=True)


def report(records: list[dict]) -> None:
    print_ratio_table(records, "tokens_per_s", "tok/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # set in the per-backend subprocess
    parser.add_argument("--jit", action="store_true", help="compile(jit_compile=True) on both models")
    parser.add_argument("--vocabulary-size", type=int, default=8192)
    parser.add_argument("--sequence-length", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-length", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps per round")
    parser.add_argument("--generate-calls", type=int, default=2, help="timed generate calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.backend:
        worker(args)
        return
    report(run_per_backend(__file__, args.backends))


if __name__ == "__main__":
    main()
