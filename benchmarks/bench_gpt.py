"""Training and generation throughput of `keras_ptft.tasks.CausalLM` vs keras-hub's `GPT2CausalLM`.

Both get the same configuration and the same token ids, in the same process, on the backend
named by KERAS_BACKEND; the table reports tokens/s and the ratio ours / keras-hub.

    KERAS_BACKEND=jax python benchmarks/bench_gpt.py --size mini
"""

from __future__ import annotations

import argparse
import time

import keras
import keras_hub
import numpy as np

import keras_ptft as kp


def _time(fn, repeats: int) -> float:
    fn()  # compile / warm up
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="mini")
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    parser.add_argument("--sequence-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-length", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    config = dict(kp.models.GPT_SIZES[args.size])
    config.setdefault("intermediate_dim", 4 * config["hidden_dim"])
    config.update(vocabulary_size=args.vocabulary_size, dropout=0.0,
                  max_sequence_length=max(args.sequence_length, args.prompt_length + args.new_tokens))
    keras.utils.set_random_seed(0)
    models = {
        "keras_ptft": kp.tasks.CausalLM(kp.models.GPT(**config)),
        "keras_hub": keras_hub.models.GPT2CausalLM(keras_hub.models.GPT2Backbone(**config), preprocessor=None),
    }
    rng = np.random.default_rng(0)
    n = args.batch_size * args.train_steps
    token_ids = rng.integers(1, args.vocabulary_size, (n, args.sequence_length + 1)).astype("int32")
    x = {"token_ids": token_ids[:, :-1], "padding_mask": np.ones_like(token_ids[:, :-1])}
    y = token_ids[:, 1:]

    results = {}
    for name, model in models.items():
        model.compile(optimizer=kp.training.optimization.make_adamw(3e-4),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), sampler="greedy")
        seconds = _time(lambda: keras.Model.fit(model, x, y, batch_size=args.batch_size, epochs=1, verbose=0),
                        args.repeats)
        results[(name, "train")] = n * args.sequence_length / seconds
        for batch in (1, 8):
            length = args.prompt_length + args.new_tokens
            prompt = np.zeros((batch, length), "int32")
            prompt[:, : args.prompt_length] = rng.integers(1, args.vocabulary_size, (batch, args.prompt_length))
            mask = np.zeros_like(prompt)
            mask[:, : args.prompt_length] = 1
            inputs = {"token_ids": prompt, "padding_mask": mask}
            seconds = _time(lambda: model.generate(inputs, stop_token_ids=None), args.repeats)
            results[(name, f"generate b={batch}")] = batch * args.new_tokens / seconds

    print(f"\nbackend={keras.config.backend()} size={args.size} vocab={args.vocabulary_size} "
          f"seq={args.sequence_length} batch={args.batch_size} new_tokens={args.new_tokens}")
    print(f"{'measure':<16}{'keras_ptft tok/s':>18}{'keras_hub tok/s':>18}{'ratio':>8}")
    for measure in ("train", "generate b=1", "generate b=8"):
        ours, theirs = results[("keras_ptft", measure)], results[("keras_hub", measure)]
        print(f"{measure:<16}{ours:>18.0f}{theirs:>18.0f}{ours / theirs:>8.2f}")


if __name__ == "__main__":
    main()
