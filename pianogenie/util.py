"""Small shared helpers: the user-facing error type, signals as exceptions, and atomic file writes.

Every command writes its outputs through `atomic_paths` (here) after checking them with
`pianogenie.outputs.check_output`: each output is written to a temporary file beside it and renamed
onto its name only when all of them are complete, with SIGINT/SIGTERM held back during the renames,
so an interrupted or failed command leaves no partial file and never half of a set of outputs.
Signals are also held while a temporary file is created and recorded, so that an interrupt never
leaves one behind. `WRITTEN` lists the outputs completed so far, for the CLI's interrupt line.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input: the CLI prints the message alone (no traceback) and exits 2."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread so that every `finally` cleans up; the CLI exits
    128 + signum (130 for Ctrl-C, 143 for SIGTERM) with one line."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


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


def os_reason(e: OSError) -> str:
    """The human part of an OSError ("No space left on device"), without errno or paths."""
    return e.strerror or str(e) or type(e).__name__


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


def finite_json(obj):
    """`obj` with every non-finite float (NaN, Infinity) as None: what JSON can hold."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj
