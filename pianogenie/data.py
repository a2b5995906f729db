"""MAESTRO -> note sequences: find the performances, parse their MIDI, write and read the notes file.

Owns the first pipeline stage, `pianogenie prepare SOURCE -o OUT.json.gz`, and `load_notes`, the
loader the rest of the project uses.

A performance is an `(N, 4)` array of notes `(t, d, k, v)`: onset and duration in seconds, key
`k = pitch - 21` in 0..87 and velocity 1..127, sorted by (onset, key). They are the notes
pretty_midi gives (all non-drum instruments merged), obtained much faster with symusic: see
`parse_midi` for how its note pairing is made to agree with pretty_midi's.

The notes file is gzip-compressed JSON in the 2021 tutorial's "simple" format,
`{"train": [[[t, d, k, v], ...], ...], "validation": [...], "test": [...]}` (only the splits
present), with times rounded to the microsecond; either tool reads the other's file.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import io
import multiprocessing
import os
import re
import struct
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np
import orjson
import symusic

from pianogenie.constants import HIGHEST_PITCH, LOWEST_PITCH, NUM_KEYS
from pianogenie.util import UserError, atomic_path, atomic_write_bytes

try:  # same gzip format, several times faster to write and read
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - isal is a dependency, stdlib gzip is the fallback
    import gzip as _gzip

SPLITS = ("train", "validation", "test")
DEFAULT_OUTPUT = Path("data/maestro.json.gz")
_METADATA_RE = re.compile(r"^maestro-v(\d+)\.(\d+)\.(\d+)\.(json|csv)$")
_EXPECTED = (
    "a MAESTRO folder (holding maestro-vX.Y.Z.json or .csv and the MIDI files) "
    "or an official MAESTRO MIDI zip (maestro-vX.Y.Z-midi.zip)"
)


# ---------------------------------------------------------------------------------------------
# Finding the performances


@dataclass(frozen=True)
class Performance:
    split: str
    midi_filename: str  # as written in the metadata, relative to the metadata's folder


_OPEN_ZIPS: dict[tuple[int, str], zipfile.ZipFile] = {}


@dataclass(frozen=True)
class MaestroSource:
    """A MAESTRO dataset read in place: a folder, or an official zip (never unpacked to disk)."""

    path: Path  # the folder or the zip file
    kind: str  # "folder" | "zip"
    root: str  # folder: metadata's directory; zip: member prefix of the metadata ("" or "x/")
    metadata: str  # metadata file used, relative to `path`
    version: str  # "3.0.0"
    performances: tuple[Performance, ...]
    unknown_split: tuple[Performance, ...] = ()  # rows whose split is none of SPLITS

    def read(self, midi_filename: str) -> bytes:
        """The MIDI bytes of one performance. Raises FileNotFoundError if it is not there."""
        rel = PurePosixPath(midi_filename)
        if rel.is_absolute() or ".." in rel.parts:
            raise FileNotFoundError(f"unsafe path outside the dataset: {midi_filename}")
        if self.kind == "folder":
            return (Path(self.root) / rel).read_bytes()
        # one open ZipFile per process (workers each get their own after fork)
        key = (os.getpid(), str(self.path))
        zf = _OPEN_ZIPS.get(key)
        if zf is None:
            zf = _OPEN_ZIPS[key] = zipfile.ZipFile(self.path)
        try:
            return zf.read(self.root + str(rel))
        except KeyError:
            raise FileNotFoundError(f"not in the zip: {self.root}{rel}") from None


def _metadata_choice(names: list[str]) -> str | None:
    """Of metadata file names, the newest version's, JSON before CSV (both list the same rows)."""
    found = [(m, n) for n in names if (m := _METADATA_RE.match(PurePosixPath(n).name))]
    if not found:
        return None
    found.sort(key=lambda mn: (tuple(int(g) for g in mn[0].groups()[:3]), mn[0].group(4) == "json"))
    return found[-1][1]


