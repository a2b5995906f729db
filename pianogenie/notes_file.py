"""The notes file: its format, `load_notes` (validated, with a binary cache; a store folder is
opened memory-mapped, see `pianogenie.store`), and `notes_to_json`.

A performance is an `(N, 4)` array of notes `(t, d, k, v)`: onset and duration in seconds, key
`k = pitch - 21` in 0..87 and velocity 1..127, sorted by (onset, key).

The notes file is gzip-compressed JSON in the 2021 tutorial's "simple" format,
`{"train": [[[t, d, k, v], ...], ...], "validation": [...], "test": [...]}` (only the splits
present), with times rounded to the microsecond; either tool reads the other's file. It is
written by `pianogenie prepare` (`pianogenie.prepare`).
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import orjson

from pianogenie.constants import NUM_KEYS
from pianogenie.outputs import atomic_path
from pianogenie.util import UserError

MAX_NOTES_BYTES = 2 << 30  # compressed; all of MAESTRO is ~30 MB
MAX_NOTES_TEXT_BYTES = 4 << 30  # its JSON (~150 M notes); all of MAESTRO is ~86 MB

try:  # the same gzip format, several times faster to write and read
    from isal import igzip as _gzip
    from isal import isal_zlib as _zlib
    from isal.igzip_lib import IsalError as _InflateError
except ImportError:  # pragma: no cover - isal is a dependency, stdlib gzip is the fallback
    import gzip as _gzip  # type: ignore[no-redef]  # noqa: F401 (the same interface; prepare writes with it)
    import zlib as _zlib  # type: ignore[no-redef]
    from zlib import error as _InflateError  # type: ignore[assignment]

SPLITS = ("train", "validation", "test")


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


def load_notes(path: str | os.PathLike) -> Mapping[str, Sequence[np.ndarray]]:
    """Read a notes file (ours or the 2021 tutorial's) into {split: [(N, 4) float64 array, ...]};
    a notes store folder (`pianogenie.store`) opens memory-mapped instead, as {split: StoreSplit}
    (a sequence of the same arrays, read on demand).

    Columns: onset s, duration s, key 0..87, velocity 1..127 (key and velocity are exact
    integers stored as float64). Anything but gzip-compressed JSON of that layout is a
    UserError naming the file. A binary copy of the result is kept in the cache folder
    ($PIANOGENIE_CACHE or ~/.cache/pianogenie, `prepare` writes it too), so that loading the
    same file again skips the JSON.
    """
    from pianogenie.bounded import read_file

    path = Path(path)
    if path.is_dir():
        from pianogenie.store import open_store

        return open_store(path)
    raw = read_file(path, "notes file", MAX_NOTES_BYTES)  # a regular file, bounded: never /dev/zero
    if raw[:2] != b"\x1f\x8b":
        raise UserError(f"{path}: not a gzip file; expected gzip-compressed JSON notes (from `pianogenie prepare`)")
    if (cached := _cache_read(raw)) is not None:
        return cached
    text = _decompress(path, raw)
    text, _ = _split_labels(text)
    out = _parse_fast(text)
    if out is None or any(_first_bad(a) for perfs in out.values() for a in perfs):
        # not laid out as we write it, or wrong somewhere: the general (slower) reader says where
        out = _parse_general(path, text)
        for split, perfs in out.items():
            for i, a in enumerate(perfs):
                if (bad := _first_bad(a)) is not None:
                    note, problem = bad
                    raise UserError(f"{path}: {split} performance {i}, note {note}: {problem}")
    _cache_write(raw, out)
    return out


def _decompress(path: Path, raw: bytes, limit: int = MAX_NOTES_TEXT_BYTES) -> bytes:
    """The JSON text of a (possibly multi-member) gzip notes file, at most `limit` bytes of it: a
    small file that would inflate without bound (a gzip bomb) is refused before it fills memory."""
    parts, size, data = [], 0, raw
    try:
        while data:
            d = _zlib.decompressobj(31)  # 31: a gzip header
            part = d.decompress(data, limit - size + 1)
            size += len(part)
            if size > limit or d.unconsumed_tail:
                raise UserError(
                    f"{path}: its JSON would exceed {limit >> 30} GiB; for a collection that large, "
                    "write a notes store (`pianogenie prepare ... -o FOLDER`)"
                )
            if not d.eof:
                raise EOFError("the gzip data ends early")
            parts.append(part)
            data = d.unused_data
    except (OSError, EOFError, ValueError, _InflateError) as e:  # type: ignore[misc]  # isal's stub makes IsalError an instance
        raise UserError(f"{path}: corrupt gzip data ({e})") from None
    return b"".join(parts)


_LABELS_KEY = b'"labels"'


def _split_labels(text: bytes) -> tuple[bytes, bytes | None]:
    """The notes file's text without its "labels" key (prepare writes it last, after the splits),
    and that key's object as JSON text (None if there is none). The notes hold no strings but the
    split names, so the first "labels" string is the key."""
    i = text.find(_LABELS_KEY)
    if i < 0:
        return text, None
    head = text[:i].rstrip(b" \n\t\r")
    if not head.endswith(b","):  # not where prepare puts it: the general reader drops the key
        return text, None
    return head[:-1] + b"}", b"{" + text[i:]


def load_labels(path: str | os.PathLike) -> Mapping[str, Sequence[np.ndarray]] | None:
    """The per-note condition labels `prepare --labels` stored beside the notes: {split: [(N, 4) int8
    array per performance, in load_notes' order]} with columns pianogenie.labels.LABEL_COLUMNS
    (key signature, chord root, chord family, style; 0 = none), or None if the file has none. A
    notes store's are {split: StoreLabels}: the same arrays read on demand from its memory-mapped
    label columns, which `windows.Notes` gathers from without building them."""
    from pianogenie.labels import COLUMN_SIZES, LABEL_COLUMNS

    path = Path(path)
    if path.is_dir():
        from pianogenie.store import StoreLabels, open_store

        store = open_store(path)
        if any(s.label_columns is None for s in store.values()):
            return None
        return {split: StoreLabels(s) for split, s in store.items()}
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"{path}: cannot read notes file ({e.strerror or e})") from None
    _, labels = _split_labels(_decompress(path, raw))
    if labels is None:
        return None
    try:
        obj = orjson.loads(labels)["labels"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise UserError(f'{path}: its "labels" key is not valid JSON') from None
    if not isinstance(obj, dict) or obj.get("columns") != list(LABEL_COLUMNS):
        raise UserError(f'{path}: "labels" must hold "columns": {list(LABEL_COLUMNS)} and a list per split')
    notes = load_notes(path)
    out: dict[str, list[np.ndarray]] = {}
    top = np.array(COLUMN_SIZES) - 1
    for split, perfs in notes.items():
        rows = obj.get(split)
        if not isinstance(rows, list) or len(rows) != len(perfs):
            raise UserError(f'{path}: "labels" has no row list for each of the {len(perfs)} {split} performances')
        out[split] = []
        for i, (perf, r) in enumerate(zip(perfs, rows)):
            try:
                a = np.array(r, dtype=np.int64).reshape(-1, 4) if r else np.zeros((0, 4), np.int64)
            except (ValueError, TypeError):
                raise UserError(f"{path}: labels of {split} performance {i} are not rows of 4 integers") from None
            if len(a) != len(perf) or (a < 0).any() or (a > top).any():
                raise UserError(
                    f"{path}: labels of {split} performance {i}: expected {len(perf)} rows of "
                    f"ids within {tuple(COLUMN_SIZES)}"
                )
            out[split].append(a.astype(np.int8))
    return out


# Parsing 3 M notes of JSON takes a couple of seconds; their binary twin loads in a tenth of one.
# It lives in the cache folder, named after a BLAKE2b digest of the whole gzip file (~30 ms for
# all of MAESTRO): files with other contents never share a name (the gzip trailer's CRC and length
# did, for multi-member files that end alike). Bump the version when the parse changes. Only the
# most recently used few are kept (each is ~100 MB for all of MAESTRO).
_CACHE_VERSION = 2
_CACHE_KEEP = 4
_STALE_TMP_SECONDS = 3600  # a temporary file this old was left by a killed process


def _cache_path(raw: bytes) -> Path:
    from pianogenie.download import cache_dir

    digest = hashlib.blake2b(raw, digest_size=20).hexdigest()
    return cache_dir() / "notes" / f"v{_CACHE_VERSION}-{digest}.npz"


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
        folder = _cache_path(raw).parent
        older = sorted(folder.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[_CACHE_KEEP:]:
            stale.unlink(missing_ok=True)
        for tmp in folder.glob(".*.tmp"):  # only SIGKILL can leave one; any other stop removes its own
            if time.time() - tmp.stat().st_mtime > _STALE_TMP_SECONDS:
                tmp.unlink(missing_ok=True)
    except (OSError, UserError):
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
    if not _rows_of_four_numbers(text):
        return None
    try:
        obj = orjson.loads(text.replace(b"],[", b","))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not obj or not set(obj) <= set(SPLITS):
        return None
    if text.count(b'"') != 2 * len(obj):  # a string among the numbers
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


_NUMBER_BYTES = b"0123456789.eE+-"
_SPLIT_NAME_BYTES = b"".join(sorted({bytes([c]) for split in SPLITS for c in split.encode()}))  # e is a number byte


def _rows_of_four_numbers(text: bytes) -> bool:
    """Whether, split names aside, `text` holds only numbers in rows of exactly four: merging rows
    loses their boundaries, so they are checked here, on the bytes (C speed, ~0.1 s for MAESTRO).
    Strings other than the split names are caught by counting quotes once the keys are known."""
    rest = text.translate(None, _NUMBER_BYTES + b"[],:{}")
    if rest.translate(None, b'"' + _SPLIT_NAME_BYTES):  # true, false, null, whitespace, other text
        return False
    # the brackets and commas alone: a row of four numbers is "[,,,]"; once those are gone, any
    # "[," or "[]" left is a row of another length (or an empty performance: the general reader's)
    skeleton = text.translate(None, _NUMBER_BYTES + b':{}"' + _SPLIT_NAME_BYTES).replace(b"[,,,]", b"R")
    return b"[," not in skeleton and b"[]" not in skeleton


def _parse_general(path: Path, text: bytes) -> dict[str, list[np.ndarray]]:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if isinstance(obj, dict):
        obj.pop("labels", None)  # condition labels: load_labels reads them
    if not isinstance(obj, dict) or not obj or not set(obj) <= set(SPLITS):
        got = (
            f"an object with keys {', '.join(map(str, obj))}"
            if isinstance(obj, dict)
            else f"a JSON {type(obj).__name__}"
        )
        raise UserError(f"{path}: wrong structure: expected an object with keys among {', '.join(SPLITS)}, got {got}")
    out: dict[str, list[np.ndarray]] = {}
    for split, perfs in obj.items():
        if not isinstance(perfs, list):
            raise UserError(f"{path}: wrong structure: '{split}' is not a list of performances")
        out[split] = []
        for i, perf in enumerate(perfs):
            where = f"{path}: wrong structure: {split} performance {i}"
            if not isinstance(perf, list):
                raise UserError(f"{where} is not a list of [t, d, k, v] number rows")
            for j, row in enumerate(perf):  # exact types: numpy would read "1" or true as numbers
                if not (isinstance(row, list) and len(row) == 4 and all(type(x) in (int, float) for x in row)):
                    raise UserError(
                        f"{where}, note {j}: expected [t, d, k, v] (four numbers), got "
                        f"{orjson.dumps(row)[:80].decode(errors='replace')}"
                    )
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


MAX_SECONDS = 1e6  # 11.6 days: no performance is longer; larger times are a broken file


def _first_bad(a: np.ndarray) -> tuple[int, str] | None:
    """The first wrong note of one performance (N, 4) and what is wrong with it, or None."""
    if a.size == 0:
        return None
    t, d, k, v = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    with np.errstate(invalid="ignore"):
        checks = [
            (~np.isfinite(a).all(axis=1), "times, key and velocity must be finite numbers"),
            ((k != np.floor(k)) | (k < 0) | (k >= NUM_KEYS), f"key must be an integer 0..{NUM_KEYS - 1}"),
            ((v != np.floor(v)) | (v < 1) | (v > 127), "velocity must be an integer 1..127"),
            ((t < 0) | (t > MAX_SECONDS), f"onset must be in [0, {MAX_SECONDS:g}] s"),
            ((d < 0) | (d > MAX_SECONDS), f"duration must be in [0, {MAX_SECONDS:g}] s"),
            (np.concatenate([[False], np.diff(t) < 0]), "onset before the previous note's (onsets must not decrease)"),
        ]
    for bad, problem in checks:
        if bad.any():
            i = int(np.argmax(bad))
            return i, f"{problem}, got [{', '.join(f'{x:g}' for x in a[i])}]"
    return None
