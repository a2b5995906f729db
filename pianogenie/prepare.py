"""`pianogenie prepare SOURCE -o OUT`: every performance of a MIDI source -> the notes file or store.

Parses the performances on all cores (`pianogenie.midi`), found by whichever kind of
`pianogenie.sources` SOURCE is, and writes, as they come and in the source's order, the gzip
JSON notes file (`pianogenie.notes_file`) or the memory-mappable notes store (`pianogenie.store`),
with its report.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import numpy as np
import orjson

from pianogenie.midi import ALL_TRACKS, TrackSelection, parse_midi
from pianogenie.notes_file import SPLITS, _cache_write, _gzip, notes_to_json
from pianogenie.outputs import _inside, atomic_paths, check_output, folder_marked, gzip_marked, stamp, written_by
from pianogenie.sources import Performance, Source
from pianogenie.store import StoreWriter, read_manifest, store_files
from pianogenie.util import UserError


@dataclass
class _Result:
    index: int
    json: bytes | None = None  # the notes as JSON rows (JSON output only)
    array: np.ndarray | None = None  # None: skipped
    reason: str = ""
    notes: int = 0
    dropped_out_of_range: int = 0
    dropped_non_positive: int = 0
    used_pretty_midi: bool = False
    digest: bytes = b""  # of the file's bytes: byte-identical files are counted once
    tracks: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    labels: np.ndarray | None = None  # (N, 4) int8 per-note condition ids (pianogenie.labels)
    label_sources: dict | None = None  # where each label came from, for the report


@dataclass(frozen=True)
class _Task:
    """What every parser process needs: where to read, which tracks, whether to encode JSON."""

    source: Source
    tracks: TrackSelection = ALL_TRACKS
    json: bool = True
    labels: str = "none"  # pianogenie.labels.LABEL_MODES
    style: int = 0  # style id every note of this source gets


_WORKER_TASK: _Task | None = None


def _init_worker(task: _Task) -> None:
    global _WORKER_TASK
    _WORKER_TASK = task


def _prepare_one(job: tuple) -> _Result:
    index, midi_filename, extras = job
    task = _WORKER_TASK
    assert task is not None, "_init_worker runs first"
    try:
        data = task.source.read(midi_filename)
    except FileNotFoundError as e:
        return _Result(index, reason=f"missing: listed by the source but not found ({e.strerror or e})")
    except OSError as e:
        return _Result(index, reason=f"unreadable: {e.strerror or e}")
    if not data:
        return _Result(index, reason="empty file")
    digest = hashlib.blake2b(data, digest_size=16).digest()
    try:
        parsed = parse_midi(data, task.tracks)
    except Exception as e:  # symusic raises RuntimeError, pretty_midi/mido many kinds
        return _Result(
            index,
            reason=f"not a readable MIDI file: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            digest=digest,
        )
    r = _Result(
        index,
        notes=len(parsed.notes),
        dropped_out_of_range=parsed.dropped_out_of_range,
        dropped_non_positive=parsed.dropped_non_positive,
        used_pretty_midi=parsed.used_pretty_midi,
        digest=digest,
        tracks=parsed.tracks,
        ignored=parsed.ignored,
    )
    if not parsed.tracks and parsed.ignored and not task.tracks.everything:
        r.reason = f"no track matches {task.tracks.describe()} (it has {'; '.join(parsed.ignored[:8])})"
    elif len(parsed.notes) == 0:
        r.reason = "no playable notes"
    else:
        r.array = parsed.notes
        if task.json:
            r.json = notes_to_json(parsed.notes)
        if task.labels != "none":
            from pianogenie.labels import performance_labels

            try:
                r.labels, r.label_sources = performance_labels(
                    parsed.notes, extras, task.source.read, task.labels, task.style
                )
            except Exception as e:  # an estimator failing on odd notes: the file stays, unlabelled
                r.labels = np.zeros((len(parsed.notes), 4), np.int8)
                r.label_sources = {"keysig": f"error: {e}", "chord": f"error: {e}", "style": "none"}
    return r


def _worker_main(conn, inherited: list, parent_pid: int, task: _Task) -> None:
    """A parser process: jobs in, results out, over its own pipe (no lock shared with any other
    process, so a worker killed at any moment can never leave the others or the parent waiting)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a worker writes nothing: dying at once is clean
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for c in inherited:  # the parent's ends of the pipes: held here, they would hide the parent's exit
        c.close()
    _init_worker(task)
    try:
        while True:
            if not conn.poll(0.5):
                if os.getppid() != parent_pid:  # the parent is gone (even killed): stop
                    return
                continue
            if (job := conn.recv()) is None:
                return
            conn.send(_prepare_one(job))
    except (EOFError, OSError):  # the parent is gone: nothing left to do
        pass