def _parse_metadata(raw: bytes, name: str) -> list[dict]:
    """Rows of a MAESTRO metadata file: v3 JSON is column-oriented, v2 JSON a list of records."""
    try:
        if name.endswith(".json"):
            obj = orjson.loads(raw)
            if isinstance(obj, list) and all(isinstance(r, dict) for r in obj):
                rows = obj
            elif isinstance(obj, dict) and all(isinstance(c, dict) for c in obj.values()):
                index = obj.get("midi_filename") or next(iter(obj.values()), {})
                order = sorted(index, key=lambda i: (len(i), i))  # "0", "1", ..., "10", ...
                rows = [{col: vals.get(i) for col, vals in obj.items()} for i in order]
            else:
                raise ValueError("neither a list of records nor {column: {row: value}}")
        else:
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{name}: cannot read MAESTRO metadata ({e})") from None
    for col in ("split", "midi_filename"):
        if rows and col not in rows[0]:
            raise UserError(f"{name}: MAESTRO metadata has no '{col}' column")
    if not rows:
        raise UserError(f"{name}: MAESTRO metadata lists no performances")
    return rows


def _make_source(path: Path, kind: str, root: str, metadata: str, raw: bytes) -> MaestroSource:
    rows = _parse_metadata(raw, metadata)
    perfs = [Performance(str(r["split"]), str(r["midi_filename"])) for r in rows]
    version = ".".join(_METADATA_RE.match(PurePosixPath(metadata).name).groups()[:3])
    return MaestroSource(
        path=path,
        kind=kind,
        root=root,
        metadata=metadata,
        version=version,
        performances=tuple(p for p in perfs if p.split in SPLITS),
        unknown_split=tuple(p for p in perfs if p.split not in SPLITS),
    )


def find_source(path: str | os.PathLike) -> MaestroSource:
    """Open a MAESTRO folder (v2 or v3, or the folder the official zip unpacks to) or MIDI zip."""
    path = Path(path)
    if path.is_dir():
        here = [p.name for p in path.iterdir() if p.is_file()]
        if (meta := _metadata_choice(here)) is None:
            # the folder holding an unpacked official zip: metadata sits in maestro-vX.Y.Z/
            below = [f"{d.name}/{f.name}" for d in path.glob("maestro-v*") if d.is_dir() for f in d.iterdir()]
            meta = _metadata_choice(below)
        if meta is None:
            raise UserError(f"{path} is not a MAESTRO folder: no maestro-vX.Y.Z.json/.csv in it; expected {_EXPECTED}")
        meta_path = path / meta
        return _make_source(path, "folder", str(meta_path.parent), meta, meta_path.read_bytes())
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path} is neither a folder nor a zip file; expected {_EXPECTED}")
        try:
            with zipfile.ZipFile(path) as zf:
                # the official zips hold one top folder (maestro-v3.0.0/...) with the metadata inside
                names = [n for n in zf.namelist() if n.count("/") <= 1]
                if (meta := _metadata_choice(names)) is None:
                    raise UserError(f"{path} holds no maestro-vX.Y.Z.json/.csv; expected {_EXPECTED}")
                raw = zf.read(meta)
        except (zipfile.BadZipFile, OSError) as e:
            raise UserError(f"{path}: unreadable zip ({e})") from None
        root = meta.rsplit("/", 1)[0] + "/" if "/" in meta else ""
        return _make_source(path, "zip", root, meta, raw)
    raise UserError(f"{path} does not exist; expected {_EXPECTED}")


# ---------------------------------------------------------------------------------------------
# Parsing MIDI into notes


@dataclass
class ParsedMidi:
    notes: np.ndarray  # (N, 4) float64: onset s, duration s, key 0..87, velocity 1..127
    dropped_out_of_range: int = 0  # pitch outside 21..108
    dropped_non_positive: int = 0  # duration <= 0 (after rounding to the microsecond)
    used_pretty_midi: bool = False  # symusic's note pairing could differ here: pretty_midi parsed it


