"""`keras-ptft`: the toolkit from a shell.

Each sub-command lives in its own function below; `main` wires them to argparse. Every flag is
checked when the command line is parsed (its type and range, that its files exist), before any
work starts; an error is one line naming the flag, and the Python traceback is printed only with
`--verbose` (alias `--debug`).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (argparse prints the whole usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    """Runs one `keras-ptft` command and returns its exit code (0 ok, 1 failed, 2 bad usage).

    Args:
        argv: list of str or None. The arguments after `keras-ptft`; None reads `sys.argv`.
    """
    parser = _Parser(prog="keras-ptft", description="Pretrain, fine-tune and export transformers.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_quickstart(commands)
    _add_pretrain_gpt(commands)
    _add_finetune(commands)
    _add_generate(commands)
    _add_export(commands)
    _add_predict(commands)
    _add_serve(commands)
    _add_finetune_translator(commands)
    _add_translate(commands)
    _add_compress(commands)
    for command in commands.choices.values():
        command.add_argument("--verbose", "--debug", action="store_true", dest="verbose",
                             help="print TensorFlow's start-up log and the full traceback of an error")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # usage errors and --help: argparse has printed its message
        return exit.code if isinstance(exit.code, int) else 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"keras-ptft {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 — every failure becomes one line; --verbose shows where
        if args.verbose:
            traceback.print_exc()
        # The toolkit's own errors (ValueError, FileNotFoundError, ...) say what is wrong in their
        # message; anything else also names its type, since it is likely a bug to report.
        expected = isinstance(error, (ValueError, TypeError, OSError))
        message = str(error) if expected else f"{type(error).__name__}: {error}"
        hint = "" if args.verbose or expected else " (run again with --verbose for the traceback)"
        print(f"keras-ptft {args.command}: {message}{hint}", file=sys.stderr)
        return 1


# === Flag types: each refuses a bad value while parsing, naming the flag (argparse adds it) ===


def _bounded(kind, expected: str, low: float, high: float = float("inf"), low_inclusive: bool = True):
    """An argparse type: a `kind` (int or float) number in [low, high] (or (low, high])."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        # NaN fails both comparisons, so it is refused with the rest.
        if value is None or not ((low <= value) if low_inclusive else (low < value)) or not value <= high:
            raise argparse.ArgumentTypeError(f"must be {expected}, received {text!r}")
        return value

    parse.__name__ = expected  # argparse names the type in some messages
    return parse


_positive_int = _bounded(int, "a positive integer", 1)
_non_negative_int = _bounded(int, "an integer >= 0", 0)
_positive_float = _bounded(float, "a positive number", 0, sys.float_info.max, low_inclusive=False)
_non_negative_float = _bounded(float, "a number >= 0", 0, sys.float_info.max)
_fraction = _bounded(float, "a number in [0, 1]", 0, 1)
_port = _bounded(int, "a port number (0-65535)", 0, 65535)


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no file at {text!r}")
    return text


def _existing_folder(text: str) -> str:
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder")
    return text


def _add_quickstart(commands) -> None:
    from keras_ptft.quickstart import MODELS

    parser = commands.add_parser(
        "quickstart",
        help="the whole pretrain → fine-tune → export path on embedded data",
        description="Pretrain on the embedded data, fine-tune, compare with training from scratch, "
        "export to saved_models/ and check the export against the Keras model.",
    )
    parser.add_argument("--model", choices=sorted(MODELS), default="bert", help="model family (default: bert)")
    parser.add_argument("--fast", action="store_true", help="a smaller run (about 2 minutes on 2 CPU cores)")
    parser.add_argument("--output-dir", default="saved_models", help="where artifacts go (default: saved_models)")
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--size", default=None, help="backbone size, e.g. tiny or mini")
    parser.set_defaults(run=_run_quickstart)


