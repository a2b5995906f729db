"""`pianogenie prepare SOURCE -o OUT.json.gz`: every performance of a MAESTRO dataset -> the notes file.

Parses the performances on all cores (`pianogenie.midi`), found by `pianogenie.maestro`, and
writes the notes file (`pianogenie.data`) and its report.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import orjson

from pianogenie.data import SPLITS, _cache_write, _gzip, notes_to_json
from pianogenie.maestro import _OPEN_ZIPS, MaestroSource
from pianogenie.midi import parse_midi
from pianogenie.outputs import check_output, gzip_marked, stamp, written_by
from pianogenie.util import UserError, atomic_paths

@dataclass
class _Result:
    index: int
    json: bytes | None = None  # None: skipped
    array: np.ndarray | None = None  # the same notes, to prime load_notes' cache
    reason: str = ""
    notes: int = 0
    dropped_out_of_range: int = 0
    dropped_non_positive: int = 0
    used_pretty_midi: bool = False


_WORKER_SOURCE: MaestroSource | None = None


def _init_worker(source: MaestroSource) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _prepare_one(job: tuple[int, str]) -> _Result:
    index, midi_filename = job
    try:
        data = _WORKER_SOURCE.read(midi_filename)
    except FileNotFoundError as e:
        return _Result(index, reason=f"missing: listed in the metadata but not found ({e.strerror or e})")
    except OSError as e:
        return _Result(index, reason=f"unreadable: {e.strerror or e}")
    if not data:
        return _Result(index, reason="empty file")
    try:
        parsed = parse_midi(data)
    except Exception as e:  # symusic raises RuntimeError, pretty_midi/mido many kinds
        return _Result(index, reason=f"not a readable MIDI file: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    r = _Result(
        index,
        notes=len(parsed.notes),
        dropped_out_of_range=parsed.dropped_out_of_range,
        dropped_non_positive=parsed.dropped_non_positive,
        used_pretty_midi=parsed.used_pretty_midi,
    )
    if len(parsed.notes) == 0:
        r.reason = "no playable notes"
    else:
        r.json, r.array = notes_to_json(parsed.notes), parsed.notes
    return r


def _worker_main(conn, inherited: list, parent_pid: int, source: MaestroSource) -> None:
    """A parser process: jobs in, results out, over its own pipe (no lock shared with any other
    process, so a worker killed at any moment can never leave the others or the parent waiting)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a worker writes nothing: dying at once is clean
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for c in inherited:  # the parent's ends of the pipes: held here, they would hide the parent's exit
        c.close()
    _init_worker(source)
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

    def __init__(self, source: MaestroSource, workers: int):
        self.source = source
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
            proc = self.ctx.Process(target=_worker_main, args=(child, inherited, os.getpid(), self.source),
                                    daemon=True)
            proc.start()
            self.procs[parent] = proc
            child.close()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        return parent

    def run(self, jobs: list[tuple[int, str]]) -> Iterator[_Result]:
        todo = iter(jobs)
        busy: dict = {}  # connection -> job it is working on
        for conn in list(self.procs):
            if (job := next(todo, None)) is not None:
                conn.send(job)
                busy[conn] = job
        while busy:
            for conn in multiprocessing.connection.wait(list(busy)):
                try:
                    result = conn.recv()
                except (EOFError, OSError):  # the worker died on this file (a crash in the parser)
                    proc = self.procs.pop(conn)
                    proc.join(1)
                    conn.close()
                    result = _Result(busy[conn][0], reason=f"not a readable MIDI file: the parser crashed on it "
                                     f"(exit status {proc.exitcode})")
                    del busy[conn]
                    conn = self._spawn()
                yield result
                busy.pop(conn, None)
                if (job := next(todo, None)) is not None:
                    conn.send(job)
                    busy[conn] = job

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


@contextlib.contextmanager
def _job_runner(source: MaestroSource, workers: int) -> Iterator[Callable[[list], Iterator[_Result]]]:
    """`run(jobs)` yielding results in completion order: in this process, or `workers` processes."""
    if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        _init_worker(source)
        try:
            yield lambda jobs: map(_prepare_one, jobs)
        finally:
            if (zf := _OPEN_ZIPS.pop((os.getpid(), str(source.path)), None)) is not None:
                zf.close()
        return
    pool = _Workers(source, workers)
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
    splits: dict = field(default_factory=dict)
    skipped: list = field(default_factory=list)
    parsed_with_pretty_midi: list = field(default_factory=list)
    workers: int = 1
    seconds: float = 0.0

    def to_json(self) -> bytes:
        return orjson.dumps(stamp(self.__dict__, "prepare"), option=orjson.OPT_INDENT_2)