def _tick_to_seconds(ticks: np.ndarray, tempo_ticks: np.ndarray, mspq: np.ndarray, tpq: int) -> np.ndarray:
    """pretty_midi's tick -> seconds map: piecewise linear in ticks, 120 bpm until a tempo says otherwise.

    Computed in float64 (symusic's own "second" mode is float32: 0.1 ms off after half an hour).
    """
    start = np.concatenate([[0], tempo_ticks]).astype(np.int64)
    # seconds per tick in each segment, in pretty_midi's own arithmetic (same float rounding)
    scale = 60.0 / ((6e7 / np.concatenate([[500000.0], mspq])) * tpq)
    order = np.argsort(start, kind="stable")  # a later tempo at the same tick wins
    start, scale = start[order], scale[order]
    seg_seconds = np.concatenate([[0.0], np.cumsum(np.diff(start) * scale[:-1])])
    i = np.searchsorted(start, ticks, side="right") - 1
    return seg_seconds[i] + (ticks - start[i]) * scale[i]


def _pretty_midi_notes(data: bytes) -> np.ndarray:
    import pretty_midi  # slow; only for the rare files whose same-pitch notes overlap

    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    rows = [(n.start, n.end, n.pitch, n.velocity) for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def parse_midi(data: bytes) -> ParsedMidi:
    """The notes of a MIDI file, exactly as pretty_midi reads them, dropping unplayable ones.

    symusic pairs note-ons and note-offs of one pitch first-in first-out, while pretty_midi
    lets one note-off end every open note of its pitch and never yields zero-length notes.
    The two agree unless notes of one pitch overlap on a track and end apart, or start on one
    tick: where symusic's output shows that, the file is re-read with pretty_midi itself
    (in the 939 shared files, 6 have overlapping notes, all ending together: none needs it). Zero-length
    notes, which pretty_midi never yields, are dropped like all non-positive durations and
    counted. Two differences remain, both absent from MAESTRO: a note-on never switched off
    while an earlier note of its pitch is (symusic drops it, pretty_midi ends it with that
    note), and tempo changes outside the first track (pretty_midi ignores them).

    Raises ValueError (or RuntimeError from symusic) for data that is not a readable MIDI file.
    """
    score = symusic.Score.from_midi(data)  # ticks: exact integers
    parts = [(i, t.notes.numpy()) for i, t in enumerate(score.tracks) if not t.is_drum and len(t.notes)]
    if not parts:
        return ParsedMidi(np.zeros((0, 4)))
    cat = lambda col: np.concatenate([a[col] for _, a in parts]).astype(np.int64)
    on, dur, pitch, vel = cat("time"), cat("duration"), cat("pitch"), cat("velocity")
    track_i = np.concatenate([np.full(len(a["time"]), i, dtype=np.int64) for i, a in parts])

    # notes grouped by (track, pitch) in onset order: one int64 key, one sort
    order = np.argsort(((track_i * 128 + pitch) << 32) + on, kind="stable")
    g_key, g_on, g_off = (track_i * 128 + pitch)[order], on[order], (on + dur)[order]
    same = g_key[1:] == g_key[:-1]
    # FIFO keeps offsets in onset order, so comparing neighbours finds every overlap; overlapping
    # notes that end together (two note-offs at one tick) come out the same from both readers
    differ = same & (g_on[1:] < g_off[:-1]) & (g_off[1:] != g_off[:-1])
    # two note-ons at one tick: pretty_midi drops both if a note-off follows at that very tick
    differ |= same & (g_on[1:] == g_on[:-1])
    if differ.any():
        notes = _pretty_midi_notes(data)
        t, off, p, v = notes[:, 0], notes[:, 1], notes[:, 2].astype(np.int64), notes[:, 3].astype(np.int64)
        used_pretty = True
    else:
        tempos = score.tempos.numpy()
        to_s = lambda ticks: _tick_to_seconds(ticks, tempos["time"], tempos["mspq"], score.ticks_per_quarter)
        t, off, p, v = to_s(on), to_s(on + dur), pitch, vel
        used_pretty = False
    return _validated(t, off, p, v, used_pretty)


def _validated(t: np.ndarray, off: np.ndarray, pitch: np.ndarray, v: np.ndarray, used_pretty: bool) -> ParsedMidi:
    # round onset and offset (not the duration) so a zero-length note stays exactly zero long
    t, off = np.round(t, 6), np.round(off, 6)
    d = np.round(off - t, 6)
    in_range = (pitch >= LOWEST_PITCH) & (pitch <= HIGHEST_PITCH)
    positive = d > 0
    keep = in_range & positive & (v >= 1) & (v <= 127) & np.isfinite(t) & np.isfinite(d)
    t, d, k, v = t[keep], d[keep], pitch[keep] - LOWEST_PITCH, v[keep]
    # sort by (onset, key, velocity) with one stable int64 sort (input is nearly sorted already)
    order = np.argsort((np.rint(t * 1e6).astype(np.int64) * NUM_KEYS + k) * 128 + v, kind="stable")
    notes = np.empty((len(order), 4))
    for j, col in enumerate((t, d, k, v)):
        notes[:, j] = col[order]
    return ParsedMidi(
        notes,
        dropped_out_of_range=int((~in_range).sum()),
        dropped_non_positive=int((in_range & ~positive).sum()),
        used_pretty_midi=used_pretty,
    )


def notes_to_json(notes: np.ndarray) -> bytes:
    """One performance as compact JSON rows `[t,d,k,v]`: times as floats, key and velocity as integers."""
    k, v = notes[:, 2].astype(np.int64), notes[:, 3].astype(np.int64)
    was_enabled = gc.isenabled()
    gc.disable()  # millions of short-lived row tuples would trigger pointless collections
    try:
        return orjson.dumps(list(zip(notes[:, 0].tolist(), notes[:, 1].tolist(), k.tolist(), v.tolist())))
    finally:
        if was_enabled:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# Preparing a dataset


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


@contextlib.contextmanager
def _job_runner(source: MaestroSource, workers: int) -> Iterator[Callable[[list], Iterator[_Result]]]:
    """`run(jobs)` yielding results in completion order: in this process, or a pool of `workers`."""
    if workers <= 1:
        _init_worker(source)
        try:
            yield lambda jobs: map(_prepare_one, jobs)
        finally:
            if (zf := _OPEN_ZIPS.pop((os.getpid(), str(source.path)), None)) is not None:
                zf.close()
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)  # fork: no re-import
    with ctx.Pool(workers, initializer=_init_worker, initargs=(source,)) as pool:
        # small chunks: file sizes vary 100x and the pool must stay balanced to the end
        yield lambda jobs: pool.imap_unordered(_prepare_one, jobs, chunksize=4)


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
        return orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2)


