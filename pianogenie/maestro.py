"""Finding the performances of a MAESTRO dataset: a folder (v2 or v3 metadata) or an official zip.

`find_source(path) -> MaestroSource`, whose `read(midi_filename)` gives one performance's MIDI
bytes, read in place (a zip is never unpacked to disk).
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

from pianogenie.data import SPLITS
from pianogenie.util import UserError

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

    def read(self, midi_filename: str) -> bytes:
        """The MIDI bytes of one performance. Raises FileNotFoundError if it is not there."""
        rel = PurePosixPath(midi_filename)
        if rel.is_absolute() or ".." in rel.parts:
            raise FileNotFoundError(f"unsafe path outside the dataset: {midi_filename}")
        if "\0" in midi_filename or not midi_filename.strip():
            raise FileNotFoundError(f"not a file name: {midi_filename!r}")
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
                index = obj.get("midi_filename") or next(iter(obj.values()), {})
                order = sorted(index, key=lambda i: (len(i), i))  # "0", "1", ..., "10", ...
                rows = [{col: vals.get(i) for col, vals in obj.items()} for i in order]
            else:
                raise ValueError("neither a list of records nor {column: {row: value}}")
        else:
            rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    except (ValueError, UnicodeDecodeError, csv.Error, RecursionError) as e:
        raise UserError(f"{name}: cannot read MAESTRO metadata ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    for col in ("split", "midi_filename"):
        if rows and col not in rows[0]:
            raise UserError(f"{name}: MAESTRO metadata has no '{col}' column")
    if not rows:
        raise UserError(f"{name}: MAESTRO metadata lists no performances")
    return rows


def _make_source(path: Path, kind: str, root: str, metadata: str, raw: bytes) -> MaestroSource:
    rows = _parse_metadata(raw, metadata)
    # a row missing a value (a ragged CSV line, a record without the key) keeps an empty name: it is
    # skipped as missing, like a file that is not there
    perfs = [Performance(str(r.get("split")), "" if r.get("midi_filename") is None else str(r.get("midi_filename")))
             for r in rows]
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
        try:
            raw = meta_path.read_bytes()
        except OSError as e:
            raise UserError(f"{meta_path}: cannot read MAESTRO metadata ({e.strerror or e})") from None
        return _make_source(path, "folder", str(meta_path.parent), meta, raw)
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
        except (OSError, *_ZIP_MEMBER_ERRORS) as e:
            raise UserError(f"{path}: unreadable zip ({type(e).__name__}: {e})") from None
        root = meta.rsplit("/", 1)[0] + "/" if "/" in meta else ""
        return _make_source(path, "zip", root, meta, raw)
    raise UserError(f"{path} does not exist; expected {_EXPECTED}")