class _Workers:
    """`workers` forked parser processes, one file at a time each (exact blame if the parser crashes)."""

    def __init__(self, task: _Task, workers: int):
        self.task = task
        self.ctx = multiprocessing.get_context("fork")  # fork: no re-import, the source is inherited
        self.procs: dict = {}  # connection -> process
        for _ in range(workers):
            self._spawn()

    def _spawn(self):
        # signals held while forking and registering: a child must not run the parent's handlers
        # before it sets its own, and an interrupt must not leave a started worker unregistered
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            parent, child = self.ctx.Pipe()
            inherited = [parent, *self.procs]
            proc = self.ctx.Process(target=_worker_main, args=(child, inherited, os.getpid(), self.task), daemon=True)
            proc.start()
            self.procs[parent] = proc
            child.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return parent

    def run(self, jobs: list[tuple[int, str]], frontier: Callable[[], int] = lambda: 0) -> Iterator[_Result]:
        """Results in completion order; no job more than AHEAD past `frontier()` (the first index the
        caller still waits for) is started, so the results it holds back to restore order stay few."""
        todo = iter(jobs)
        held: list = []
        idle = list(self.procs)
        busy: dict = {}  # connection -> job it is working on

        def dispatch():
            while idle:
                job = held.pop() if held else next(todo, None)
                if job is None:
                    return
                if job[0] > frontier() + AHEAD:
                    held.append(job)
                    return
                conn = idle.pop()
                conn.send(job)
                busy[conn] = job

        dispatch()
        while busy:
            for conn in cast(list[Connection], multiprocessing.connection.wait(list(busy))):  # what it was given
                try:
                    result = conn.recv()
                except (EOFError, OSError):  # the worker died on this file (a crash in the parser)
                    proc = self.procs.pop(conn)
                    proc.join(1)
                    conn.close()
                    result = _Result(
                        busy[conn][0],
                        reason=f"not a readable MIDI file: the parser crashed on it (exit status {proc.exitcode})",
                    )
                    del busy[conn]
                    conn = self._spawn()
                busy.pop(conn, None)
                idle.append(conn)
                yield result
                dispatch()

    def close(self, kill: bool = False) -> None:
        """Stop the workers: ask them to finish (idle after a complete run), or kill them at once."""
        for conn, proc in self.procs.items():
            if kill:
                proc.kill()
            else:
                with contextlib.suppress(OSError):
                    conn.send(None)
        for conn, proc in self.procs.items():
            proc.join(1)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
            conn.close()


AHEAD = 64  # jobs started past the first unfinished one (results are consumed in source order)


