"""Piano Genie: an 8-button interface to an LSTM autoencoder of expert piano performances.

The public API, imported on first use (so that `import pianogenie` stays cheap, and torch is
imported only by what needs it):

    from pianogenie import PianoGenie
    genie = PianoGenie.load()               # the shipped model (or a run folder / checkpoint)
    key = genie.press(time=0.0, button=3)   # the key (0..87) it plays; genie.velocity its loudness

`load_notes` reads a notes file from `pianogenie prepare`; `load_model` a checkpoint as a torch
model and its Config; `parse_scale`, `parse_pitches`, `allowed_keys` and `scale_names` restrict
the keys a genie may play.
"""

from __future__ import annotations

# The first of our code a CLI process runs: from here on a SIGINT/SIGTERM during start-up (imports,
# argument parsing) is one line and 130/143; the CLI installs its own handlers before it writes.
# `_signal` (the C module) rather than `signal`, whose import (enum) is itself a few milliseconds.
import _signal
import itertools as _itertools
import os as _os
import sys as _sys

_NAMES = {2: "SIGINT", 15: "SIGTERM"}


def _early_exit(signum, frame):
    # nothing is written yet: leave at once, in one line (an exception raised inside a C
    # extension's import can crash the interpreter)
    command = next((a for a in _sys.argv[1:] if not a.startswith("-")), None)
    _os.write(
        2,
        f"pianogenie {command}: interrupted ({_NAMES.get(signum, signum)}) while starting; "
        "nothing was written\n".encode(),
    )
    _os._exit(128 + signum)


def _is_the_cli() -> bool:
    """This process is `pianogenie ...` or `python -m pianogenie ...` (never a library user's)."""
    if _sys.argv and _sys.argv[0].rpartition("/")[2] == "pianogenie":
        return True
    argv = getattr(_sys, "orig_argv", [])
    return any(a == "-m" and b == "pianogenie" for a, b in _itertools.pairwise(argv))


if _is_the_cli():
    for _s in _NAMES:
        _signal.signal(_s, _early_exit)

import importlib  # noqa: E402 (after the handlers)

__version__ = "0.2.0"

# public name -> the module that defines it
_API = {
    "PianoGenie": "pianogenie.genie",
    "Config": "pianogenie.config",
    "load_notes": "pianogenie.notes_file",
    "load_model": "pianogenie.model",
    "allowed_keys": "pianogenie.scales",
    "parse_pitches": "pianogenie.scales",
    "parse_scale": "pianogenie.scales",
    "scale_names": "pianogenie.scales",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'pianogenie' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