def prepare(
    source: MaestroSource,
    out: str | os.PathLike,
    *,
    workers: int | None = None,
    strict: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
    warn: Callable[[str], None] | None = None,
) -> PrepareReport:
    """Parse every performance of `source` and write OUT (gzip JSON) and its report atomically.

    Unreadable files are skipped (one warning each, listed in the report) unless `strict`,
    which turns any skip into a UserError and writes nothing.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    warn = warn or (lambda msg: tqdm.write(f"pianogenie prepare: warning: {msg}", file=sys.stderr))
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
    gz = _gzip.compress(b"{" + body + b"}", compresslevel=1)
    with atomic_path(out) as tmp:
        tmp.write_bytes(gz)
    _cache_write(gz, {s: arrays[s] for s in present})
    report.seconds = round(time.perf_counter() - start, 3)
    atomic_write_bytes(report_path(out), report.to_json())
    return report


# ---------------------------------------------------------------------------------------------
# Loading


def load_notes(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """Read a notes file (ours or the 2021 tutorial's) into {split: [(N, 4) float64 array, ...]}.

    Columns: onset s, duration s, key 0..87, velocity 1..127 (key and velocity are exact
    integers stored as float64). Anything but gzip-compressed JSON of that layout is a
    UserError naming the file. A binary copy of the result is kept in the cache folder
    ($PIANOGENIE_CACHE or ~/.cache/pianogenie, `prepare` writes it too), so that loading the
    same file again skips the JSON.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read notes file ({e.strerror or e})") from None
    if raw[:2] != b"\x1f\x8b":
        raise UserError(f"{path}: not a gzip file; expected gzip-compressed JSON notes (from `pianogenie prepare`)")
    if (cached := _cache_read(raw)) is not None:
        return cached
    try:
        text = _gzip.decompress(raw)
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"{path}: corrupt gzip data ({e})") from None
    out = _parse_fast(text)
    if out is None or not all(_values_ok(a) for perfs in out.values() for a in perfs):
        # not laid out as we write it, or wrong somewhere: the general (slower) reader says where
        out = _parse_general(path, text)
        for split, perfs in out.items():
            for i, a in enumerate(perfs):
                if not _values_ok(a):
                    raise UserError(
                        f"{path}: wrong values in {split}[{i}]: key must be an integer 0..87, "
                        "velocity an integer 1..127, times finite numbers"
                    )
    _cache_write(raw, out)
    return out


