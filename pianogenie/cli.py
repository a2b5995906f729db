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

# subcommand -> (module that owns it, one-line help); order = order in --help
SUBCOMMANDS = {
    "prepare": ("pianogenie.prepare", "MAESTRO MIDI -> validated note sequences (gzip JSON)"),
    "train": ("pianogenie.train", "train the autoencoder on a prepared notes file"),
    "evaluate": ("pianogenie.evaluate", "score a trained model (or the 2021 tutorial's model.pt) on a split"),
    "export": ("pianogenie.export", "export a trained decoder to TensorFlow.js weights for the browser app"),
    "serve": ("pianogenie.serve", "play Piano Genie in the browser (serves the app and a model on 127.0.0.1)"),
    "decode": ("pianogenie.decode", "turn a button performance (MIDI/JSON/CSV) into a piano MIDI file"),
    "plot": ("pianogenie.plot", "plot a run's training curves (loss, contour violation ratio) to PNG"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser of `command`; the others get a placeholder with their help line, so that
    a command imports only its own module (torch alone takes seconds to import)."""
    parser = argparse.ArgumentParser(
        prog="pianogenie",
        description="Piano Genie: improvise on a piano with 8 buttons. "
        "Pipeline: prepare (MIDI -> notes) -> train -> evaluate -> export -> serve / decode. "
        "`pianogenie COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"pianogenie {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_line) in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
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
