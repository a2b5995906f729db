"""The notes store: a folder of binary, memory-mappable note columns, written incrementally.

`prepare -o FOLDER` (any output not ending in .gz) writes one; `load_notes(FOLDER)` opens it as
{split: StoreSplit}, each a read-only sequence of (N, 4) performances backed by np.memmap, so that
neither side ever holds the dataset in memory. Layout (all little-endian .npy, readable by
`np.load(..., mmap_mode="r")`):

    manifest.json               {"format": "pianogenie-notes", "version": 1, "splits": {split: {"performances": P, "notes": N}}}
    <split>.onset.npy           (N,) float64 onset s, performances one after another, each sorted
    <split>.duration.npy        (N,) float64 duration s
    <split>.key.npy             (N,) uint8 key 0..87
    <split>.velocity.npy        (N,) uint8 velocity 1..127
    <split>.lengths.npy         (P,) int64 notes per performance
    <split>.names.jsonl         P lines: the source's name of each performance (JSON strings)
    <split>.<label>.npy         (N,) int8 per-note condition ids, for each label of the manifest's
                                "labels" list (pianogenie.labels.LABEL_COLUMNS), if prepare stored labels
    report.json                 prepare's report

Every value is validated by prepare before it is written (the same checks as load_notes'); the
store is trusted on reading apart from its file sizes, which must match the manifest's counts.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson

from pianogenie.util import UserError

FORMAT, VERSION = "pianogenie-notes", 1
MANIFEST = "manifest.json"
COLUMNS: dict[str, np.dtype] = {
    "onset": np.dtype("<f8"),
    "duration": np.dtype("<f8"),
    "key": np.dtype("u1"),
    "velocity": np.dtype("u1"),
}
_HEADER = 128  # bytes reserved for each column's .npy header, written once the length is known
MAX_MANIFEST_BYTES = 1 << 20
LABEL_DTYPE = np.dtype("i1")


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    text = repr({"descr": dtype.str, "fortran_order": False, "shape": (n,)})
    body = text.encode("latin1")
    pad = _HEADER - 10 - len(body) - 1
    return b"\x93NUMPY\x01\x00" + (_HEADER - 10).to_bytes(2, "little") + body + b" " * pad + b"\n"


class StoreWriter:
    """Append performances split by split into a (temporary) folder; `finish()` writes the manifest."""

    def __init__(self, folder: Path, labels: bool = False):
        from pianogenie.labels import LABEL_COLUMNS

        self.folder = folder
        self.label_columns = LABEL_COLUMNS if labels else ()
        self.files: dict = {}
        self.counts: dict = {}  # split -> [performances, notes]
        self.lengths: dict = {}

    def _open(self, split: str):
        files = {c: open(self.folder / f"{split}.{c}.npy", "wb") for c in (*COLUMNS, *self.label_columns)}  # noqa: SIM115 (kept open until finish)
        for f in files.values():
            f.write(b"\0" * _HEADER)
        files["names"] = open(self.folder / f"{split}.names.jsonl", "wb")  # noqa: SIM115
        self.files[split], self.counts[split], self.lengths[split] = files, [0, 0], []
        return files

    def add(self, split: str, name: str, notes: np.ndarray, labels: np.ndarray | None = None) -> None:
        files = self.files.get(split) or self._open(split)
        for j, (c, dtype) in enumerate(COLUMNS.items()):
            files[c].write(np.ascontiguousarray(notes[:, j], dtype=dtype).tobytes())
        if self.label_columns:
            assert labels is not None, "this store holds labels"
            for j, c in enumerate(self.label_columns):
                files[c].write(np.ascontiguousarray(labels[:, j], dtype=LABEL_DTYPE).tobytes())
        files["names"].write(orjson.dumps(name) + b"\n")
        self.counts[split][0] += 1
        self.counts[split][1] += len(notes)
        self.lengths[split].append(len(notes))

    def finish(self) -> dict:
        splits = {}
        for split, files in self.files.items():
            n = self.counts[split][1]
            for c, dtype in [*COLUMNS.items(), *((c, LABEL_DTYPE) for c in self.label_columns)]:
                files[c].seek(0)
                files[c].write(_npy_header(dtype, n))
            for f in files.values():
                f.close()
            np.save(self.folder / f"{split}.lengths.npy", np.array(self.lengths[split], dtype=np.int64))
            splits[split] = {"performances": self.counts[split][0], "notes": n}
        manifest = {"format": FORMAT, "version": VERSION, "splits": splits}
        if self.label_columns:
            manifest["labels"] = list(self.label_columns)
        (self.folder / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        return manifest

    def close(self) -> None:
        for files in self.files.values():
            for f in files.values():
                f.close()


def store_files(manifest: dict) -> set[str]:
    """Every file name a store with this manifest holds (what prepare may replace)."""
    names = {MANIFEST, "report.json"}
    for split in manifest.get("splits", {}):
        names |= {f"{split}.{c}.npy" for c in COLUMNS} | {f"{split}.lengths.npy", f"{split}.names.jsonl"}
        names |= {f"{split}.{c}.npy" for c in _label_names(manifest)}
    return names


def _label_names(manifest: dict) -> list[str]:
    from pianogenie.labels import LABEL_COLUMNS

    labels = manifest.get("labels", [])
    return list(LABEL_COLUMNS) if isinstance(labels, list) and labels == list(LABEL_COLUMNS) else []


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest if it is a store (None if not one)."""
    path = folder / MANIFEST
    try:
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            return None
        obj = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT or not isinstance(obj.get("splits"), dict):
        return None
    return obj


