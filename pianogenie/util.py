"""Small shared helpers: the user-facing error type, signals as exceptions, the reason of an OSError,
and JSON-safe numbers. Writing outputs safely is `pianogenie.outputs`."""

from __future__ import annotations

import math
import signal


class UserError(Exception):
    """A problem with the user's input: the CLI prints the message alone (no traceback) and exits 2."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread so that every `finally` cleans up; the CLI exits
    128 + signum (130 for Ctrl-C, 143 for SIGTERM) with one line."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def os_reason(e: OSError) -> str:
    """The human part of an OSError ("No space left on device"), without errno or paths."""
    return e.strerror or str(e) or type(e).__name__


def finite_json(obj):
    """`obj` with every non-finite float (NaN, Infinity) as None: what JSON can hold."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj
