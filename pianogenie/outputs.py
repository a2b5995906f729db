"""Outputs, checked and written: the one rule every command follows.

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

Then every output is written through `atomic_paths` (below): to a temporary file beside it,
renamed onto its name only when all of them are complete, with SIGINT/SIGTERM held back during
the renames and while a temporary file is created and recorded, so an interrupted or failed command
leaves no partial file, no temporary file, and never half of a set of outputs. `WRITTEN` lists the
outputs completed so far, for the CLI's interrupt line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from pianogenie.util import UserError, os_reason


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
            f"{where} exists and is not {_a(what)} this command wrote (it carries no pianogenie "
            "mark); refusing to overwrite it (remove it, choose another name, or pass --force)"
        )
    return path


def _a(noun: str) -> str:
    """`noun` with its indefinite article ("an image", "a MIDI file"): by the first letter, which
    is right for every `what` the commands pass."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


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

    if not folder_marked(folder, mark_file, command):
        atomic_write_text(Path(folder) / mark_file, json.dumps(stamp({}, command)) + "\n")


# --- writing: temporary files renamed into place ----------------------------------------------

# Every output this process has put in place (in order): what an interrupted command did write.
WRITTEN: list[Path] = []

# Temporary names: ".NAME.XXXXXXXX.tmp" beside NAME, or, where that would be longer than the
# file system allows (NAME itself may be up to NAME_MAX), the short ".pianogenie-XXXXXXXX.tmp".
_TMP_EXTRA = len("..") + 8 + len(".tmp")


def name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def tmp_prefix(path: Path) -> str:
    """The mkstemp/mkdtemp prefix for a temporary twin of `path` that fits NAME_MAX."""
    folder = path.parent if path.parent.exists() else Path(".")
    if len(os.fsencode(path.name)) + _TMP_EXTRA <= name_max(folder):
        return f".{path.name}."
    return ".pianogenie-"


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back until the block ends (then deliver them): a group of renames, or a
    temporary file's creation and its recording, is never cut in two.

    Python runs signal handlers in the main thread whichever thread the kernel picked, so a
    thread's signal mask alone does not hold them in a process with other threads (torch's, a
    progress bar's): in the main thread the handlers themselves are swapped for one that only
    records the signal, which is raised again, to the handler it was meant for, on leaving."""
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers run in the main thread only: this thread is never interrupted by them
        return
    pending: list[int] = []
    try:
        old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    except (ValueError, OSError):  # not the main interpreter: best effort
        yield
        return
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # delivered now, to the handler it was meant for


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield one temporary path beside each of `paths`; when the block succeeds, rename them all
    onto `paths` (signals held back meanwhile); on any failure or interrupt, delete them.

    Readers never see a partial file, an interrupted write leaves the previous files untouched,
    and outputs that belong together (a notes file and its report) are written both or neither.
    An OSError while creating, writing or renaming is a UserError naming the path and the reason.
    """
    finals = [Path(p) for p in paths]
    tmps: list[Path] = []
    umask = os.umask(0)
    os.umask(umask)
    try:
        for path in finals:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with signals_held():  # created and recorded as one step: the cleanup below knows every file
                    fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix(path), suffix=".tmp", dir=path.parent)
                    tmps.append(Path(tmp_name))
                os.close(fd)
                os.chmod(tmp_name, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private to their writer
            except OSError as e:
                raise UserError(f"cannot write {path}: {os_reason(e)}") from None
        try:
            yield list(tmps)
        except OSError as e:
            raise UserError(
                f"cannot write {finals[0] if len(finals) == 1 else ', '.join(map(str, finals))}: {os_reason(e)}"
            ) from None
        with signals_held():
            done: list[Path] = []
            for tmp, path in zip(tmps, finals):
                try:
                    os.replace(tmp, path)
                except OSError as e:
                    for written in done:  # both or neither: take back what this group already put in place
                        with contextlib.suppress(OSError):
                            written.unlink()
                    raise UserError(f"cannot write {path}: {os_reason(e)}") from None
                done.append(path)
            WRITTEN.extend(done)
    finally:
        with signals_held():  # the cleanup is not cut short by a second signal
            for tmp in tmps:
                with contextlib.suppress(OSError):
                    tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """`atomic_paths` for one file: yield a temporary path beside `path`, renamed onto it on success."""
    with atomic_paths(path) as (tmp,):
        yield tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
