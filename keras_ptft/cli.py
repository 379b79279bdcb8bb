"""`keras-ptft`: the toolkit from a shell.

Each sub-command lives in its own function below; `main` wires them to argparse.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keras-ptft", description="Pretrain, fine-tune and export transformers.")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_quickstart(commands)
    args = parser.parse_args(argv)
    return args.run(args)


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
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default=None, help="backbone size, e.g. tiny or mini")
    parser.set_defaults(run=_run_quickstart)


def _run_quickstart(args) -> int:
    from keras_ptft.quickstart import CheckFailed, load

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


if __name__ == "__main__":
    sys.exit(main())
