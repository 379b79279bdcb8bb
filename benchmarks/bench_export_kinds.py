"""Export benchmark for the non-classifier kinds: size, parity and batch-1 latency per artifact.

- image classifier: a small ViT trained briefly on `../shared/data/mnist`; SavedModel and TFLite
  fp32 / fp16 / dynamic int8 / full int8 (calibrated on 200 training images): accuracy on the 2,000
  test images, label agreement with Keras, max |Δ| of probabilities.
- causal LM: a small GPT trained briefly on `../shared/data/tiny_shakespeare`; SavedModel
  (strings in/out) and TFLite fp32 / fp16 / dynamic int8 greedy loops: agreement of the greedy
  tokens with `CausalLM.generate` on held-out prompts, latency of one full generation.
- masked LM: a small BERT (untrained: parity does not need a trained model) on SST-2 sentences;
  SavedModel and TFLite fp32 / fp16 / dynamic int8: max |Δ| of the top-k probabilities, top-1
  agreement.

- image segmenter: a small ViT trained briefly on generated shapes with masks
  (`kp.data.generate_shapes`, 32 x 32, 5 classes with background); SavedModel, ONNX and TFLite
  fp32 / fp16 / dynamic int8 / full int8: pixel accuracy against the true masks, pixel label
  agreement with Keras, max |Δ| of the per-pixel probabilities.

- token classifier (NER): by default a tiny BERT (L2/H128, WordPiece trained on the CoNLL-2003
  training sentences) fine-tuned briefly on 3,000 CoNLL-2003 training sentences; with
  `--ner-model FILE` a saved tagger instead (e.g. the MiniLM one of `bench_ner.py --save`).
  SavedModel (strings in, entities out in the graph), ONNX and TFLite fp32 / fp16 / dynamic int8
  (token ids in): entity F1 against the gold entities of 300 dev sentences (raw text: the words
  joined by spaces), entity agreement with Keras (F1 of the artifact's entities against the Keras
  model's, `verify`'s parity), max |Δ| of the per-piece probabilities.
- question answerer: a tiny BERT (L2/H128) fine-tuned briefly, from scratch, on the SQuAD 2.0
  subset's first four articles (parity does not need a good model: its F1 stays near the
  always-no-answer share);
  `--qa-model FILE` takes a saved answerer instead. SavedModel (pairs in, answer spans out in the
  graph), ONNX, TFLite fp32 / fp16 / dynamic int8: SQuAD F1 on 100 questions of the fifth article,
  span agreement with Keras (`verify`), max |Δ| of the scores.

Prints a Markdown table. Run under `nice` on a shared machine; ratios of latencies measured in
the same run are more trustworthy than absolute numbers.

    python benchmarks/bench_export_kinds.py            # all three kinds
    python benchmarks/bench_export_kinds.py --kinds image causal_lm
    python benchmarks/bench_export_kinds.py --kinds segmenter
    python benchmarks/bench_export_kinds.py --kinds token_classifier question_answerer
    python benchmarks/bench_export_kinds.py --kinds token_classifier --ner-model ner_minilm.keras
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import tempfile
import time

import numpy as np

import keras
import keras_ptft as kp
from keras_ptft.export import Predictor, export

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")


def size_of(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)


def median_ms(fn, inputs, repeats=3):
    times = []
    for item in inputs:
        for _ in range(repeats):
            start = time.perf_counter()
            fn(item)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def export_variants(model, folder, formats, quantizations, representative, verify_data, **options):
    """{label: export path} for SavedModel + each TFLite quantization."""
    paths = {}
    for quantization in quantizations:
        wanted = formats if quantization is None else ["tflite"]
        label = quantization or "float32"
        print(f"\n== export {label}", flush=True)
        paths[label] = export(model, os.path.join(folder, label), formats=wanted, quantization=quantization,
                              representative_data=representative, verify_data=verify_data, save_keras=False,
                              min_label_agreement=0.0, **options)
    return paths


def bench_image(folder, rows):
    data = np.load(os.path.join(DATA, "mnist", "mnist_10k_2k.npz"))
    x_train, y_train = data["x_train"][..., None], data["y_train"].astype("int32")
    x_test, y_test = data["x_test"][..., None], data["y_test"].astype("int32")
    keras.utils.set_random_seed(0)
    vit = kp.models.ViT(image_shape=(28, 28, 1), patch_size=7, num_layers=2, num_heads=4, hidden_dim=64,
                        intermediate_dim=128)
    model = kp.recipes.image_classifier(vit, num_classes=10, label_names=[str(i) for i in range(10)])
    model.fit(x_train, y_train, batch_size=64, epochs=2, verbose=2)
    keras_probabilities = model.predict(x_test, verbose=0)
    keras_accuracy = float(np.mean(keras_probabilities.argmax(-1) == y_test))
    paths = export_variants(model, folder, ["saved_model", "tflite"], [None, "float16", "dynamic_int8", "int8"],
                            x_train[:200], x_test[:256])
    keras_ms = median_ms(lambda image: model(image[None].astype("float32"), training=False), x_test[:20])
    rows.append(("image (ViT L2/H64, MNIST)", "keras", "-", f"{keras_accuracy:.4f}", "-", "-", f"{keras_ms:.2f}"))
    for label, path in paths.items():
        for format in (["saved_model", "tflite"] if label == "float32" else ["tflite"]):
            predictor = Predictor(path, format=format)
            probabilities = np.concatenate([predictor.predict(x_test[i : i + 250])["probabilities"]
                                            for i in range(0, len(x_test), 250)])
            accuracy = float(np.mean(probabilities.argmax(-1) == y_test))
            agreement = float(np.mean(probabilities.argmax(-1) == keras_probabilities.argmax(-1)))
            delta = float(np.abs(probabilities - keras_probabilities).max())
            ms = median_ms(predictor.predict, x_test[:20])
            entry = os.path.join(path, "1" if format == "saved_model" else "tflite/model.tflite")
            rows.append(("image (ViT L2/H64, MNIST)", f"{format} {label}", f"{size_of(entry) / 1e6:.2f} MB",
                         f"{accuracy:.4f}", f"{agreement:.4f}", f"{delta:.2e}", f"{ms:.2f}"))


def bench_segmenter(folder, rows):
    train = kp.data.generate_shapes(1500, image_size=32, seed=0)
    test = kp.data.generate_shapes(256, image_size=32, seed=1)
    keras.utils.set_random_seed(0)
    vit = kp.models.ViT(image_shape=(32, 32, 3), patch_size=4, num_layers=2, num_heads=4, hidden_dim=64,
                        intermediate_dim=128)
    model = kp.recipes.image_segmenter(vit, num_classes=len(train.class_names) + 1, learning_rate=3e-3)
    model.fit(train.images, train.masks.astype("int32"), batch_size=64, epochs=8, verbose=2)
    scores = model.evaluate(test.images, test.masks.astype("int32"), verbose=0, return_dict=True)
    keras_probabilities = model.predict(test.images, verbose=0)
    keras_labels = keras_probabilities.argmax(-1)
    # Pixel accuracy alone flatters a segmenter: say how much of it the background gives for free.
    print(f"segmenter: background pixels {np.mean(test.masks == 0):.4f}, Keras mean IoU {scores['mean_iou']:.4f}, "
          f"mean Dice {scores['mean_dice']:.4f}", flush=True)
    name = "segmenter (ViT L2/H64, shapes 32x32)"
    keras_ms = median_ms(lambda image: model(image[None].astype("float32"), training=False), test.images[:20])
    rows.append((name, "keras", "-", f"{np.mean(keras_labels == test.masks):.4f}", "-", "-", f"{keras_ms:.2f}"))
    paths = export_variants(model, folder, ["saved_model", "tflite", "onnx"],
                            [None, "float16", "dynamic_int8", "int8"], train.images[:200], test.images[:64],
                            label_names=["background", *train.class_names])
    for label, path in paths.items():
        for format in (["saved_model", "tflite", "onnx"] if label == "float32" else ["tflite"]):
            predictor = Predictor(path, format=format)
            outputs = [predictor.predict(test.images[i : i + 64]) for i in range(0, len(test.images), 64)]
            probabilities = np.concatenate([output["probabilities"] for output in outputs])
            labels = np.concatenate([output["labels"] for output in outputs])
            entry = os.path.join(path, {"saved_model": "1", "onnx": "onnx/model.onnx",
                                        "tflite": "tflite/model.tflite"}[format])
            rows.append((name, f"{format} {label}", f"{size_of(entry) / 1e6:.2f} MB",
                         f"{np.mean(labels == test.masks):.4f}", f"{np.mean(labels == keras_labels):.4f}",
                         f"{np.abs(probabilities - keras_probabilities).max():.2e}",
                         f"{median_ms(predictor.predict, test.images[:20]):.2f}"))


def bench_causal_lm(folder, rows):
    with gzip.open(os.path.join(DATA, "tiny_shakespeare", "input.txt.gz"), "rt", encoding="utf-8") as handle:
        lines = [line.strip() for line in handle if len(line.strip()) > 20]
    train, prompts = lines[:4000], [" ".join(line.split()[:3]) for line in lines[-32:]]
    keras.utils.set_random_seed(0)
    vocab, merges = kp.data.train_bpe(train, vocabulary_size=512, verbose=False)
    gpt = kp.models.GPT(vocabulary_size=len(vocab), num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=256,
                        max_sequence_length=64, dropout=0.0)
    lm = kp.tasks.CausalLM(gpt, kp.data.bpe_tokenizer(vocab, merges), sequence_length=32)
    lm.compile()
    lm.fit(train, batch_size=32, epochs=1, verbose=2)
    max_length = 48
    paths = export_variants(lm, folder, ["saved_model", "tflite"], [None, "float16", "dynamic_int8"], None, prompts,
                            max_length=max_length)
    keras_ms = median_ms(lambda p: lm.generate([p], max_length=max_length, stop_token_ids=None), prompts[:5], 1)
    rows.append(("causal LM (GPT L2/H64, Shakespeare)", "keras generate", "-", "-", "-", "-", f"{keras_ms:.1f}"))
    for label, path in paths.items():
        manifest = kp.export.predictor.read_manifest(path)
        for format, entry in manifest["artifacts"].items():
            predictor = Predictor(path, format=format)
            ms = median_ms(lambda p: predictor.predict([p]), prompts[:5], 1)
            parity = entry["parity"]
            rows.append(("causal LM (GPT L2/H64, Shakespeare)", f"{format} {label}",
                         f"{entry['bytes'] / 1e6:.2f} MB", "-",
                         f"tokens {parity['token_agreement']:.4f} / seqs {parity['sequence_agreement']:.3f}", "-",
                         f"{ms:.1f}"))


def bench_masked_lm(folder, rows):
    with gzip.open(os.path.join(DATA, "sst2", "dev.tsv.gz"), "rt", encoding="utf-8") as handle:
        texts = [line.split("\t")[0].strip() for line in handle][1:]
    vocabulary = kp.data.train_wordpiece(texts, vocabulary_size=1000)
    rng = np.random.default_rng(0)
    masked = []
    for text in texts[:64]:
        words = text.split()[:12]  # WordPieces of 12 words stay within sequence_length 64
        words[rng.integers(len(words))] = "[MASK]"
        masked.append(" ".join(words))
    keras.utils.set_random_seed(0)
    bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocabulary), max_sequence_length=64)
    mlm = kp.tasks.MaskedLM(bert, vocabulary=vocabulary, sequence_length=64)
    paths = export_variants(mlm, folder, ["saved_model", "tflite"], [None, "float16", "dynamic_int8"], None, masked)
    for label, path in paths.items():
        manifest = kp.export.predictor.read_manifest(path)
        for format, entry in manifest["artifacts"].items():
            predictor = Predictor(path, format=format)
            ms = median_ms(lambda t: predictor.predict([t]), masked[:10])
            parity = entry["parity"]
            delta = max(parity["max_abs_diff"], parity.get("max_abs_logit_diff", 0.0))
            rows.append(("masked LM (BERT tiny, SST-2 text)", f"{format} {label}", f"{entry['bytes'] / 1e6:.2f} MB",
                         "-", f"top-1 {parity['top1_agreement']:.4f}", f"{delta:.2e}", f"{ms:.2f}"))


def artifact_rows(name, paths, rows, score, agreement, batch_one):
    """One row per artifact of every export in `paths`: size, `score(predictor)`, the parity figures
    `verify` wrote into the manifest, and the median batch-1 latency over `batch_one`."""
    for label, path in paths.items():
        manifest = kp.export.predictor.read_manifest(path)
        for format, entry in manifest["artifacts"].items():
            predictor = Predictor(path, format=format)
            parity = entry["parity"]
            ms = median_ms(lambda item: predictor.predict([item]), batch_one)
            rows.append((name, f"{format} {label}", f"{entry['bytes'] / 1e6:.2f} MB", score(predictor),
                         f"{agreement} {parity[agreement_key(agreement)]:.4f}", f"{parity['max_abs_diff']:.2e}",
                         f"{ms:.2f}"))


def agreement_key(agreement: str) -> str:
    return {"entities F1": "entity_f1", "spans": "span_agreement"}[agreement]


def gold_entities(words, tags) -> tuple[list[str], list[set]]:
    """The dev sentences as raw texts (words joined by spaces) and their gold entities as
    `(label, start, end)` character spans."""
    texts, entities = [], []
    for sentence, sentence_tags in zip(words, tags):
        starts = np.cumsum([0] + [len(word) + 1 for word in sentence[:-1]])
        texts.append(" ".join(sentence))
        entities.append({(label, int(starts[first]), int(starts[last] + len(sentence[last])))
                         for label, first, last in kp.tasks.metrics.get_entities(sentence_tags)})
    return texts, entities


def entity_f1(predicted: list[list[dict]], gold: list[set]) -> float:
    found = [{(e["label"], e["start"], e["end"]) for e in sentence} for sentence in predicted]
    matched = sum(len(f & g) for f, g in zip(found, gold))
    total = sum(len(f) for f in found) + sum(len(g) for g in gold)
    return 2 * matched / total if total else 1.0


def bench_token_classifier(folder, rows, model_path=None):
    conll = os.path.join(DATA, "conll2003")
    train_words, train_tags = kp.data.read_conll(os.path.join(conll, "train.txt.gz"))
    dev_words, dev_tags = kp.data.read_conll(os.path.join(conll, "dev.txt.gz"))
    texts, gold = gold_entities(dev_words[:300], dev_tags[:300])
    keras.utils.set_random_seed(0)
    if model_path:
        tagger = keras.saving.load_model(model_path)
        name = f"NER ({os.path.basename(model_path)})"
    else:
        train_words, train_tags = train_words[:3000], train_tags[:3000]
        vocabulary = kp.data.train_wordpiece([" ".join(words) for words in train_words], vocabulary_size=4000)
        bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocabulary), max_sequence_length=64)
        tagger = kp.recipes.token_classifier(bert, kp.data.label_names_from_tags(train_tags), vocabulary=vocabulary,
                                             sequence_length=64, learning_rate=1e-3)
        tagger.fit(train_words, train_tags, batch_size=32, epochs=3, verbose=2)
        name = "NER (BERT tiny, CoNLL-2003 3k sentences)"
    keras_f1 = entity_f1(tagger.predict(texts, batch_size=64), gold)
    keras_ms = median_ms(lambda text: tagger.predict([text]), texts[:20])
    rows.append((name, "keras", "-", f"dev entity F1 {keras_f1:.4f}", "-", "-", f"{keras_ms:.2f}"))
    paths = export_variants(tagger, folder, ["saved_model", "tflite", "onnx"], [None, "float16", "dynamic_int8"],
                            None, texts[:64])
    artifact_rows(name, paths, rows, lambda p: f"dev entity F1 {entity_f1(p.predict(texts), gold):.4f}",
                  "entities F1", texts[:20])


def bench_question_answerer(folder, rows, model_path=None):
    examples = kp.data.read_squad(os.path.join(DATA, "squad2_dev_subset", "dev-v2.0-first5articles.json.gz"))
    last = examples[-1]["title"]
    train = [e for e in examples if e["title"] != last]
    test = [e for e in examples if e["title"] == last][:100]
    test_pairs, test_gold = [(e["question"], e["context"]) for e in test], [e["answers"] for e in test]
    keras.utils.set_random_seed(0)
    if model_path:
        qa = keras.saving.load_model(model_path)
        name = f"QA ({os.path.basename(model_path)})"
    else:
        vocabulary = kp.data.train_wordpiece(list(dict.fromkeys(e["context"] for e in train)), vocabulary_size=4000)
        bert = kp.models.Bert.from_size("tiny", vocabulary_size=len(vocabulary), max_sequence_length=128)
        qa = kp.recipes.question_answerer(bert, vocabulary=vocabulary, sequence_length=128, doc_stride=32,
                                          learning_rate=1e-3)
        qa.fit(train, batch_size=32, epochs=2, verbose=2)
        qa.fit_null_threshold(train[:300])
        name = "QA (BERT tiny, SQuAD 2.0 4 articles)"

    def squad_f1(answers) -> str:
        return f"eval-article F1 {kp.tasks.metrics.squad_scores([a['text'] for a in answers], test_gold)['f1']:.1f}"

    rows.append((name, "keras", "-", squad_f1(qa.predict(test_pairs)), "-", "-",
                 f"{median_ms(lambda pair: qa.predict([pair]), test_pairs[:20]):.2f}"))
    paths = export_variants(qa, folder, ["saved_model", "tflite", "onnx"], [None, "float16", "dynamic_int8"],
                            None, test_pairs[:64])
    artifact_rows(name, paths, rows, lambda p: squad_f1(p.predict(test_pairs)), "spans",
                  test_pairs[:20])


class Rows(list):
    """The table's rows, each also printed as soon as it is measured (a crash keeps what was done)."""

    def append(self, row):
        print("ROW | " + " | ".join(row) + " |", flush=True)
        super().append(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=["image", "causal_lm", "masked_lm"])
    parser.add_argument("--ner-model", default=None, help="a saved TokenClassifier (.keras) for token_classifier")
    parser.add_argument("--qa-model", default=None, help="a saved QuestionAnswerer (.keras) for question_answerer")
    args = parser.parse_args()
    kinds = {"image": bench_image, "causal_lm": bench_causal_lm, "masked_lm": bench_masked_lm,
             "segmenter": bench_segmenter,
             "token_classifier": lambda folder, rows: bench_token_classifier(folder, rows, args.ner_model),
             "question_answerer": lambda folder, rows: bench_question_answerer(folder, rows, args.qa_model)}
    rows = Rows()
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            kinds[kind](os.path.join(folder, kind), rows)
    print("\n| model | artifact | size | accuracy | agreement with Keras | max abs diff | batch-1 ms (median) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
