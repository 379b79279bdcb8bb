"""English→Chinese translation on `tatoeba_cmn_eng`: quality after a CPU budget, and decoding speed.

`quality` (TensorFlow): one SentencePiece tokenizer on both sides of the training pairs, then two
arms with the same model size and the same total wall-clock budget (`--budget-minutes`):
(a) `kp.recipes.translator` trained from scratch on the pairs; (b) `kp.tasks.DenoisingLM` span
corruption on the training sentences of both languages for `--pretrain-fraction` of the budget,
then the same fine-tuning for the rest. Reports dev corpus BLEU (sacrebleu, `zh` tokenizer) and
chrF of greedy (and, with `--beam`, beam-4) translations, and sample translations.

`speed` (every backend, one subprocess each): new tokens/s of our `Translator.generate` and of
keras-hub's `BartSeq2SeqLM.generate` with the same geometry (layers, width, heads, vocabulary),
random weights, a 32-token source, `--new-tokens` tokens generated with `stop_token_ids=None`,
batch 1 and 8, greedy and beam 4, timed in interleaved rounds (benchmarks/timing.py).

Usage:
    python benchmarks/bench_translation.py quality --budget-minutes 30
    python benchmarks/bench_translation.py speed --backends tensorflow jax torch
"""

from __future__ import annotations

import argparse
import json
import os
import time

from timing import interleaved, load, print_ratio_table, run_per_backend


