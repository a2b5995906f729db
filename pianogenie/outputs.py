"""Checking an output path before a command does any work: the one rule every command follows.

`check_output(path, ...)` refuses, with one line naming the path and the reason (a UserError):
- a path where the file cannot be written: an existing folder or special file where a file is
  expected, a parent that is a file, a folder this user may not write to;
- an output that is also an input (the same file, following links and hard links), or, where the
  command cannot recognise its own files, any existing file inside an input folder;
- an existing file this command did not write, recognised by `ours(path) -> bool` (each command
  knows what its own outputs look like: a notes file is gzip, a MIDI file starts with MThd, ...).

The writing itself goes through `pianogenie.util.atomic_paths` (temporary file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from pianogenie.util import UserError


def _first_existing(path: Path) -> Path:
    for p in [path, *path.parents]:
        if os.path.lexists(p):
            return p
    return Path(".")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except (ValueError, OSError, RuntimeError):
        return False


def check_output(
    path: str | os.PathLike,
    *,
    flag: str = "output",
    inputs: Iterable[str | os.PathLike | None] = (),
    ours: Callable[[Path], bool] | None = None,
    what: str = "file",
    folder: bool = False,
) -> Path:
    """Refuse `path` as an output (UserError) unless it can be written without loss; returns it.

    `flag` names the option in messages (`-o`, `--out`), `what` the kind of file it should be;
    `folder=True` checks a folder output (it may exist as a folder) instead of a file.
    """
    path = Path(path)
    where = f"{flag} {path}"
    if os.path.lexists(path):
        if path.is_dir() and not folder:
            raise UserError(f"{where} is a folder; expected a file name")
        if folder and not path.is_dir():
            raise UserError(f"{where} exists and is not a folder")
        if not folder and not path.is_file():
            raise UserError(f"{where} exists and is not a regular file; refusing to replace it")
    else:
        anchor = _first_existing(path.parent)
        if not anchor.is_dir():
            raise UserError(f"cannot write {where}: {anchor} is not a folder")
    parent = path.parent if os.path.lexists(path.parent) else _first_existing(path.parent)
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {where}: permission denied in {parent}")
    for source in inputs:
        if source is None:
            continue
        source = Path(source)
        if not os.path.exists(source):
            continue
        if os.path.exists(path) and os.path.samefile(path, source):
            raise UserError(f"{where} is also the input {source}; choose another output")
        if source.is_dir() and ours is None and path.exists() and _inside(path, source):
            raise UserError(f"{where} is a file of the input folder {source}; refusing to overwrite it")
        if folder and source.exists() and _inside(source, path) and path.exists():
            raise UserError(f"{where} holds the input {source}; choose another output folder")
    if ours is not None and not folder and path.is_file() and not ours(path):
        raise UserError(f"{where} exists and is not a {what} this command wrote; refusing to overwrite it "
                        "(remove it or choose another name)")
    return path


def head(path: Path, n: int = 16) -> bytes:
    """The first `n` bytes of `path` (b"" if unreadable): enough to recognise a format."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def is_json_object_with(*keys: str, max_bytes: int = 1 << 24) -> Callable[[Path], bool]:
    """`ours` for JSON outputs: a JSON object holding all of `keys` (an empty file counts as ours)."""
    import json

    def ours(path: Path) -> bool:
        try:
            if path.stat().st_size == 0:
                return True
            if path.stat().st_size > max_bytes:
                return False
            obj = json.loads(path.read_bytes())
        except (OSError, ValueError, RecursionError):
            return False
        return isinstance(obj, dict) and all(k in obj for k in keys)

    return ours
