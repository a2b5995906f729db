"""Checking an output path before a command does any work: the one rule every command follows.

`check_output(path, ...)` refuses, with one line naming the path and the reason (a UserError):
- a path where the file cannot be written: an existing folder or special file where a file is
  expected, a parent that is a file, a folder this user may not write to;
- an output that is also an input (the same file, following links and hard links), or, where the
  command cannot recognise its own files, any existing file inside an input folder;
- an existing file this command did not write. "Wrote" is proof, not a look-alike: every output
  carries a mark naming the command that wrote it (`mark(command)`), in the place its format keeps
  such things, and `written_by(command)` (the usual `ours`) finds it there:
    JSON: a top-level key `"written_by"`; gzip: the gzip header's comment (FCOMMENT, which every
    gzip reader skips); MIDI: a text meta event; PNG: the `Software` text chunk; PDF and SVG: the
    `Creator` metadata matplotlib writes. A folder output keeps its mark in a file inside it.
  An empty file holds nothing to lose and counts as replaceable. `force=True` (each command's
  `--force`) replaces an existing file without the proof; it never replaces a folder, a special
  file or an input.

The writing itself goes through `pianogenie.util.atomic_paths` (temporary file + rename).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from pianogenie.util import UserError, name_max


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
    force: bool = False,
) -> Path:
    """Refuse `path` as an output (UserError) unless it can be written without loss; returns it.

    `flag` names the option in messages (`-o`, `--out`), `what` the kind of file it should be;
    `folder=True` checks a folder output (it may exist as a folder) instead of a file.
    """
    path = Path(path)
    where = f"{flag} {path}"
    if path.name and len(os.fsencode(path.name)) > (limit := name_max(_first_existing(path.parent))):
        raise UserError(
            f"{where}: the name is {len(os.fsencode(path.name))} bytes long; the file system allows at most {limit}"
        )
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
    if ours is not None and not folder and not force and path.is_file() and not ours(path):
        raise UserError(
            f"{where} exists and is not a {what} this command wrote (it carries no pianogenie "
            "mark); refusing to overwrite it (remove it, choose another name, or pass --force)"
        )
    return path


def add_force(parser, what: str = "outputs") -> None:
    """The `--force` option of a command that writes."""
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"replace existing {what} even where they carry no mark of this command "
        "(by default a file this command did not write is never overwritten)",
    )


# --- the marks ---------------------------------------------------------------------------------

MARK_KEY = "written_by"
MAX_MARKED_BYTES = 1 << 26  # a file larger than this is not read for its mark (none of ours is)


def mark(command: str) -> str:
    """The text that proves `pianogenie COMMAND` wrote a file."""
    return f"pianogenie {command}"


def stamp(obj: dict, command: str) -> dict:
    """`obj` with the JSON mark of `command` as its first key."""
    return {MARK_KEY: mark(command), **{k: v for k, v in obj.items() if k != MARK_KEY}}


def gzip_marked(gz: bytes, command: str) -> bytes:
    """The gzip stream `gz` (from any gzip writer) with `mark(command)` as its header comment
    (FCOMMENT; every gzip reader skips it). The compressed data is untouched."""
    import gzip

    if len(gz) < 18 or gz[:4] != b"\x1f\x8b\x08\x00":  # a header with fields of its own: rewrite it plainly
        gz = gzip.compress(gzip.decompress(gz), compresslevel=1, mtime=0)
        assert gz[3] == 0
    return gz[:3] + b"\x10" + gz[4:10] + mark(command).encode() + b"\x00" + gz[10:]


def gzip_comment(head_bytes: bytes) -> bytes | None:
    """The FCOMMENT of a gzip header (None if the bytes do not start one that has it)."""
    import struct

    if len(head_bytes) < 10 or head_bytes[:3] != b"\x1f\x8b\x08":
        return None
    flags, at = head_bytes[3], 10
    try:
        if flags & 4:  # FEXTRA
            at += 2 + struct.unpack("<H", head_bytes[at : at + 2])[0]
        if flags & 8:  # FNAME
            at = head_bytes.index(b"\x00", at) + 1
        if flags & 16:
            return head_bytes[at : head_bytes.index(b"\x00", at)]
    except (ValueError, struct.error):
        return None
    return None


def image_metadata(fmt: str, command: str) -> dict:
    """matplotlib `savefig(metadata=...)` carrying the mark (PNG: Software; PDF, SVG: Creator)."""
    return {"Software" if fmt == "png" else "Creator": mark(command)}


def midi_text_event(command: str) -> bytes:
    """The bytes of a MIDI text meta event (FF 01 len text) holding the mark."""
    text = mark(command).encode()
    return b"\xff\x01" + bytes([len(text)]) + text


def _marked(data: bytes, command: str) -> bool:
    m = mark(command).encode()
    if data.startswith(b"\x1f\x8b"):
        return gzip_comment(data[:4096]) == m
    if data.startswith(b"MThd"):
        return midi_text_event(command) in data
    if data.startswith(b"\x89PNG"):
        import struct

        return struct.pack(">I", 9 + len(m)) + b"tEXtSoftware\x00" + m in data
    if data.startswith(b"%PDF"):
        return b"/Creator (" + m + b")" in data
    if data.lstrip()[:5] in (b"<?xml", b"<svg ", b"<svg\n"):
        return b"<dc:title>" + m + b"</dc:title>" in data
    if data.lstrip()[:1] == b"{":
        import json

        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            return False
        return isinstance(obj, dict) and obj.get(MARK_KEY) == mark(command)
    return False


def written_by(command: str) -> Callable[[Path], bool]:
    """`ours` for `check_output`: the file carries `command`'s mark (or is empty)."""

    def ours(path: Path) -> bool:
        try:
            size = path.stat().st_size
            if size == 0:
                return True
            if size > MAX_MARKED_BYTES:
                return False
            with open(path, "rb") as f:
                data = f.read(4096)
                if not data.startswith(b"\x1f\x8b"):  # gzip: the header decides (notes files are large)
                    data += f.read(MAX_MARKED_BYTES)
        except OSError:
            return False
        return _marked(data, command)

    return ours


def head(path: Path, n: int = 16) -> bytes:
    """The first `n` bytes of `path` (b"" if unreadable): enough to recognise a format."""
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def folder_marked(folder: Path, mark_file: str, command: str) -> bool:
    """A folder output's proof: `folder/mark_file` holds `command`'s JSON mark."""
    path = Path(folder) / mark_file
    try:
        return path.is_file() and path.stat().st_size > 0 and written_by(command)(path)
    except OSError:
        return False


def mark_folder(folder: Path, mark_file: str, command: str) -> None:
    """Write `folder/mark_file` (before anything else the command puts in `folder`)."""
    import json

    from pianogenie.util import atomic_write_text

    if not folder_marked(folder, mark_file, command):
        atomic_write_text(Path(folder) / mark_file, json.dumps(stamp({}, command)) + "\n")
