"""Finding the performances of a MAESTRO dataset: a folder (v2 or v3 metadata) or an official zip.

`find_source(path) -> MaestroSource`, whose `read(midi_filename)` gives one performance's MIDI
bytes, read in place (a zip is never unpacked to disk). It is the MAESTRO kind of
`pianogenie.sources` (`pianogenie.sources.maestro` registers it). Where an ASAP-style
`<performance>_annotations.txt` lies beside a MIDI file, the performance lists it as its
"annotations" extra.
"""

from __future__ import annotations

import csv
import io
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import orjson

from pianogenie.bounded import open_regular
from pianogenie.sources.base import SPLITS, Limits, Performance, check_zip_caps, file_size_ok, read_capped
from pianogenie.util import UserError

_METADATA_RE = re.compile(r"^maestro-v(\d+)\.(\d+)\.(\d+)\.(json|csv)$")
MAX_METADATA_BYTES = 256 << 20  # v3's JSON is ~0.4 MB; a copy listing a million files fits
_EXPECTED = (
    "a MAESTRO folder (holding maestro-vX.Y.Z.json or .csv and the MIDI files) "
    "or an official MAESTRO MIDI zip (maestro-vX.Y.Z-midi.zip)"
)


# ---------------------------------------------------------------------------------------------
# Finding the performances