@contextlib.contextmanager
def _job_runner(task: _Task, workers: int) -> Iterator[Callable[..., Iterator[_Result]]]:
    """`run(jobs, frontier)` yielding results in completion order: in this process, or `workers` processes."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        _init_worker(task)
        try:
            yield lambda jobs, frontier=None: map(_prepare_one, jobs)
        finally:
            task.source.release()
        return
    pool = _Workers(task, workers)
    try:
        yield pool.run
    except BaseException:
        pool.close(kill=True)  # an interrupt or error: the workers' work is lost anyway, stop them now
        raise
    pool.close()


def report_path(out: str | os.PathLike) -> Path:
    """`x.json.gz` -> `x.report.json`, beside it."""
    out = Path(out)
    stem = re.sub(r"(\.json)?(\.gz)?$", "", out.name) or out.name
    return out.with_name(stem + ".report.json")


@dataclass
class PrepareReport:
    source: dict
    output: str
    tracks: str = "all non-drum tracks"
    splits: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)  # byte-identical to an earlier file: counted once
    parsed_with_pretty_midi: list = field(default_factory=list)
    workers: int = 1
    seconds: float = 0.0
    labels: dict | None = None  # {"mode": --labels, "style": style id} when labels are stored

    def to_json(self) -> bytes:
        return orjson.dumps(
            stamp({k: v for k, v in self.__dict__.items() if not (k == "labels" and v is None)}, "prepare"),
            option=orjson.OPT_INDENT_2,
        )  # prepare's mark


def _report_bytes(report: PrepareReport, files: Path) -> bytes:
    """The report with `files` (rows written by prepare, one per performance) as its "files" list."""
    return report.to_json()[:-2] + b',\n  "files": [\n' + files.read_bytes() + b"\n  ]\n}"


def _gzip_member(data: bytes) -> bytes:
    return _gzip.compress(data, compresslevel=1)


class _JsonWriter:
    """The gzip JSON notes file, written split by split as gzip members (a multi-member gzip file is
    one file to every reader), each performance's JSON rows added as they come."""

    FLUSH = 8 << 20  # bytes of JSON compressed at a time

    def __init__(self, folder: Path, keep_notes: int | None, labels: bool = False):
        self.folder, self.keep, self.labels = (
            folder,
            keep_notes,
            labels,
        )  # arrays kept for the cache while within keep notes
        self.parts: dict = {}  # split -> [file, pending chunks, pending bytes, performances]
        self.label_parts: dict = {}  # the same for the labels' rows
        self.arrays: dict = {}

    def _append(self, parts: dict, split: str, prefix: str, data: bytes) -> None:
        part = parts.get(split)
        if part is None:
            part = parts[split] = [open(self.folder / f"{prefix}{split}.json.gz", "wb"), [], 0, 0]  # noqa: SIM115 (closed by finish)
        part[1].append((b"," if part[3] else b"") + data)
        part[2] += len(data) + 1
        part[3] += 1
        if part[2] >= self.FLUSH:
            self._flush(part)

    def add(self, split: str, name: str, r: _Result) -> None:
        assert r.json is not None and r.array is not None, "a prepared performance"
        self._append(self.parts, split, "", r.json)
        if self.labels:
            assert r.labels is not None, "a labelled performance"
            self._append(self.label_parts, split, "labels-", orjson.dumps(r.labels.tolist()))
        if self.keep is not None:
            self.arrays.setdefault(split, []).append(r.array)
            self.keep -= len(r.array)
            if self.keep < 0:  # too many notes to also cache them from here: load_notes will
                self.keep, self.arrays = None, {}

    def _flush(self, part) -> None:
        if part[1]:
            part[0].write(_gzip_member(b"".join(part[1])))
            part[1], part[2] = [], 0

    def finish(self, out: Path) -> None:
        with open(out, "wb") as f:
            sep = b"{"
            for split in SPLITS:
                if split not in self.parts:
                    continue
                part = self.parts[split]
                self._flush(part)
                part[0].close()
                member = _gzip_member(sep + b'"' + split.encode() + b'":[')
                # the first member's header comment is prepare's mark (outputs.written_by)
                f.write(gzip_marked(member, "prepare") if sep == b"{" else member)
                with open(self.folder / f"{split}.json.gz", "rb") as src:
                    shutil.copyfileobj(src, f)
                sep = b"],"
            if not self.labels:
                f.write(_gzip_member(b"]}"))
                return
            # the labels last, one more top-level key (readers of the tutorial's format ignore it):
            # "labels": {"columns": [...], split: [[[keysig, root, family, style], ...], ...], ...}
            from pianogenie.labels import LABEL_COLUMNS

            f.write(_gzip_member(b'],"labels":{"columns":' + orjson.dumps(list(LABEL_COLUMNS))))
            for split in SPLITS:
                if split not in self.label_parts:
                    continue
                part = self.label_parts[split]
                self._flush(part)
                part[0].close()
                f.write(_gzip_member(b',"' + split.encode() + b'":['))
                with open(self.folder / f"labels-{split}.json.gz", "rb") as src:
                    shutil.copyfileobj(src, f)
                f.write(_gzip_member(b"]"))
            f.write(_gzip_member(b"}}"))

    def close(self) -> None:
        for part in [*self.parts.values(), *self.label_parts.values()]:
            part[0].close()


CACHE_PRIME_NOTES = 8_000_000  # up to this many notes (~260 MB of arrays), prepare leaves load_notes' binary copy too


def output_kind(out: Path) -> str:
    """A name ending in .gz, or an existing file (refused or replaced as notes files are), is the
    gzip JSON notes file; anything else a store folder."""
    if out.name.lower().endswith(".gz") or (os.path.lexists(out) and not out.is_dir()):
        return "json"
    return "store"