def budget_schedule(peak: float, minutes: float, warmup_steps: int):
    """A callback that sets the learning rate before every batch: linear warm-up over
    `warmup_steps`, then linear decay to zero at the end of `minutes` of wall-clock time.

    Why not `kp.training.WarmupDecay`: a time-budgeted `fit(epochs=1000, TimeBudget(...))` would
    size that schedule for 1000 epochs, so the rate would never decay (and a ratio warm-up would
    never end). The number of steps the budget allows depends on the machine's load (this CPU is
    shared), so the decay follows the elapsed share of the budget instead of a step estimate.
    """
    import time

    import keras

    class BudgetSchedule(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started, self.step = time.perf_counter(), 0

        def on_train_batch_begin(self, batch, logs=None):
            self.step += 1
            left = max(0.0, 1.0 - (time.perf_counter() - self.started) / (60 * minutes))
            self.model.optimizer.learning_rate = peak * min(1.0, self.step / max(warmup_steps, 1)) * left

        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                logs["lr_now"] = float(self.model.optimizer.learning_rate)
                logs["steps"] = self.step

    return BudgetSchedule()


def quality(args) -> None:
    import keras

    import keras_ptft as kp

    from keras_ptft.training.callbacks import TimeBudget

    folder = os.path.join(kp.data.shared_data_dir(), "tatoeba_cmn_eng")
    sources, targets = kp.data.read_text_pairs(os.path.join(folder, "train.tsv.gz"), max_rows=args.max_train_rows)
    dev_sources, dev_targets = kp.data.read_text_pairs(os.path.join(folder, "dev.tsv.gz"), max_rows=args.dev_rows)
    start = time.perf_counter()
    tokenizer = kp.data.train_seq2seq_tokenizer(sources + targets, vocabulary_size=args.vocabulary_size)
    print(json.dumps({"measure": "tokenizer", "seconds": round(time.perf_counter() - start, 1),
                      "vocabulary_size": tokenizer.vocabulary_size(),
                      "chinese_coverage_dev": kp.data.chinese_coverage(tokenizer, dev_targets)}), flush=True)
    budget = args.budget_minutes * 60
    for arm in ("scratch", "pretrained"):
        keras.utils.set_random_seed(0)
        model = kp.models.Seq2Seq.from_size(args.size, vocabulary_size=tokenizer.vocabulary_size(),
                                            max_sequence_length=args.sequence_length, dropout=args.dropout)
        start, pretrain_steps = time.perf_counter(), 0
        if arm == "pretrained":
            denoiser = kp.tasks.DenoisingLM(model, tokenizer, sequence_length=args.sequence_length)
            denoiser.compile(optimizer=kp.training.optimization.make_adamw(args.learning_rate, clipnorm=1.0))
            minutes = budget * args.pretrain_fraction / 60
            pretrain_schedule = budget_schedule(args.learning_rate, minutes, args.warmup_steps)
            denoiser.fit(sources + targets, epochs=1000, batch_size=args.batch_size, verbose=2,
                         callbacks=[pretrain_schedule, TimeBudget(minutes)])
            pretrain_steps = pretrain_schedule.step
        translator = kp.recipes.translator(model, tokenizer, sequence_length=args.sequence_length,
                                           learning_rate=args.learning_rate)
        spent = time.perf_counter() - start
        minutes = max(budget - spent, 1.0) / 60
        schedule = budget_schedule(args.learning_rate, minutes, args.warmup_steps)
        history = translator.fit((sources, targets), epochs=1000, batch_size=args.batch_size, verbose=2,
                                 callbacks=[schedule, TimeBudget(minutes)])
        trained_s = time.perf_counter() - start
        record = {"measure": "quality", "arm": arm, "size": args.size, "budget_minutes": args.budget_minutes,
                  "train_seconds": round(trained_s), "epochs": len(history.history["loss"]),
                  "steps": schedule.step, "steps_per_s": round(schedule.step / (trained_s - spent), 2),
                  "pretrain_steps": pretrain_steps,
                  "final_loss": round(history.history["loss"][-1], 4), "train_pairs": len(sources),
                  "dev_pairs": len(dev_sources)}
        samplers = [("greedy", {})] + ([("beam4", {"num_beams": 4})] if args.beam else [])
        for name, options in samplers:
            start = time.perf_counter()
            hypotheses = translator.translate(dev_sources, max_length=args.sequence_length, batch_size=64, **options)
            scores = kp.tasks.translation_scores(hypotheses, dev_targets)
            record.update({f"{name}_bleu": round(scores["bleu"], 2), f"{name}_chrf": round(scores["chrf"], 2),
                           f"{name}_seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(record), flush=True)
        for source, hypothesis, target in list(zip(dev_sources, hypotheses, dev_targets))[: args.samples]:
            print(json.dumps({"arm": arm, "source": source, "translation": hypothesis, "reference": target},
                             ensure_ascii=False), flush=True)


def speed(args) -> None:
    os.environ["KERAS_BACKEND"] = args.backend
    import keras
    import keras_hub
    import numpy as np

    import keras_ptft as kp

    config = dict(vocabulary_size=args.vocabulary_size, num_layers=3, num_heads=4, hidden_dim=256,
                  intermediate_dim=1024, max_sequence_length=args.source_length + args.new_tokens + 1)
    models = {}
    for name in ("keras_ptft", "keras_hub"):
        keras.utils.set_random_seed(0)
        if name == "keras_ptft":
            model = kp.tasks.Translator(kp.models.Seq2Seq(**config))
        else:
            model = keras_hub.models.BartSeq2SeqLM(keras_hub.models.BartBackbone(**config), preprocessor=None)
        models[name] = model
    rng = np.random.default_rng(0)
    common = {"backend": args.backend, "jit_compile": "auto"}
    length = args.new_tokens + 1
    for sampler, sampler_name in ((keras_hub.samplers.GreedySampler(), "greedy"),
                                  (keras_hub.samplers.BeamSampler(num_beams=4), "beam4")):
        for model in models.values():
            model.compile(sampler=sampler)
        for batch in (1, 8):
            decoder = np.zeros((batch, length), "int32")
            decoder[:, 0] = 2
            inputs = {"encoder_token_ids": rng.integers(5, args.vocabulary_size, (batch, args.source_length)).astype("int32"),
                      "encoder_padding_mask": np.ones((batch, args.source_length), bool),
                      "decoder_token_ids": decoder, "decoder_padding_mask": decoder > 0}
            generate = {name: (lambda m=model: m.generate(inputs, stop_token_ids=None)) for name, model in models.items()}
            for name, result in interleaved(generate, 0, args.generate_calls, args.rounds).items():
                print(json.dumps({**common, "system": name, "measure": f"{sampler_name} b={batch}",
                                  "tokens_per_s": round(batch * args.new_tokens / result["median_s"]),
                                  **result, "loadavg": load()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["quality", "speed"])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # set in the per-backend subprocess
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="total training time of each arm")
    parser.add_argument("--pretrain-fraction", type=float, default=0.3, help="share of arm (b)'s budget spent denoising")
    parser.add_argument("--size", default="mini", help="kp.models.SEQ2SEQ_SIZES name")
    parser.add_argument("--vocabulary-size", type=int, default=8000)
    # Tatoeba sentences are short: with the 8000-piece vocabulary, 99.8% of the English sides and
    # all but a handful of the Chinese ones fit in 32 pieces with the start and end tokens (99.9th
    # percentiles 31 and 21 pieces); 48 spent half the compute on padding.
    parser.add_argument("--sequence-length", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak of the warm-up/decay")
    parser.add_argument("--warmup-steps", type=int, default=300)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--max-train-rows", type=int, default=None)
    parser.add_argument("--dev-rows", type=int, default=None)
    parser.add_argument("--beam", action="store_true", help="also score beam-4 translations")
    parser.add_argument("--samples", type=int, default=8, help="dev translations printed per arm")
    parser.add_argument("--source-length", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--generate-calls", type=int, default=2, help="timed generate calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "quality":
        quality(args)
    elif args.backend:
        speed(args)
    else:
        print_ratio_table(run_per_backend(__file__, args.backends), "tokens_per_s", "tok/s")


if __name__ == "__main__":
    main()