# Parsing 3 M notes of JSON takes a couple of seconds; their binary twin loads in a tenth of one.
# It lives in the cache folder, named after the gzip file's size and trailer (CRC-32 and length
# of the JSON): a file with other contents never matches it. Bump the version when the parse
# changes. Only the most recently used few are kept (each is ~100 MB for all of MAESTRO).
_CACHE_VERSION = 1
_CACHE_KEEP = 4


def _cache_path(raw: bytes) -> Path:
    from pianogenie.download import cache_dir

    crc, isize = struct.unpack("<II", raw[-8:])
    return cache_dir() / "notes" / f"v{_CACHE_VERSION}-{len(raw)}-{crc:08x}-{isize:08x}.npz"


def _cache_read(raw: bytes) -> dict[str, list[np.ndarray]] | None:
    path = _cache_path(raw)
    try:
        with np.load(path, allow_pickle=False) as z:
            notes, lengths, counts, splits = z["notes"], z["lengths"], z["counts"], z["splits"].tolist()
        os.utime(path)  # most recently used: the last to be pruned
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # absent or unreadable: parse the JSON
    perfs = np.split(notes, np.cumsum(lengths)[:-1]) if len(lengths) else []
    bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
    return {s: perfs[a:b] for s, a, b in zip(splits, bounds[:-1], bounds[1:])}