def _run_quickstart(args) -> int:
    from keras_ptft.pipelines import check_size
    from keras_ptft.quickstart import CheckFailed, load

    if args.size:
        check_size(args.model, args.size, name=_flag)
    quickstart = load(args.model)
    settings = quickstart.Settings.fast() if args.fast else quickstart.Settings()
    if args.size:
        settings = dataclasses.replace(settings, size=args.size)
    try:
        quickstart.run(settings, output_dir=args.output_dir, seed=args.seed)
    except CheckFailed as failure:
        print(f"\nkeras-ptft quickstart: CHECK FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


def _add_pretrain_gpt(commands) -> None:
    parser = commands.add_parser("pretrain", help="pretrain a model from scratch on your own text")
    parser.add_argument("model", choices=["bert", "gpt", "seq2seq"],
                        help="model family (seq2seq: an encoder-decoder pretrained by denoising)")
    parser.add_argument("--corpus", nargs="+", required=True, type=_existing_file,
                        help="UTF-8 text files (.txt or .txt.gz)")
    parser.add_argument("--output-dir", default=None, help="where the model goes (default: saved_models/MODEL)")
    parser.add_argument("--size", default="tiny",
                        help="tiny, mini, small, medium or base: the same sizes for BERT and GPT (README, Named "
                        "sizes); seq2seq: tiny, mini, small, base")
    parser.add_argument("--vocabulary-size", type=_positive_int, default=2000)
    parser.add_argument("--sequence-length", type=_positive_int, default=64)
    parser.add_argument("--epochs", type=_positive_int, default=3)
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    _add_run_flags(parser)
    parser.set_defaults(run=_run_pretrain_gpt)


def _run_pretrain_gpt(args) -> int:
    from keras_ptft.data.io import read_lines
    from keras_ptft.pipelines import check_pretrain_arguments, pretrain_bert, pretrain_gpt, pretrain_seq2seq
    from keras_ptft.pipelines.pretrain import MIN_TEXTS

    budget = dict(size=args.size, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                  vocabulary_size=args.vocabulary_size, sequence_length=args.sequence_length)
    # Every flag is checked before the corpus is read and the tokenizer trains (minutes).
    check_pretrain_arguments(args.model, **budget, name=_flag)
    distribution = _distribution(args, args.model)
    texts = [line for path in args.corpus for line in read_lines(path, "--corpus")]
    if len(texts) < MIN_TEXTS:
        raise ValueError(f"--corpus holds {len(texts)} non-empty lines; at least {MIN_TEXTS} are needed.")
    output_dir = args.output_dir if args.output_dir is not None else f"saved_models/{args.model}"
    pretrain = {"bert": pretrain_bert, "gpt": pretrain_gpt, "seq2seq": pretrain_seq2seq}[args.model]
    options = {"distribution": distribution} if distribution is not None else {}
    pretrain(texts, output_dir, **budget, seed=args.seed, checkpoint_dir=args.checkpoint_dir, **options)
    return 0


def _add_run_flags(parser) -> None:
    """The flags of a training run: --seed, --checkpoint-dir (resumable) and the distribution flags."""
    parser.add_argument("--seed", type=_non_negative_int, default=0)
    parser.add_argument("--checkpoint-dir", default=None,
                        help="resumable run: run the same command again after a crash to continue")
    parser.add_argument("--distribution", choices=["data", "model"], default=None,
                        help="train over several devices: data-parallel (JAX or TensorFlow) or model-parallel "
                        "(JAX; not for seq2seq); --batch-size is then the global batch")
    parser.add_argument("--devices", type=_positive_int, default=None,
                        help="how many devices --distribution uses (default: all; on a CPU with JAX set "
                        "XLA_FLAGS=--xla_force_host_platform_device_count=N before the run; TensorFlow "
                        "splits the CPU into N logical devices)")


def _distribution(args, family: str):
    """The distribution `--distribution/--devices` ask for, printed; None without them. Multi-host
    JAX runs read their process group from the environment (`keras.distribution.initialize`)."""
    if args.distribution is None:
        if args.devices is not None:
            raise ValueError("--devices needs --distribution data or --distribution model.")
        return None
    from keras_ptft.models import GPT, Bert, Seq2Seq
    from keras_ptft.training.distribution import describe, resolve_distribution

    distribution = resolve_distribution(f"{args.distribution}_parallel", devices=args.devices,
                                        backbone={"gpt": GPT, "seq2seq": Seq2Seq}.get(family, Bert))
    print(f"distribution: {describe(distribution)}", flush=True)
    return distribution


def _flag(argument: str) -> str:
    """`batch_size` → `--batch-size`: pipeline checks name the flag the user typed."""
    return "--" + argument.replace("_", "-")


def _add_finetune(commands) -> None:
    parser = commands.add_parser(
        "finetune",
        help="fine-tune a pretrained backbone as a text classifier",
        description="Fine-tune a backbone folder (from `keras-ptft pretrain bert` or save_to_preset) on a "
        "TSV/CSV of text and label (a header row, e.g. `sentence<TAB>label` as GLUE's SST-2; .gz allowed). "
        "Labels are class ids (0, 1, ...; a cell that is not one is refused with its line) or, when every label "
        "is a name or --labels names is given, class names, numbered in sorted order; the mapping is printed "
        "and saved to OUTPUT_DIR/label_names.json. Saves OUTPUT_DIR/model.keras, ready for `keras-ptft export`.",
    )
    # Required, but checked in `_run_finetune`: argparse would also demand them of `finetune translator`.
    parser.add_argument("--backbone", type=_existing_folder, help="the pretrained backbone folder (required)")
    parser.add_argument("--train", type=_existing_file,
                        help="training table (.tsv, .csv, optionally .gz; required)")
    parser.add_argument("--validation", default=None, type=_existing_file, help="validation table, same format")
    parser.add_argument("--text-column", default=None, help="default: sentence, text, review or content")
    parser.add_argument("--label-column", default=None, help="default: label, labels, class or target")
    parser.add_argument("--output-dir", default="saved_models/classifier", help="where model.keras goes")
    parser.add_argument("--labels", choices=["auto", "ids", "names"], default="auto",
                        help="class ids (0, 1, ...) or class names; auto: ids if any label is an integer")
    parser.add_argument("--epochs", type=_positive_int, default=3)
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--learning-rate", type=_positive_float, default=None,
                        help="default: auto, by the backbone's width (5e-5 for MiniLM and BERT-base, more for "
                        "the tiny sizes)")
    parser.add_argument("--sequence-length", type=_positive_int, default=None,
                        help="default: the backbone's, at most 128")
    parser.add_argument("--lora-rank", type=_positive_int, default=None,
                        help="train LoRA adapters of this rank instead")
    parser.add_argument("--freeze-backbone", action="store_true", help="train the classification head only")
    _add_run_flags(parser)
    parser.set_defaults(run=_run_finetune)