def prepare(
    source: MaestroSource,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    strict: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
    warn: Callable[[str], None] | None = None,
    force: bool = False,
) -> PrepareReport:
    """Parse every performance of `source` and write OUT (gzip JSON) and its report atomically.

    Unreadable files are skipped (one warning each, listed in the report) unless `strict`,
    which turns any skip into a UserError and writes nothing.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    warn = warn or (lambda msg: tqdm.write(f"pianogenie prepare: warning: {msg}", file=sys.stderr))
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    out, report_out = check_prepare_outputs(source, out, force=force)
    if not source.performances:
        found = sorted({p.split for p in source.unknown_split})
        raise UserError(f"{source.path}: no row of {source.metadata} has a split among {', '.join(SPLITS)} "
                        f"(found: {', '.join(repr(f) for f in found[:5]) or 'none'}); nothing written")
    if source.unknown_split:
        found = sorted({p.split for p in source.unknown_split})
        warn(f"{len(source.unknown_split)} row(s) of {source.metadata} have an unknown split "
             f"({', '.join(repr(f) for f in found[:5])}; expected one of {', '.join(SPLITS)}): skipped")
    workers = max(1, workers or os.cpu_count() or 1)
    perfs = list(source.performances[:limit] if limit else source.performances)
    jobs = [(i, p.midi_filename) for i, p in enumerate(perfs)]
    report = PrepareReport(
        source={"path": str(source.path), "kind": source.kind, "metadata": source.metadata, "version": source.version},
        output=str(out),
        workers=workers,
    )
    for p in source.unknown_split:
        report.skipped.append({"midi_filename": p.midi_filename, "split": p.split, "reason": f"unknown split '{p.split}'"})

    results: list[_Result | None] = [None] * len(perfs)
    # the pool first: forking after tqdm started its monitor thread would copy a running thread
    with _job_runner(source, min(workers, len(jobs) or 1)) as run, tqdm(
        total=len(jobs), unit="file", desc="prepare", disable=None if progress is None else not progress
    ) as bar:
        for r in run(jobs):
            results[r.index] = r
            if r.json is None:
                warn(f"skipped {perfs[r.index].midi_filename}: {r.reason}")
            bar.update()

    chunks: dict[str, list[bytes]] = {s: [] for s in SPLITS}
    arrays: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for p, r in zip(perfs, results):
        stats = report.splits.setdefault(
            p.split,
            {"performances": 0, "notes": 0, "dropped_out_of_range": 0, "dropped_non_positive_duration": 0, "skipped": 0},
        )
        stats["dropped_out_of_range"] += r.dropped_out_of_range
        stats["dropped_non_positive_duration"] += r.dropped_non_positive
        if r.used_pretty_midi:
            report.parsed_with_pretty_midi.append(p.midi_filename)
        if r.json is None:
            stats["skipped"] += 1
            report.skipped.append({"midi_filename": p.midi_filename, "split": p.split, "reason": r.reason})
            continue
        stats["performances"] += 1
        stats["notes"] += r.notes
        chunks[p.split].append(r.json)
        arrays[p.split].append(r.array)

    if strict and report.skipped:
        listed = "; ".join(f"{s['midi_filename']}: {s['reason']}" for s in report.skipped[:5])
        more = f" (and {len(report.skipped) - 5} more)" if len(report.skipped) > 5 else ""
        raise UserError(f"--strict: {len(report.skipped)} file(s) skipped, nothing written: {listed}{more}")
    present = [s for s in SPLITS if chunks[s]]
    if not present:
        raise UserError(f"no performance of {source.path} could be prepared; nothing written")

    body = b",".join(b'"' + s.encode() + b'":[' + b",".join(chunks[s]) + b"]" for s in present)
    gz = gzip_marked(_gzip.compress(b"{" + body + b"}", compresslevel=1), "prepare")
    report.seconds = round(time.perf_counter() - start, 3)
    with atomic_paths(out, report_out) as (tmp_out, tmp_report):  # both or neither
        tmp_out.write_bytes(gz)
        tmp_report.write_bytes(report.to_json())
    _cache_write(gz, {s: arrays[s] for s in present})
    return report


def check_prepare_outputs(source: MaestroSource, out: str | os.PathLike, *,
                          force: bool = False) -> tuple[Path, Path]:
    """The notes file and its report, refused (UserError) where writing them would lose anything:
    an existing one must carry prepare's mark (outputs.written_by), unless `force`."""
    inputs = [source.path, Path(source.path) / source.metadata if source.kind == "folder" else None]
    out = check_output(out, flag="-o", inputs=inputs, what="notes file (gzip)",
                       ours=written_by("prepare"), force=force)
    report = check_output(report_path(out), flag="report", inputs=inputs, what="prepare report",
                          ours=written_by("prepare"), force=force)
    if os.path.lexists(out) and os.path.lexists(report) and os.path.samefile(out, report):
        raise UserError(f"-o {out} and its report {report} are the same file")
    return out, report