def _cache_write(raw: bytes, notes: dict[str, list[np.ndarray]]) -> None:
    flat = [a for perfs in notes.values() for a in perfs]
    try:
        with atomic_path(_cache_path(raw)) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                notes=np.concatenate(flat) if flat else np.zeros((0, 4)),  # (sum N, 4) float64
                lengths=np.array([len(a) for a in flat], dtype=np.int64),
                counts=np.array([len(p) for p in notes.values()], dtype=np.int64),
                splits=np.array(list(notes), dtype=str),
            )
        older = sorted(_cache_path(raw).parent.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[_CACHE_KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError:
        pass  # only a cache: a read-only or full disk must not stop anything


def _parse_fast(text: bytes) -> dict[str, list[np.ndarray]] | None:
    """Fast path: every performance parsed as one flat list of numbers; None if the text is odd.

    Building 3 M little row lists is what makes a plain JSON parse slow. Replacing "],[" by ","
    merges each performance's rows into one list (and turns the breaks between performances,
    "]],[[", into "],["), so one orjson call yields {split: [[[t, d, k, v, t, ...], ...]]} (the
    first row's "[" and the last row's "]" stay: one more level of nesting).
    """
    if b", " in text[:1000] or b"\n" in text[:1000]:  # json.dump's separators (the tutorial's file)
        text = text.translate(None, b" \n\t\r")
    try:
        obj = orjson.loads(text.replace(b"],[", b","))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not obj or not set(obj) <= set(SPLITS):
        return None
    out: dict[str, list[np.ndarray]] = {}
    rows = 0
    for split, nested in obj.items():
        if not isinstance(nested, list) or len(nested) > 1 or (nested and not isinstance(nested[0], list)):
            return None
        perfs = nested[0] if nested else []
        out[split] = []
        for perf in perfs:
            try:
                a = np.array(perf, dtype=np.float64)
            except (ValueError, TypeError):
                return None
            if a.ndim != 1 or a.size % 4 or not a.size:
                return None
            out[split].append(a.reshape(-1, 4))
        rows += sum(len(a) for a in out[split]) - (1 if perfs else 0)
    # as many rows as groups of 4 numbers: each non-empty split had rows - 1 row breaks "],[" (a
    # ragged row would also shift later rows' key and velocity columns: the value checks catch it)
    return out if text.count(b"],[") == rows else None


def _parse_general(path: Path, text: bytes) -> dict[str, list[np.ndarray]]:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(obj, dict) or not obj or not set(obj) <= set(SPLITS):
        got = f"an object with keys {', '.join(map(str, obj))}" if isinstance(obj, dict) else f"a JSON {type(obj).__name__}"
        raise UserError(f"{path}: wrong structure: expected an object with keys among {', '.join(SPLITS)}, got {got}")
    out: dict[str, list[np.ndarray]] = {}
    for split, perfs in obj.items():
        if not isinstance(perfs, list):
            raise UserError(f"{path}: wrong structure: '{split}' is not a list of performances")
        out[split] = []
        for i, perf in enumerate(perfs):
            where = f"{path}: wrong structure: {split}[{i}]"
            try:
                a = np.array(perf, dtype=np.float64)
            except (ValueError, TypeError):
                raise UserError(f"{where} is not a list of [t, d, k, v] number rows") from None
            if a.size == 0:
                a = a.reshape(0, 4)
            if a.ndim != 2 or a.shape[1] != 4:
                raise UserError(f"{where} has shape {a.shape}, expected (N, 4) rows [t, d, k, v]")
            out[split].append(a)
    return out


def _values_ok(a: np.ndarray) -> bool:
    if a.size == 0:
        return True
    k, v = a[:, 2], a[:, 3]
    return bool(
        np.isfinite(a).all()
        and (k == np.floor(k)).all()
        and (v == np.floor(v)).all()
        and ((k >= 0) & (k < NUM_KEYS) & (v >= 1) & (v <= 127)).all()
    )


# ---------------------------------------------------------------------------------------------
# Command line


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        description="Parse every performance of a MAESTRO dataset into notes (onset s, duration s, "
        "key 0..87, velocity) and write them, per split, as gzip-compressed JSON in the 2021 tutorial's "
        "format, with a report beside it (maestro.json.gz -> maestro.report.json: per split the performances "
        "and notes written, the notes dropped, every skipped file and why). Unreadable or missing files are "
        "skipped with a warning; the exit status stays 0 unless --strict.",
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="MAESTRO folder (v2 or v3 metadata) or official MAESTRO MIDI zip (read in place). "
        "Default: download the official MAESTRO v3 MIDI zip once into the cache folder.",
    )
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"notes file to write (default: {DEFAULT_OUTPUT})")
    p.add_argument("--workers", type=int, default=None, help="parallel parser processes (default: all cores)")
    p.add_argument("--strict", action="store_true", help="fail (and write nothing) if any file has to be skipped")
    p.add_argument("--limit", type=int, default=None, help="prepare only the first N performances of the metadata")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder for the downloaded zip and load_notes' binary copy of OUT "
        "(default: $PIANOGENIE_CACHE, else ~/.cache/pianogenie)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.cache_dir is not None:  # for everything this run caches, as $PIANOGENIE_CACHE would
        from pianogenie.download import CACHE_ENV

        os.environ[CACHE_ENV] = str(args.cache_dir)
    if args.source is None:
        from pianogenie.download import fetch_maestro

        source_path = fetch_maestro()
    else:
        source_path = Path(args.source)
    source = find_source(source_path)
    report = prepare(source, args.output, workers=args.workers, strict=args.strict, limit=args.limit)
    for split, s in report.splits.items():
        dropped = s["dropped_out_of_range"] + s["dropped_non_positive_duration"]
        print(f"{split}: {s['performances']} performances, {s['notes']} notes ({dropped} dropped, {s['skipped']} files skipped)")
    print(f"wrote {args.output} and {report_path(args.output)} in {report.seconds:.1f} s")
    return 0