def _run_finetune(args) -> int:
    import json
    import os

    import keras

    import keras_ptft as kp

    missing = [flag for flag, value in (("--backbone", args.backbone), ("--train", args.train)) if value is None]
    if missing:
        print(f"keras-ptft finetune: the following arguments are required: {', '.join(missing)}", file=sys.stderr)
        return 2
    distribution = _distribution(args, "bert")
    keras.utils.set_random_seed(args.seed)
    texts, labels, names = kp.data.read_labeled_texts(args.train, args.text_column, args.label_column,
                                                      labels=args.labels)
    validation = None
    if args.validation:
        # The validation file is read with the training file's classes: its own could be fewer.
        val_texts, val_labels, _ = kp.data.read_labeled_texts(
            args.validation, args.text_column, args.label_column, label_names=names,
            labels="names" if names else "ids")
        validation = (val_texts, val_labels)
    if names:
        num_classes = len(names)
    else:  # class ids: as many classes as the largest id seen says, at least two
        num_classes = max(2, 1 + int(max(labels.max(), validation[1].max() if validation else 0)))
    print(f"{len(texts)} training examples, {num_classes} classes"
          + (f", {len(validation[0])} validation examples" if validation else ""), flush=True)
    os.makedirs(args.output_dir, exist_ok=True)
    if names:
        # Named classes get ids in sorted order; the mapping is shown and kept beside the model,
        # so predictions can be read back as names.
        print("class ids: " + ", ".join(f"{i}={name}" for i, name in enumerate(names)), flush=True)
        names_path = os.path.join(args.output_dir, "label_names.json")
        with open(names_path, "w", encoding="utf-8") as handle:
            json.dump(names, handle, ensure_ascii=False)
        print(f"class names saved to {names_path}", flush=True)
    classifier = kp.recipes.text_classifier(
        args.backbone, num_classes, label_names=names, sequence_length=args.sequence_length,
        learning_rate=args.learning_rate if args.learning_rate is not None else "auto", lora_rank=args.lora_rank,
        freeze_backbone=args.freeze_backbone, checkpoint_dir=args.checkpoint_dir, distribution=distribution,
    )
    classifier.fit(texts, labels, batch_size=args.batch_size, epochs=args.epochs, validation_data=validation,
                   verbose=2)
    if validation:
        metrics = classifier.evaluate(*validation, batch_size=args.batch_size, verbose=0, return_dict=True)
        print("validation: " + ", ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
    path = os.path.join(args.output_dir, "model.keras")
    classifier.save(path)
    print(f"Saved to {path} (export with `keras-ptft export {path} saved_models/NAME`).")
    return 0


def _add_generate(commands) -> None:
    parser = commands.add_parser("generate", help="generate text with a saved GPT")
    parser.add_argument("path", type=_existing_folder,
                        help="a folder written by `keras-ptft pretrain gpt` / save_to_preset")
    parser.add_argument("--prompt", action="append", required=True, help="a prompt (repeat for a batch)")
    parser.add_argument("--max-length", type=_positive_int, default=None,
                        help="total tokens, prompt included (default: the model's maximum)")
    parser.add_argument("--sampler", choices=["greedy", "top_k", "top_p", "random", "beam"], default="greedy")
    parser.add_argument("--top-k", type=_positive_int, default=None)
    parser.add_argument("--top-p", type=_fraction, default=None)
    parser.add_argument("--temperature", type=_positive_float, default=None)
    parser.add_argument("--seed", type=_non_negative_int, default=None)
    parser.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    import keras_ptft as kp

    backbone = kp.models.load_backbone(args.path)
    if not isinstance(backbone, kp.models.GPT):
        raise ValueError(f"{args.path!r} holds a {type(backbone).__name__} backbone, which is not a causal LM; "
                         "`generate` needs a GPT folder (from `keras-ptft pretrain gpt` or save_to_preset).")
    # The default is what the model can take; a larger --max-length is refused naming the flag.
    limit = backbone.max_sequence_length
    max_length = limit if args.max_length is None else args.max_length
    if not 2 <= max_length <= limit:
        raise ValueError(f"--max-length must be in [2, {limit}] (this model's maximum), received {max_length}.")
    tokenizer = kp.models.load_tokenizer(args.path)
    if tokenizer is None:
        raise ValueError(f"{args.path!r} has no tokenizer (tokenizer.json) beside the model.")
    generator = kp.recipes.text_generator(backbone, tokenizer, sequence_length=max_length)
    options = {"k": args.top_k, "p": args.top_p, "temperature": args.temperature, "seed": args.seed}
    options = {key: value for key, value in options.items() if value is not None}
    for text in generator.generate(args.prompt, max_length=max_length, sampler=args.sampler, **options):
        print(text)
    return 0


def _add_export(commands) -> None:
    parser = commands.add_parser(
        "export",
        help="export a saved Keras model (.keras) to SavedModel / TFLite, verified",
        description="Export a model saved with model.save('...keras') to an export folder with a manifest; "
        "each artifact is checked against the Keras model.",
    )
    parser.add_argument("model", help="the .keras file")
    parser.add_argument("path", help="the export folder, e.g. saved_models/sentiment")
    parser.add_argument("--formats", nargs="+", default=None,
                        help="saved_model, tflite (token ids in), tflite_text (raw strings in); "
                        "default: every format the model's kind supports")
    parser.add_argument("--quantization", choices=["float16", "dynamic_int8", "int8"], default=None)
    parser.add_argument("--representative-data", default=None,
                        help="a text file, one example per line, to calibrate int8 and verify on "
                        "(a .npy file of uint8 images for image models)")
    parser.add_argument("--max-length", type=_positive_int, default=None,
                        help="causal LMs: total tokens generated up to, fixed at export")
    parser.add_argument("--top-k", type=_positive_int, default=None, help="masked LMs: predictions per [MASK]")
    parser.add_argument("--label-names", nargs="+", default=None,
                        help="image segmenters: class names for the manifest, background included")
    parser.add_argument("--min-label-agreement", type=_fraction, default=0.99)
    parser.add_argument("--overwrite", action="store_true")
    parser.set_defaults(run=_run_export)


def _run_export(args) -> int:
    import os

    import keras

    import keras_ptft as kp

    if not os.path.isfile(args.model):
        print(f"keras-ptft export: no model file {args.model!r}", file=sys.stderr)
        return 2
    data = None
    if args.representative_data and args.representative_data.endswith(".npy"):
        import numpy as np

        data = np.load(args.representative_data)
    elif args.representative_data:
        with open(args.representative_data, encoding="utf-8") as handle:
            data = [line.rstrip("\n") for line in handle if line.strip()]
    model = keras.saving.load_model(args.model)
    # The model's kind (text classifier, causal LM, masked LM, image classifier) comes from the
    # loaded class; only the options that kind takes are passed on.
    options = {name: value for name, value in (("max_length", args.max_length), ("top_k", args.top_k),
                                               ("label_names", args.label_names))
               if value is not None}
    try:
        path = kp.export.export(model, args.path, formats=args.formats, quantization=args.quantization,
                                representative_data=data, overwrite=args.overwrite,
                                min_label_agreement=args.min_label_agreement, **options)
    except (ValueError, OSError) as error:  # OSError: the target exists, is unwritable or lies under a file
        print(f"keras-ptft export: {error}", file=sys.stderr)
        return 1
    print(f"exported to {path}")
    return 0


def _add_predict(commands) -> None:
    parser = commands.add_parser("predict", help="predict with an export folder from raw text",
                                 description="Print one JSON line per text: label, label name, probabilities.")
    parser.add_argument("path", help="the export folder")
    parser.add_argument("--text", action="append", default=None,
                        help="a text to classify, a prompt, or a text with [MASK] (repeatable)")
    parser.add_argument("--image", action="append", default=None,
                        help="image models: a PNG/JPEG file or a .npy uint8 array (repeatable)")
    parser.add_argument("--format", default=None, help="saved_model, tflite_text or tflite (default: the first present)")
    parser.add_argument("--output", default=None,
                        help="image segmenters: save the label mask as a PNG (pixel value = class id); with "
                        "several --image, the i-th mask goes to NAME-i.png")
    parser.add_argument("--question", action="append", default=None,
                        help="question answering: a question (repeatable; the i-th goes with the i-th --context)")
    parser.add_argument("--context", action="append", default=None,
                        help="question answering: the context the answer is read from (repeatable)")
    parser.set_defaults(run=_run_predict)


def _run_predict(args) -> int:
    import base64
    import json
    import os

    from keras_ptft.export import Predictor

    pairs = bool(args.question or args.context)
    if sum((bool(args.text), bool(args.image), pairs)) != 1:
        print("keras-ptft predict: give --text (text models), --image (image models) or --question with --context "
              "(question answering), one of them", file=sys.stderr)
        return 2
    try:
        predictor = Predictor(args.path, format=args.format)
        # What the export reads and how its predictions print: its kind's runner, from the registry.
        runner, kind = predictor.runner, predictor.manifest["kind"]
        flags = {"image": "--image", "pair": "--question/--context"}
        flag = flags.get(runner.input_type, "--text")
        if (flags["image"] if args.image else flags["pair"] if pairs else "--text") != flag:
            raise ValueError(f"{args.path!r} is a {kind!r} export; pass {flag}.")
        if pairs and len(args.question or []) != len(args.context or []):
            raise ValueError(f"give one --context per --question; received {len(args.question or [])} --question "
                             f"and {len(args.context or [])} --context.")
        writes_masks = "mask_format" in runner.option_fields
        if args.output and not writes_masks:
            raise ValueError(f"--output saves segmentation masks; {args.path!r} is a {kind!r} export.")
        inputs = _read_images(args.image) if args.image else list(zip(args.question, args.context)) if pairs \
            else args.text
        options = {"mask_format": "png"} if writes_masks else {}
        records = runner.format_predictions(inputs, predictor.predict(inputs), options, predictor.label_names)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-ptft predict: {error}", file=sys.stderr)
        return 1
    outputs = [None] * len(records)
    if args.output:
        stem, extension = os.path.splitext(args.output)
        outputs = [args.output] if len(records) == 1 else \
            [f"{stem}-{i}{extension or '.png'}" for i in range(len(records))]
        os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    for source, record, output in zip(args.image or args.text or inputs, records, outputs):
        mask = record.pop("mask", None)
        if output:
            with open(output, "wb") as handle:
                handle.write(base64.b64decode(mask))
            record["mask"] = output
        if pairs:
            line = {"question": source[0], "context": source[1], **record}
        else:
            line = {"image" if args.image else runner.input_fields[1]: source, **record}
        print(json.dumps(line, ensure_ascii=False))
    return 0


def _read_images(files):
    import os

    import numpy as np

    images = []
    for file in files:
        if not os.path.isfile(file):
            raise FileNotFoundError(f"--image {file!r} does not exist.")
        if file.endswith(".npy"):
            images.append(np.load(file))
        else:
            import tensorflow as tf

            images.append(tf.io.decode_image(tf.io.read_file(file), expand_animations=False).numpy())
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"--image files must share one shape, received {sorted(shapes)}.")
    return np.stack(images)


