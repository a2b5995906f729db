"""The `pianogenie` command: one subcommand per pipeline stage, each owned by its module.

Each module listed in SUBCOMMANDS defines `add_parser(subparsers)`, which registers its
subcommand and sets `func=run` where `run(args) -> int` does the work.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pianogenie import __version__
from pianogenie.util import UserError

# subcommand -> module that owns it (order = order in --help)
SUBCOMMANDS = {
    "prepare": "pianogenie.data",
    "train": "pianogenie.train",
    "evaluate": "pianogenie.evaluate",
    "export": "pianogenie.export",
    "serve": "pianogenie.serve",
    "decode": "pianogenie.decode",
    "plot": "pianogenie.plot",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pianogenie",
        description="Piano Genie: improvise on a piano with 8 buttons. "
        "Pipeline: prepare (MIDI -> notes) -> train -> evaluate -> export -> serve / decode.",
    )
    parser.add_argument("--version", action="version", version=f"pianogenie {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in SUBCOMMANDS.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # a real missing dependency, not a not-yet-written module
                raise
            continue
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "accepts_overrides", False):
        args.overrides = extra  # config overrides like --batch_size=64, checked by Config
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"pianogenie {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pianogenie {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
