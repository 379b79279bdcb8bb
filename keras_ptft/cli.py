"""`keras-ptft` command line: the quickstart (and, as they land, pretrain/finetune/export/...)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="keras-ptft", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    quick = commands.add_parser(
        "quickstart",
        help="pretrain a BERT on the embedded corpus, fine-tune, compare with scratch, export",
    )
    quick.add_argument("--fast", action="store_true", help="a smaller run (about 2 minutes on 2 cores)")
    quick.add_argument("--output-dir", default="saved_models", help="where artifacts go (default: saved_models)")
    quick.add_argument("--seed", type=int, default=0)
    quick.add_argument("--size", default=None, help="BERT size (tiny, mini, small, medium, base)")

    args = parser.parse_args(argv)
    if args.command == "quickstart":
        return _quickstart(args)
    return 2


def _quickstart(args) -> int:
    import dataclasses

    from keras_ptft.quickstart import CheckFailed, QuickstartSettings, run_quickstart

    settings = QuickstartSettings.fast() if args.fast else QuickstartSettings()
    if args.size:
        settings = dataclasses.replace(settings, size=args.size)
    try:
        run_quickstart(settings, output_dir=args.output_dir, seed=args.seed)
    except CheckFailed as failure:
        print(f"\nkeras-ptft quickstart: CHECK FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
