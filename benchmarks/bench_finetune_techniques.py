"""Fine-tuning techniques on the embedded quickstart task: full fine-tuning vs LoRA vs a frozen
backbone, and the LR range test's suggestion vs the default learning rates.

The quickstart's setting (`keras_ptft.quickstart.bert`; pretraining by `kp.pipelines.pretrain_bert`):
a tiny BERT pretrained with masked LM on the embedded corpus (standard-library docstrings, plus the
task's training texts), then fine-tuned on the embedded 4-class task (which part of the standard library a docstring
documents; chance 25%). Every fine-tuning run starts from the same pretrained backbone and the
same seed; the table gives test accuracy, trainable parameters and the median epoch time.

    python benchmarks/bench_finetune_techniques.py            # about the quickstart's --fast budget
    python benchmarks/bench_finetune_techniques.py --max-documents 0 --pretrain-epochs 8   # full
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import keras

import keras_ptft as kp
from keras_ptft.pipelines import pretrain_bert


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--vocabulary-size", type=int, default=2000)
    parser.add_argument("--sequence-length", type=int, default=32)
    parser.add_argument("--max-documents", type=int, default=1500, help="corpus documents; 0 = all")
    parser.add_argument("--pretrain-epochs", type=int, default=2)
    parser.add_argument("--finetune-epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="the quickstart's fine-tuning rate")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--adapter-learning-rate", type=float, default=1e-2,
                        help="a second rate for LoRA and the frozen backbone: with few trainable weights "
                             "they usually want ~10x the full fine-tuning rate")
    parser.add_argument("--lr-find-steps", type=int, default=60)
    parser.add_argument("--output-dir", default=None, help="default: a temporary folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    output_dir = args.output_dir or tempfile.mkdtemp(prefix="bench_finetune_")

    keras.utils.set_random_seed(args.seed)
    task = kp.data.load_embedded_classification(seed=args.seed)
    train_texts, train_labels = list(task.train_texts), task.train_labels
    corpus = kp.data.load_embedded_corpus(max_documents=args.max_documents or None, seed=args.seed) + train_texts
    print(f"== corpus {len(corpus)} documents; task {len(train_texts)} train / {len(task.test_texts)} test, "
          f"classes {task.label_names}", flush=True)

    pretrained = os.path.join(output_dir, "pretrained_bert")
    # The task's test texts are never in the corpus; its last 10% are held out for masked accuracy.
    pretrain_bert(corpus, pretrained, size=args.size, vocabulary_size=args.vocabulary_size,
                  sequence_length=args.sequence_length, epochs=args.pretrain_epochs, batch_size=args.batch_size,
                  seed=args.seed)

    def classifier(learning_rate: float, **techniques):
        keras.utils.set_random_seed(args.seed + 1)
        return kp.recipes.text_classifier(pretrained, num_classes=len(task.label_names),
                                          sequence_length=args.sequence_length, learning_rate=learning_rate,
                                          verbose=False, **techniques)

    def finetune(name: str, model) -> dict:
        print(f"\n== {name}", flush=True)
        timer = EpochTimer()
        model.fit(train_texts, train_labels, batch_size=args.batch_size, epochs=args.finetune_epochs,
                  callbacks=[timer], verbose=2)
        metrics = model.evaluate(list(task.test_texts), task.test_labels, batch_size=args.batch_size, verbose=0,
                                 return_dict=True)
        trainable, total = kp.recipes.techniques.count_params(model)
        return {"name": name, "accuracy": metrics["accuracy"], "trainable": trainable, "total": total,
                # The first epoch also traces the step; the later ones are the steady cost.
                "first_epoch_s": timer.seconds[0],
                "epoch_s": statistics.median(timer.seconds[1:] or timer.seconds)}

    rows = [
        finetune(f"full fine-tuning, lr {args.learning_rate:g}", classifier(args.learning_rate)),
        finetune(f"LoRA rank {args.lora_rank}, lr {args.learning_rate:g}",
                 classifier(args.learning_rate, lora_rank=args.lora_rank)),
        finetune(f"frozen backbone, lr {args.learning_rate:g}", classifier(args.learning_rate, freeze_backbone=True)),
        finetune(f"LoRA rank {args.lora_rank}, lr {args.adapter_learning_rate:g}",
                 classifier(args.adapter_learning_rate, lora_rank=args.lora_rank)),
        finetune(f"frozen backbone, lr {args.adapter_learning_rate:g}",
                 classifier(args.adapter_learning_rate, freeze_backbone=True)),
    ]
    recipe_default = 5e-5  # text_classifier's default (BERT-base practice)
    rows.append(finetune(f"full fine-tuning, lr {recipe_default:g} (recipe default)", classifier(recipe_default)))

    print("\n== LR range test on the full fine-tuning classifier", flush=True)
    probe = classifier(recipe_default)
    suggested = kp.training.find_learning_rate(probe, train_texts, train_labels, min_learning_rate=1e-6,
                                               max_learning_rate=1.0, num_steps=args.lr_find_steps,
                                               batch_size=args.batch_size,
                                               path=os.path.join(output_dir, "lr_find.png"))
    rows.append(finetune(f"full fine-tuning, lr {suggested:.2g} (LR range test)", classifier(suggested)))

    print(f"\nchance accuracy {1 / len(task.label_names):.3f}; backend {keras.config.backend()}; "
          f"LR-range plot {os.path.join(output_dir, 'lr_find.png')}")
    print("\n| run | test accuracy | trainable params | of total | 1st epoch s | epoch s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['accuracy']:.3f} | {r['trainable']:,} | {r['trainable'] / r['total']:.1%} | "
              f"{r['first_epoch_s']:.1f} | {r['epoch_s']:.1f} |")
    print(f"\nLR range test suggestion: {suggested:.3g} (defaults: recipe {recipe_default:g}, "
          f"quickstart {args.learning_rate:g})")
    print(f"load average at the end: {[round(v, 1) for v in os.getloadavg()]}")


if __name__ == "__main__":
    main()