def prepare(
    source,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    strict: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
    warn: Callable[[str], None] | None = None,
    tracks: TrackSelection = ALL_TRACKS,
    force: bool = False,
    labels: str = "none",
    style: int | None = None,
) -> PrepareReport:
    """Parse every performance of `source` (any `pianogenie.sources` kind) and write OUT and its
    report atomically: OUT ending in .gz is the gzip JSON notes file (report beside it), any other
    OUT a notes store folder (`pianogenie.store`, report inside). Notes go out as they are parsed,
    in the source's order; nothing holds the whole dataset.

    Unreadable files are skipped (one warning each, listed in the report) unless `strict`,
    which turns any skip into a UserError and writes nothing. Byte-identical files of a source
    that dedupes (a collection) are counted once: the first in name order is kept.

    `labels` (pianogenie.labels.LABEL_MODES) other than "none" also stores each note's condition
    labels (key signature, chord root and family, style `style`, default from the source's
    kind), and each file's row in the report says where they came from.
    """
    from pianogenie.labels import LABEL_MODES, default_style

    if labels not in LABEL_MODES:
        raise UserError(f"--labels must be one of {', '.join(LABEL_MODES)}, got {labels!r}")
    if style is None:
        style = default_style(source)
    from tqdm import tqdm

    start = time.perf_counter()
    warn = warn or (lambda msg: tqdm.write(f"pianogenie prepare: warning: {msg}", file=sys.stderr))
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    out, report_out = check_prepare_outputs(source, out, force=force)
    kind = output_kind(out)
    if not source.performances:
        why = f": {source.unsplit()}" if source.unknown_split else ""
        raise UserError(f"{source.path}: no performance has a split{why}; nothing written")
    if source.unknown_split:
        warn(f"{source.unsplit()}: skipped")
    workers = max(1, workers or os.cpu_count() or 1)
    perfs = source.performances[:limit] if limit else source.performances
    jobs = ((i, p.midi_filename, p.extras) for i, p in enumerate(perfs))
    report = PrepareReport(source=source.describe(), output=str(out), tracks=tracks.describe(), workers=workers)
    if labels != "none":
        report.labels = {"mode": labels, "style": style}
    for p in source.unknown_split:
        report.skipped.append({"midi_filename": p.midi_filename, "split": p.split, "reason": source.unsplit_reason(p)})

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write -o {out}: {e.strerror or e}") from None
    parts = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        writer: _JsonWriter | StoreWriter
        if kind == "json":
            writer = _JsonWriter(parts, CACHE_PRIME_NOTES, labels=labels != "none")
        else:
            (parts / "store").mkdir()
            writer = StoreWriter(parts / "store", labels=labels != "none")
        files = open(parts / "files.jsonl", "wb")  # noqa: SIM115 (closed once the pool is done)
        seen: dict[bytes, str] = {}
        pending: dict[int, _Result] = {}
        frontier = 0

        def consume(p: Performance, r: _Result) -> None:
            stats = report.splits.setdefault(
                p.split,
                {
                    "performances": 0,
                    "notes": 0,
                    "dropped_out_of_range": 0,
                    "dropped_non_positive_duration": 0,
                    "skipped": 0,
                    **({"duplicates": 0} if source.dedupe else {}),
                },
            )
            if source.dedupe and r.digest and r.digest in seen:
                stats["duplicates"] += 1
                report.duplicates.append({"midi_filename": p.midi_filename, "same_as": seen[r.digest]})
                return
            if r.digest:
                seen.setdefault(r.digest, p.midi_filename)
            stats["dropped_out_of_range"] += r.dropped_out_of_range
            stats["dropped_non_positive_duration"] += r.dropped_non_positive
            if r.used_pretty_midi:
                report.parsed_with_pretty_midi.append(p.midi_filename)
            if r.array is None:
                stats["skipped"] += 1
                report.skipped.append({"midi_filename": p.midi_filename, "split": p.split, "reason": r.reason})
                return
            stats["performances"] += 1
            stats["notes"] += r.notes
            row = {"midi_filename": p.midi_filename, "split": p.split, "notes": r.notes, "tracks": r.tracks}
            if r.ignored:
                row["ignored_tracks"] = r.ignored
            if r.label_sources is not None:
                row["labels"] = r.label_sources
            files.write((b",\n    " if files.tell() else b"    ") + orjson.dumps(row))
            if isinstance(writer, _JsonWriter):
                writer.add(p.split, p.midi_filename, r)
            else:
                writer.add(p.split, p.midi_filename, r.array, r.labels)

        # the pool first: forking after tqdm started its monitor thread would copy a running thread
        with (
            _job_runner(
                _Task(source, tracks, json=kind == "json", labels=labels, style=style), min(workers, len(perfs) or 1)
            ) as run,
            tqdm(
                total=len(perfs), unit="file", desc="prepare", disable=None if progress is None else not progress
            ) as bar,
        ):
            for r in run(jobs, lambda: frontier):  # noqa: B023 (the frontier as it is when asked)
                if r.array is None:
                    warn(f"skipped {perfs[r.index].midi_filename}: {r.reason}")
                pending[r.index] = r
                while frontier in pending:  # in source order: the output does not depend on timing
                    consume(perfs[frontier], pending.pop(frontier))
                    frontier += 1
                bar.update()
        files.close()

        if strict and report.skipped:
            listed = "; ".join(f"{s['midi_filename']}: {s['reason']}" for s in report.skipped[:5])
            more = f" (and {len(report.skipped) - 5} more)" if len(report.skipped) > 5 else ""
            raise UserError(f"--strict: {len(report.skipped)} file(s) skipped, nothing written: {listed}{more}")
        if not any(s["performances"] for s in report.splits.values()):
            no_match = [s for s in report.skipped if s["reason"].startswith("no track matches")]
            why = (
                f": no file has a track matching {tracks.describe()}"
                if no_match and len(no_match) == len(report.skipped)
                else ""
            )
            raise UserError(f"no performance of {source.path} could be prepared{why}; nothing written")
        if source.dedupe and report.duplicates:
            warn(
                f"{len(report.duplicates)} file(s) byte-identical to an earlier one: counted once "
                '(listed under "duplicates" in the report)'
            )
        for split in SPLITS:
            if (split not in report.splits or not report.splits[split]["performances"]) and source.assigns_splits:
                warn(f"the {split} split is empty ({source.groups} pieces in all)")
        report.seconds = round(time.perf_counter() - start, 3)
        if isinstance(writer, _JsonWriter):
            with atomic_paths(out, report_out) as (tmp_out, tmp_report):  # both or neither
                writer.finish(tmp_out)
                tmp_report.write_bytes(_report_bytes(report, parts / "files.jsonl"))
                gz = tmp_out.read_bytes() if writer.keep is not None else None
            if gz is not None:
                _cache_write(gz, {s: writer.arrays[s] for s in SPLITS if s in writer.arrays})
        else:
            writer.finish()
            (parts / "store" / "report.json").write_bytes(_report_bytes(report, parts / "files.jsonl"))
            _replace_folder(parts / "store", out)
    finally:
        with contextlib.suppress(NameError, OSError):
            writer.close()
        shutil.rmtree(parts, ignore_errors=True)
    return report