class _Performances(Sequence):
    """A sequence of per-performance arrays cut on demand from concatenated columns: subclasses set
    `lengths` and `starts` and say how notes a..b become one performance's array (`_rows`)."""

    lengths: np.ndarray
    starts: np.ndarray

    def _rows(self, a: int, b: int) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        a = int(self.starts[i])
        return self._rows(a, a + int(self.lengths[i]))


class StoreSplit(_Performances):
    """One split of a store: columns memory-mapped, performances as views on demand."""

    def __init__(self, folder: Path, split: str, performances: int, notes: int, labels: tuple = ()):
        def load(name: str, dtype: np.dtype, n: int) -> np.ndarray:
            path = folder / name
            try:
                a = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as e:
                raise UserError(f"{path}: unreadable notes store column ({e})") from None
            if a.dtype != dtype or a.shape != (n,):
                raise UserError(
                    f"{path}: expected {n} values of {dtype}, found {a.shape} of {a.dtype} "
                    "(a damaged or incomplete store: prepare it again)"
                )
            return a

        self.name = split
        self.onsets = load(f"{split}.onset.npy", COLUMNS["onset"], notes)
        self.durations = load(f"{split}.duration.npy", COLUMNS["duration"], notes)
        self.keys = load(f"{split}.key.npy", COLUMNS["key"], notes)
        self.velocities = load(f"{split}.velocity.npy", COLUMNS["velocity"], notes)
        self.lengths = np.array(load(f"{split}.lengths.npy", np.dtype("<i8"), performances))
        if (self.lengths <= 0).any() or int(self.lengths.sum()) != notes:
            raise UserError(f"{folder}: {split}.lengths.npy does not add up to the manifest's {notes} notes")
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        # per-note condition ids, one memmap per pianogenie.labels.LABEL_COLUMNS entry (None: not stored)
        self.label_columns = [load(f"{split}.{c}.npy", LABEL_DTYPE, notes) for c in labels] if labels else None

    def _rows(self, a: int, b: int) -> np.ndarray:
        out = np.empty((b - a, 4))
        for j, col in enumerate((self.onsets, self.durations, self.keys, self.velocities)):
            out[:, j] = col[a:b]
        return out

    def labels(self, i: int) -> np.ndarray:
        """Performance i's (N, 4) int8 condition labels (the store must hold labels)."""
        return StoreLabels(self)[i]

    @property
    def num_notes(self) -> int:
        return len(self.onsets)


class StoreLabels(_Performances):
    """One split's per-note condition labels, as `load_labels` gives them for a store: a read-only
    sequence of (N, 4) int8 arrays, one per performance, read on demand. `columns` are the label
    columns' memmaps (pianogenie.labels.LABEL_COLUMNS order), which `windows.Notes` gathers from
    directly, so that no array of all the split's labels is ever built."""

    def __init__(self, split: StoreSplit):
        assert split.label_columns is not None, "a store with labels"
        self.columns = split.label_columns
        self.lengths, self.starts = split.lengths, split.starts

    def _rows(self, a: int, b: int) -> np.ndarray:
        return np.stack([np.asarray(c[a:b]) for c in self.columns], axis=1)


def open_store(folder: str | os.PathLike) -> dict[str, StoreSplit]:
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        raise UserError(
            f"{folder}: a folder, but not a notes store (no {MANIFEST} of format {FORMAT}); "
            "expected a notes file (.json.gz) or a store from `pianogenie prepare -o FOLDER`"
        )
    if manifest.get("version") != VERSION:
        raise UserError(f"{folder}: notes store version {manifest.get('version')}, this pianogenie reads {VERSION}")
    out = {}
    for split, counts in manifest["splits"].items():
        if split not in ("train", "validation", "test"):
            raise UserError(f"{folder}: {MANIFEST}: unknown split {split!r}")
        try:
            p, n = int(counts["performances"]), int(counts["notes"])
        except (KeyError, TypeError, ValueError):
            raise UserError(f"{folder}: {MANIFEST}: bad counts for split {split!r}") from None
        out[split] = StoreSplit(folder, split, p, n, tuple(_label_names(manifest)))
    if not out:
        raise UserError(f"{folder}: the notes store holds no split")
    return out