# what reading one damaged member of a zip raises
_ZIP_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)
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
    limits: Limits = Limits()
    dedupe = False  # MAESTRO's metadata is the list: every row it names is a performance
    default_style = "classical"
    assigns_splits = False  # the metadata gives every performance its split

    @property
    def groups(self) -> int:
        return len({p.group for p in self.performances + self.unknown_split})

    def unsplit(self) -> str:
        found = sorted({p.split for p in self.unknown_split})
        return (
            f"{len(self.unknown_split)} row(s) of {self.metadata} have an unknown split "
            f"({', '.join(repr(f) for f in found[:5])}; expected one of {', '.join(SPLITS)})"
        )

    def unsplit_reason(self, p: Performance) -> str:
        return f"unknown split '{p.split}'"

    def describe(self) -> dict:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "format": "maestro",
            "metadata": self.metadata,
            "version": self.version,
        }

    def inputs(self) -> list:
        return [self.path, Path(self.path) / self.metadata if self.kind == "folder" else None]

    def close(self) -> None:
        self.release()

    def release(self) -> None:
        """Close this process's handle on the zip (reopened on the next read)."""
        if (zf := _OPEN_ZIPS.pop((os.getpid(), str(self.path)), None)) is not None:
            zf.close()

    def read(self, midi_filename: str) -> bytes:
        """The MIDI bytes of one performance. Raises FileNotFoundError if it is not there."""
        rel = PurePosixPath(midi_filename)
        if rel.is_absolute() or ".." in rel.parts:
            raise FileNotFoundError(f"unsafe path outside the dataset: {midi_filename}")
        if "\0" in midi_filename or not midi_filename.strip():
            raise FileNotFoundError(f"not a file name: {midi_filename!r}")
        if self.kind == "folder":
            file_size_ok(Path(self.root) / rel, self.limits.max_file_bytes)
            # a FIFO the metadata names would block a plain open() forever: refused (OSError) instead
            with open_regular(Path(self.root) / rel) as f:
                return read_capped(f, self.limits.max_file_bytes, midi_filename)
        # one open ZipFile per process (workers each get their own after fork)
        key = (os.getpid(), str(self.path))
        zf = _OPEN_ZIPS.get(key)
        if zf is None:
            zf = _OPEN_ZIPS[key] = zipfile.ZipFile(self.path)
        try:
            if zf.getinfo(self.root + str(rel)).file_size > self.limits.max_file_bytes:
                raise OSError(f"larger than the {self.limits.max_file_bytes >> 20} MB cap per file (--max-file-mb)")
            return zf.read(self.root + str(rel))
        except KeyError:
            raise FileNotFoundError(f"not in the zip: {self.root}{rel}") from None
        except _ZIP_MEMBER_ERRORS as e:  # bad CRC, corrupt deflate data, unsupported compression
            raise OSError(f"corrupt zip member {self.root}{rel} ({type(e).__name__}: {e})") from None


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
                index: dict = obj.get("midi_filename") or next(iter(obj.values()), {})
                order = sorted(index, key=lambda i: (len(i), i))  # "0", "1", ..., "10", ...
                rows = [{col: vals.get(i) for col, vals in obj.items()} for i in order]
            else:
                raise ValueError("neither a list of records nor {column: {row: value}}")
        else:
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (ValueError, UnicodeDecodeError, csv.Error, RecursionError) as e:
        raise UserError(
            f"{name}: cannot read MAESTRO metadata ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    for col in ("split", "midi_filename"):
        if rows and col not in rows[0]:
            raise UserError(f"{name}: MAESTRO metadata has no '{col}' column")
    if not rows:
        raise UserError(f"{name}: MAESTRO metadata lists no performances")
    return rows


def _annotations(name: str, exists) -> tuple:
    stem = name.rsplit(".", 1)[0] if "." in name.rsplit("/", 1)[-1] else name
    return (("annotations", f"{stem}_annotations.txt"),) if name and exists(f"{stem}_annotations.txt") else ()


def _make_source(
    path: Path, kind: str, root: str, metadata: str, raw: bytes, exists=lambda name: False, limits: Limits = Limits()
) -> MaestroSource:
    rows = _parse_metadata(raw, metadata)
    # a row missing a value (a ragged CSV line, a record without the key) keeps an empty name: it is
    # skipped as missing, like a file that is not there
    names = ["" if r.get("midi_filename") is None else str(r.get("midi_filename")) for r in rows]
    perfs = [
        Performance(str(r.get("split")), name, group=name, extras=_annotations(name, exists))
        for r, name in zip(rows, names)
    ]
    m = _METADATA_RE.match(PurePosixPath(metadata).name)
    assert m is not None, "_metadata_choice picks a name the pattern matches"
    version = ".".join(m.groups()[:3])
    return MaestroSource(
        path=path,
        kind=kind,
        root=root,
        metadata=metadata,
        version=version,
        performances=tuple(p for p in perfs if p.split in SPLITS),
        unknown_split=tuple(p for p in perfs if p.split not in SPLITS),
        limits=limits,
    )


def metadata_in(path: Path) -> bool:
    """Whether `path` is a MAESTRO folder or zip (its metadata where find_source looks)."""
    try:
        if path.is_dir():
            here = [p.name for p in path.iterdir() if p.is_file()]
            below = [f"{d.name}/{f.name}" for d in path.glob("maestro-v*") if d.is_dir() for f in d.iterdir()]
            return _metadata_choice(here + below) is not None
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return _metadata_choice([n for n in zf.namelist() if n.count("/") <= 1]) is not None
    except (OSError, *_ZIP_MEMBER_ERRORS):
        return False
    return False


def find_source(path: str | os.PathLike, limits: Limits = Limits()) -> MaestroSource:
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
        try:
            with open_regular(meta_path) as f:
                raw = f.read(MAX_METADATA_BYTES + 1)
        except OSError as e:
            raise UserError(f"{meta_path}: cannot read MAESTRO metadata ({e.strerror or e})") from None
        if len(raw) > MAX_METADATA_BYTES:
            raise UserError(
                f"{meta_path}: MAESTRO metadata larger than {MAX_METADATA_BYTES >> 20} MB; refusing to read it"
            )
        root = meta_path.parent
        return _make_source(path, "folder", str(root), meta, raw, lambda name: _safe_is_file(root, name), limits)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path} is neither a folder nor a zip file; expected {_EXPECTED}")
        try:
            with zipfile.ZipFile(path) as zf:
                check_zip_caps(path, zf.infolist(), limits)
                # the official zips hold one top folder (maestro-v3.0.0/...) with the metadata inside
                names = [n for n in zf.namelist() if n.count("/") <= 1]
                if (meta := _metadata_choice(names)) is None:
                    raise UserError(f"{path} holds no maestro-vX.Y.Z.json/.csv; expected {_EXPECTED}")
                if zf.getinfo(meta).file_size > MAX_METADATA_BYTES:
                    raise UserError(
                        f"{path}: its {meta} is larger than {MAX_METADATA_BYTES >> 20} MB; refusing to read it"
                    )
                raw = zf.read(meta)
                members = set(zf.namelist())
        except (OSError, *_ZIP_MEMBER_ERRORS) as e:
            raise UserError(f"{path}: unreadable zip ({type(e).__name__}: {e})") from None
        top = meta.rsplit("/", 1)[0] + "/" if "/" in meta else ""
        return _make_source(path, "zip", top, meta, raw, lambda name: top + name in members, limits)
    raise UserError(f"{path} does not exist; expected {_EXPECTED}")


def _safe_is_file(root: Path, name: str) -> bool:
    rel = PurePosixPath(name)
    if rel.is_absolute() or ".." in rel.parts or "\0" in name:
        return False
    try:
        return (root / rel).is_file()
    except OSError:
        return False
