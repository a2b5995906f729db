"""The `pianogenie` command: one subcommand per pipeline stage, each in its module of pianogenie.commands.

Each module listed in SUBCOMMANDS defines `add_parser(subparsers)`, which registers its
subcommand and sets `func=run` where `run(args) -> int` does the work by calling the library.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
import warnings

from pianogenie import __version__, outputs
from pianogenie.util import Interrupted, UserError

# subcommand -> (module that owns it, one-line help); order = order in --help
SUBCOMMANDS = {
    "prepare": ("pianogenie.commands.prepare", "MAESTRO MIDI -> validated note sequences (gzip JSON)"),
    "train": ("pianogenie.commands.train", "train the autoencoder on a prepared notes file"),
    "evaluate": ("pianogenie.commands.evaluate", "score a trained model (or the 2021 tutorial's model.pt) on a split"),
    "export": (
        "pianogenie.commands.export",
        "export a trained decoder to TensorFlow.js weights for the browser app (or for @magenta/music)",
    ),
    "serve": ("pianogenie.commands.serve", "play Piano Genie in the browser (serves the app and a model on 127.0.0.1)"),
    "build-site": (
        "pianogenie.commands.build_site",
        "write the app and a model as a static website (any host, installable, offline)",
    ),
    "decode": ("pianogenie.commands.decode", "turn a button performance (MIDI/JSON/CSV) into a piano MIDI file"),
    "plot": (
        "pianogenie.commands.plot",
        "plot a run's training curves (loss, contour violation ratio) to PNG, PDF or SVG",
    ),
}


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line, `pianogenie CMD: error: ...` (exit 2), like every other bad input:
    the usage block stays in --help, which the line points to."""

    def error(self, message: str):
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser of `command`; the others get a placeholder with their help line, so that
    a command imports only its own module (torch alone takes seconds to import)."""
    parser = OneLineParser(
        prog="pianogenie",
        description="Piano Genie: improvise on a piano with 8 buttons. "
        "Pipeline: prepare (MIDI -> notes) -> train -> evaluate -> export -> serve / decode. "
        "`pianogenie COMMAND --help` explains each command.",
    )
    parser.add_argument("--version", action="version", version=f"pianogenie {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help=f"show the traceback of an unexpected error (as {DEBUG_ENV}=1 does)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, (module, help_line) in SUBCOMMANDS.items():
        if name == command:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_line)
    return parser


DEBUG_ENV = "PIANOGENIE_DEBUG"


def _raise_interrupted(signum, frame):
    # one signal is enough: while the command cleans up (temporary files, worker processes),
    # further Ctrl-Cs are ignored rather than cutting the cleanup short
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_IGN)
    raise Interrupted(signum)


def _interrupted_line(command: str | None, signum: int) -> str:
    """What an interrupt did: the outputs completed before it (outputs.WRITTEN), and that nothing
    partial was written (every output is all or nothing)."""
    done = list(dict.fromkeys(str(p) for p in outputs.WRITTEN))
    what = f"{', '.join(done[:4])}{' …' if len(done) > 4 else ''} had been written in full before it; " if done else ""
    return f"pianogenie {command}: interrupted ({signal.Signals(signum).name}); {what}nothing partial was written"


def _exit_now(command: str | None, signum: int) -> None:
    # while the command's modules are imported and its arguments parsed nothing is written yet:
    # leave at once (an exception raised inside a C extension's import can crash the interpreter)
    print(_interrupted_line(command, signum), file=sys.stderr, flush=True)
    os._exit(128 + signum)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Exit status: 0 done, 2 bad input (one line), 130/143 interrupted by
    SIGINT/SIGTERM (one line, no partial file), 1 an unexpected error (one line; the traceback with
    --debug or PIANOGENIE_DEBUG=1)."""
    called_with_argv = argv is not None
    outputs.WRITTEN.clear()  # this command's outputs only (main may run several times in one process)
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    command = next((a for a in argv if not a.startswith("-")), None)
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            # as the CLI, leave at once while importing; called in-process, never kill the caller
            early = (lambda signum, frame: _exit_now(command, signum)) if not called_with_argv else _raise_interrupted
            handlers[s] = signal.signal(s, early)
    try:
        try:
            with warnings.catch_warnings():
                if not debug:
                    # a library's warning (numpy's RuntimeWarnings, tqdm's, torch's) is not the user's
                    # business: errors are one line, results are printed; --debug shows warnings too
                    warnings.simplefilter("ignore")
                    if not called_with_argv:
                        os.environ.setdefault("PYTHONWARNINGS", "ignore")  # worker processes too
                return _main(argv, command, bool(handlers))
        finally:
            # The command has ended: a signal must not interrupt the line that reports how (an
            # exception raised inside an except clause escapes its siblings as a traceback). One
            # arriving before this point raises here instead, and is reported as the interrupt.
            for s in handlers:
                signal.signal(s, signal.SIG_IGN)
    except UserError as e:
        name = f"pianogenie {command}" if command in SUBCOMMANDS else "pianogenie"
        print(f"{name}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        print(_interrupted_line(command, signum), file=sys.stderr)
        return 128 + signum
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # the last-resort net: a bug, or an input no check caught yet
        if debug:
            traceback.print_exc()
        print(
            f"pianogenie {command}: unexpected error: {type(e).__name__}: {_one_line(e)} "
            f"(a bug: please report it; --debug or {DEBUG_ENV}=1 shows the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if called_with_argv:  # in-process callers get their handlers back (the CLI exits ignoring them)
            for s, old in handlers.items():
                signal.signal(s, old)


def _main(argv: list[str], command: str | None, handle_signals: bool) -> int:
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if getattr(args, "accepts_overrides", False):
        args.overrides = extra  # config overrides like --batch_size=64, checked by Config
    elif extra:  # the command's own parser words it (pianogenie decode: error: ...)
        raise UserError(f"unrecognized arguments: {' '.join(extra)} (see `pianogenie {command} --help`)")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if handle_signals:  # from here on the command writes: a signal unwinds it, cleaning up on the way
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, _raise_interrupted)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