def _replace_folder(new: Path, out: Path) -> None:
    """Put the finished store `new` at `out`: renamed in; a store already there (checked to be
    one, holding only a store's files) is moved aside first and removed once the new one is in."""
    from pianogenie import outputs
    from pianogenie.util import os_reason

    old = None
    try:
        with outputs.signals_held():  # the two renames are never cut in two: OUT is the old store or the new
            if os.path.lexists(out):
                old = new.parent / "old"
                os.replace(out, old)
            os.replace(new, out)
            outputs.WRITTEN.append(out)
    except OSError as e:
        if old is not None and not os.path.lexists(out):
            with contextlib.suppress(OSError):
                os.replace(old, out)
        raise UserError(f"cannot write {out}: {os_reason(e)}") from None


def _is_our_store(folder: Path, force: bool = False) -> bool:
    """A folder prepare may replace: empty, or a notes store holding nothing but its own files, with
    prepare's mark in its report.json (`force`: without the mark)."""
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    if not names:
        return True
    manifest = read_manifest(folder)
    return (
        manifest is not None
        and names <= store_files(manifest)
        and all((folder / n).is_file() and not (folder / n).is_symlink() for n in names)
        and (force or folder_marked(folder, "report.json", "prepare"))
    )


def check_prepare_outputs(source, out: str | os.PathLike, *, force: bool = False) -> tuple[Path, Path]:
    """The notes file (or store) and its report, refused (UserError) where writing them would lose
    anything: an existing one must carry prepare's mark (outputs.written_by), unless `force`."""
    inputs = source.inputs()
    out = Path(out)
    if output_kind(out) == "store":
        out = check_output(out, flag="-o", inputs=inputs, what="notes store", folder=True)
        if out.is_dir() and not _is_our_store(out, force):
            raise UserError(
                f"-o {out} is a folder that is not a notes store prepare wrote (other files, or no "
                "report.json with its mark); refusing to replace it (choose a new folder name, end "
                "the name in .json.gz for a notes file, or pass --force for a store without the mark)"
            )
        for source_path in inputs:
            if source_path is not None and os.path.isdir(source_path) and _inside(out, Path(source_path)):
                raise UserError(f"-o {out} is inside the input folder {source_path}; choose another output")
        return out, out / "report.json"
    out = check_output(out, flag="-o", inputs=inputs, what="notes file (gzip)", ours=written_by("prepare"), force=force)
    report = check_output(
        report_path(out), flag="report", inputs=inputs, what="prepare report", ours=written_by("prepare"), force=force
    )
    if os.path.lexists(out) and os.path.lexists(report) and os.path.samefile(out, report):
        raise UserError(f"-o {out} and its report {report} are the same file")
    return out, report
