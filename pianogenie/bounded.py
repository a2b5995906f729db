"""Reading an input with bounds: every file a command reads goes through `read_file` (a regular
file, at most a stated size: never /dev/zero, a FIFO or a folder read until memory runs out), and
every JSON input through `load_json` (bounded nesting and number length, no NaN/Infinity, every
number finite). A bound that is exceeded is a UserError naming the input and the bound.

The bounds are far above any real input (a MAESTRO notes file is ~30 MB, a performance a few
thousand presses) and far below what exhausts memory or time.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import BinaryIO

from pianogenie.util import UserError

MB = 1 << 20
MAX_JSON_DEPTH = 32  # our files nest 4 deep at most
MAX_NUMBER_CHARS = 40  # a float64 needs ~25; anything longer is not a real value


class NotRegular(OSError):
    """The path is a folder, device, FIFO or socket, not a regular file."""


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for reading if it is a regular file; NotRegular otherwise. Opened without
    blocking, so that a FIFO with no writer is refused instead of waiting for one forever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file (a device, pipe or socket)"
            raise NotRegular(kind)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_file(path: str | os.PathLike, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file `path` (UserError: missing, not a regular file, over `max_bytes`)."""
    path = Path(path)
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise UserError(f"{what} {path} is {size / MB:.1f} MB; at most {max_bytes / MB:g} MB is read")
            data = f.read(max_bytes + 1)
    except NotRegular as e:
        if str(e) == "a folder":
            raise UserError(f"{what} {path} is a folder; expected a file") from None
        raise UserError(f"{what} {path} is {e}; refusing to read it") from None
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path} (cannot read it)") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a folder; expected a file") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror or e}") from None
    if len(data) > max_bytes:  # grew while read
        raise UserError(f"{what} {path} holds more than {max_bytes / MB:g} MB")
    return data


def _number(kind):
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
        value = kind(text)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{text[:20]} is out of range")
        return value

    return parse


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def depth_within(obj, limit: int) -> bool:
    """Whether `obj` nests no deeper than `limit` (iterative: a deep one cannot exhaust the stack)."""
    stack = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if d > limit:
            return False
        if isinstance(o, dict):
            stack.extend((v, d + 1) for v in o.values())
        elif isinstance(o, list):
            stack.extend((v, d + 1) for v in o)
    return True


def load_json(data: bytes | str, where: str, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON with bounds (UserError naming `where`): nesting, number length, finite numbers."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UserError(f"{where} is not UTF-8 text (JSON)") from None
    # json's C scanner counts its recursion: a deeper nesting than Python's limit is a
    # RecursionError, not a crash; shallower ones are measured after the parse (iteratively)
    try:
        obj = json.loads(data, parse_int=_number(int), parse_float=_number(float), parse_constant=_no_constant)
    except RecursionError:
        raise UserError(f"{where}: JSON nested deeper than {max_depth} levels") from None
    except ValueError as e:
        raise UserError(f"{where} is not valid JSON: {' '.join(str(e).split())[:160]}") from None
    if not depth_within(obj, max_depth):
        raise UserError(f"{where}: JSON nested deeper than {max_depth} levels")
    return obj