def _add_serve(commands) -> None:
    parser = commands.add_parser("serve", help="serve an export folder over HTTP (JSON)",
                                 description="POST to /predict: {\"texts\": [...]} (text classifiers, masked LMs), "
                                 "{\"prompts\": [...], \"max_length\": N} (causal LMs), {\"images\": [base64 PNG/JPEG or "
                                 "nested uint8 lists]} (image classifiers and segmenters); GET /health.")
    parser.add_argument("path", help="the export folder")
    parser.add_argument("--port", type=_port, default=8000)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    parser.add_argument("--format", default=None, help="saved_model, tflite_text or tflite")
    parser.add_argument("--max-batch-size", type=_positive_int, default=32)
    parser.add_argument("--max-wait-ms", type=_non_negative_float, default=5.0)
    parser.add_argument("--max-request-bytes", type=_positive_int, default=1 << 20)
    parser.add_argument("--read-timeout", type=_positive_float, default=10.0,
                        help="seconds a client may take to send its request before it gets 408 (default 10)")
    parser.set_defaults(run=_run_serve)


def _run_serve(args) -> int:
    from keras_ptft.export import Predictor
    from keras_ptft.export.serve import Server

    try:
        predictor = Predictor(args.path, format=args.format)
    except (ValueError, FileNotFoundError) as error:
        print(f"keras-ptft serve: {error}", file=sys.stderr)
        return 1
    server = Server(predictor, host=args.host, port=args.port, max_batch_size=args.max_batch_size,
                    max_wait_ms=args.max_wait_ms, max_request_bytes=args.max_request_bytes,
                    read_timeout_s=args.read_timeout, verbose=True)
    host, port = server.server_address[:2]
    print(f"serving {args.path} ({predictor.format}) on http://{host}:{port} (POST /predict, GET /health)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0


def _add_finetune_translator(commands) -> None:
    # `finetune translator ...` is a sub-command of `finetune`; `finetune --backbone ...` without
    # it still fine-tunes a classifier.
    tasks = commands.choices["finetune"].add_subparsers(dest="task", parser_class=_Parser, metavar="{translator}")
    parser = tasks.add_parser(
        "translator",
        help="train a translator on sentence pairs",
        description="Train a translator on a TSV/CSV of sentence pairs (a header row; .gz allowed; the source "
        "and target columns by name, default the first two columns). From scratch (a SentencePiece vocabulary "
        "for both sides and a fresh encoder-decoder) or from a --backbone folder (`keras-ptft pretrain seq2seq`). "
        "Saves OUTPUT_DIR/model.keras, ready for `keras-ptft translate OUTPUT_DIR` and `keras-ptft export`.",
    )
    parser.add_argument("--train", required=True, type=_existing_file, help="pairs table (.tsv, .csv, optionally .gz)")
    parser.add_argument("--validation", default=None, type=_existing_file,
                        help="pairs scored (BLEU, chrF) after training, same format")
    parser.add_argument("--source-column", default=None, help="default: the first column")
    parser.add_argument("--target-column", default=None, help="default: the second column")
    parser.add_argument("--output-dir", required=True, help="where model.keras goes")
    parser.add_argument("--backbone", default=None, type=_existing_folder,
                        help="a pretrained Seq2Seq folder (default: train from scratch)")
    parser.add_argument("--size", default="mini", help="from scratch: tiny, mini, small, base (default: mini)")
    parser.add_argument("--vocabulary-size", type=_positive_int, default=8000)
    parser.add_argument("--sequence-length", type=_bounded(int, "an integer >= 3", 3), default=48)
    parser.add_argument("--epochs", type=_positive_int, default=20)
    parser.add_argument("--max-minutes", type=_positive_float, default=30.0,
                        help="stop training after this many minutes (default: 30)")
    parser.add_argument("--batch-size", type=_positive_int, default=64)
    parser.add_argument("--learning-rate", type=_positive_float, default=1e-3)
    _add_run_flags(parser)
    parser.add_argument("--verbose", "--debug", action="store_true", dest="verbose",
                        help="print TensorFlow's start-up log and the full traceback of an error")
    parser.set_defaults(run=_run_finetune_translator)


def _run_finetune_translator(args) -> int:
    from keras_ptft.data.seq2seq_preprocessing import read_text_pairs
    from keras_ptft.models.seq2seq import SEQ2SEQ_SIZES
    from keras_ptft.pipelines import finetune_translator

    if args.backbone is None and args.size not in SEQ2SEQ_SIZES:
        raise ValueError(f"--size must be one of {list(SEQ2SEQ_SIZES)}, received {args.size!r}.")
    distribution = _distribution(args, "seq2seq")
    columns = dict(source_column=args.source_column, target_column=args.target_column)
    try:
        sources, targets = read_text_pairs(args.train, **columns)
        validation = read_text_pairs(args.validation, **columns) if args.validation else None
    except ValueError as error:  # name the flags the user typed, not the function's arguments
        raise ValueError(str(error).replace("`source_column`", "--source-column")
                         .replace("`target_column`", "--target-column")) from None
    print(f"{len(sources)} training pairs" + (f", {len(validation[0])} validation pairs" if validation else ""),
          flush=True)
    finetune_translator(sources, targets, args.output_dir, backbone=args.backbone, size=args.size,
                        vocabulary_size=args.vocabulary_size, sequence_length=args.sequence_length,
                        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                        max_minutes=args.max_minutes, validation=validation, seed=args.seed,
                        checkpoint_dir=args.checkpoint_dir, distribution=distribution)
    return 0


def _add_translate(commands) -> None:
    parser = commands.add_parser(
        "translate", help="translate text with a trained translator",
        description="Translate with a folder from `keras-ptft finetune translator` (model.keras), a .keras file, "
        "or an export folder. Prints exactly one translation per source on stdout (line breaks inside a "
        "translation become spaces; an empty input line gives an empty line); progress goes to stderr.")
    parser.add_argument("path", help="the translator folder, .keras file or export folder")
    parser.add_argument("--text", action="append", default=None, help="a source text (repeatable)")
    parser.add_argument("--input", default=None, type=_existing_file, help="a UTF-8 file, one source per line")
    parser.add_argument("--sampler", choices=["greedy", "beam"], default="greedy")
    parser.add_argument("--num-beams", type=_positive_int, default=None,
                        help="beam width (implies --sampler beam; default 4; an export's is fixed)")
    parser.add_argument("--max-length", type=_bounded(int, "an integer >= 2", 2), default=None,
                        help="decoder tokens, the start token included (default: the model's training length)")
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--format", default=None, help="export folders: saved_model or tflite")
    parser.set_defaults(run=_run_translate)


def _run_translate(args) -> int:
    if bool(args.text) == bool(args.input):
        print("keras-ptft translate: give --text (repeatable) or --input FILE, not both or neither", file=sys.stderr)
        return 2
    if args.input:
        try:
            with open(args.input, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except UnicodeDecodeError as error:
            raise ValueError(f"--input {args.input!r} is not UTF-8 text ({error}).") from None
    else:
        lines = list(args.text)
    sampler = "beam" if args.num_beams is not None else args.sampler
    translate = _translate_function(args, sampler)
    sources = [(index, line.strip()) for index, line in enumerate(lines) if line.strip()]
    if len(sources) < len(lines):
        print(f"{len(lines) - len(sources)} empty line(s) give empty translations", file=sys.stderr, flush=True)
    translations = [""] * len(lines)
    for start in range(0, len(sources), args.batch_size):
        batch = sources[start : start + args.batch_size]
        for (index, _), translation in zip(batch, translate([text for _, text in batch])):
            translations[index] = " ".join(translation.splitlines())
        print(f"translated {min(start + args.batch_size, len(sources))}/{len(sources)}", file=sys.stderr, flush=True)
    for translation in translations:
        print(translation)
    return 0


def _translate_function(args, sampler: str):
    """`texts → translations` for a translator folder, .keras file or export folder."""
    import os

    if os.path.isfile(os.path.join(args.path, "manifest.json")):
        from keras_ptft.export import Predictor

        predictor = Predictor(args.path, format=args.format)
        if predictor.manifest["kind"] != "translator":
            raise ValueError(f"{args.path!r} is a {predictor.manifest['kind']!r} export, not a translator.")
        exported = predictor.manifest["generation"]
        if args.max_length is not None and args.max_length != exported["max_length"]:
            raise ValueError(f"--max-length is fixed at export for {args.path!r} ({exported['max_length']}); "
                             f"received {args.max_length}.")
        if args.num_beams is not None and args.num_beams != exported["num_beams"]:
            raise ValueError(f"--num-beams is fixed at export for {args.path!r} ({exported['num_beams']}); "
                             f"received {args.num_beams}.")
        return lambda texts: predictor.predict(texts, sampler=sampler)["translations"]
    if args.format is not None:
        raise ValueError("--format applies to export folders only.")
    path = os.path.join(args.path, "model.keras") if os.path.isdir(args.path) else args.path
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{args.path!r} holds no model.keras (from `keras-ptft finetune translator`) "
                                "and is not an export folder.")
    import keras

    import keras_ptft as kp

    model = keras.saving.load_model(path)
    if not isinstance(model, kp.tasks.Translator):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a translator.")
    options = {"num_beams": args.num_beams or 4} if sampler == "beam" else {"sampler": "greedy"}
    return lambda texts: model.translate(texts, max_length=args.max_length, batch_size=args.batch_size, **options)
def _add_compress(commands) -> None:
    parser = commands.add_parser(
        "compress", help="compare a fine-tuned classifier with its distilled, head-pruned and int8 versions",
        description="Distill (into every other block), prune attention heads (with recovery) and quantize (Keras "
        "int8) a classifier saved by `keras-ptft finetune`, then print accuracy, size, parameters and batch-1 "
        "latency (Keras and LiteRT) of each. The tables are read like finetune's (text and label columns; class "
        "names follow the folder's label_names.json).")
    parser.add_argument("path", type=_existing_folder, help="the fine-tuned classifier folder (holds model.keras)")
    parser.add_argument("--train", type=_existing_file, required=True,
                        help="CSV/TSV the student is distilled on (its texts) and the pruned model recovers on")
    parser.add_argument("--eval", type=_existing_file, required=True, help="labeled CSV/TSV the rows are scored on")
    parser.add_argument("--text-column", default=None)
    parser.add_argument("--label-column", default=None)
    parser.add_argument("--student-layers", type=_positive_int, default=None, help="default: half the teacher's")
    parser.add_argument("--head-fraction", type=_bounded(float, "a number in [0, 1)", 0, 0.999999), default=0.4)
    parser.add_argument("--epochs", type=_positive_int, default=1)
    parser.add_argument("--batch-size", type=_positive_int, default=32)
    parser.add_argument("--max-examples", type=_positive_int, default=None,
                        help="read at most this many rows of each table (a quick look)")
    parser.add_argument("--latency-samples", type=_positive_int, default=50)
    parser.add_argument("--no-litert", action="store_true", help="skip the TFLite exports and their latency")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=_run_compress)


def _run_compress(args) -> int:
    import json

    import keras

    import keras_ptft as kp
    from keras_ptft.pipelines.compress import compression_table, format_table

    keras.utils.set_random_seed(args.seed)
    names_file = os.path.join(args.path, "label_names.json")
    names = json.load(open(names_file, encoding="utf-8")) if os.path.isfile(names_file) else None
    tables = []
    for file in (args.train, args.eval):
        texts, labels, _ = kp.data.read_labeled_texts(file, args.text_column, args.label_column, label_names=names,
                                                      labels="names" if names else "ids", max_rows=args.max_examples)
        tables.append((texts, labels))
    rows = compression_table(args.path, tables[0], tables[1], student_layers=args.student_layers,
                             head_fraction=args.head_fraction, epochs=args.epochs, batch_size=args.batch_size,
                             latency_samples=args.latency_samples, litert=not args.no_litert)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
