"""The source interface every kind of source implements, and the rules they share: split by
hashed piece, archive member names that stay inside, size caps.

A `Source` lists `performances` (each a `Performance`: split, the name `read` takes, its piece
and source-specific extras such as annotation files) and reads their bytes with `read(name)`,
whichever kind it is; it also says what `prepare` would otherwise have to guess from its kind
(its default style, whether its splits are its own, why some performances have none).
`prepare` knows nothing else about it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from pianogenie.util import UserError

SPLITS = ("train", "validation", "test")  # as pianogenie.notes_file.SPLITS (not imported: data imports numpy)
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class Performance:
    split: str
    midi_filename: str  # the name `Source.read` takes: a relative POSIX path inside the source
    group: str = ""  # the piece it belongs to: a group never straddles two splits
    # source-specific files that belong to this performance, as (label, name for Source.read):
    # MAESTRO-ASAP's ("annotations", ".../x_annotations.txt"); a collection's text files beside
    # the MIDI file, labelled by stem (POP909: "chord_midi", "key_audio", "beat_midi", ...)
    extras: tuple = ()

    def extra(self, label: str) -> str | None:
        """The name (for `Source.read`) of this performance's extra file `label`, or None."""
        return next((name for key, name in self.extras if key == label), None)


@dataclass(frozen=True)
class Limits:
    """Bounds on what a source may make prepare read."""

    max_file_bytes: int = 64 << 20  # one MIDI file (MAESTRO's largest is ~1 MB)
    max_archive_bytes: int = 32 << 30  # all members of a zip/tar together, uncompressed
    max_members: int = 4_000_000  # entries of an archive, or files and folders walked in a folder


@dataclass(frozen=True)
class SplitRule:
    """How a source without splits of its own assigns them."""

    fractions: tuple = (0.8, 0.1, 0.1)  # train, validation, test
    csv: Path | None = None  # (path, split) rows instead of hashing
    group_by: str = "auto"  # auto | folder | file: see pianogenie.sources.collection

    def __post_init__(self):
        if (
            len(self.fractions) != 3
            or any(not (0 <= f <= 1) for f in self.fractions)
            or abs(sum(self.fractions) - 1) > 1e-6
        ):
            raise UserError(
                f"split fractions must be three numbers in [0, 1] summing to 1 "
                f"(train,validation,test), got {','.join(map(str, self.fractions))}"
            )
        if self.group_by not in ("auto", "folder", "file"):
            raise UserError(f"--group-by must be auto, folder or file, got {self.group_by!r}")

    def split_of(self, group: str) -> str:
        """Deterministic and independent of every other group: adding files never moves a piece."""
        u = (
            int.from_bytes(hashlib.blake2b(group.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")
            / 2.0**64
        )
        train, validation, _ = self.fractions
        return "train" if u < train else "validation" if u < train + validation else "test"


@dataclass(frozen=True)
class SourceOptions:
    splits: SplitRule = field(default_factory=SplitRule)
    limits: Limits = field(default_factory=Limits)
    exclude: tuple = ()  # glob patterns (fnmatch, on the relative path) of MIDI files to leave out
    splits_given: bool = False  # the user asked for a split rule (a source with its own splits refuses)


class Source(Protocol):
    path: Path  # what the user named
    kind: str  # "folder" | "zip" | "tar"
    performances: tuple  # of Performance, split among SPLITS
    unknown_split: tuple  # of Performance, skipped (and reported)
    dedupe: bool  # whether byte-identical files are counted once
    default_style: str  # the style label of its notes unless the user names one: "classical" | "pop"
    assigns_splits: bool  # splits come from a rule here (hashed pieces, a CSV), not from the data itself
    groups: int  # pieces: a piece never straddles two splits

    def read(self, name: str) -> bytes: ...
    def unsplit(self) -> str: ...  # why the performances of unknown_split have no split: one phrase
    def unsplit_reason(self, p: Performance) -> str: ...  # why this one has none, for the report
    def describe(self) -> dict: ...  # for the report
    def inputs(self) -> list: ...  # paths an output must never be
    def release(self) -> None: ...  # close per-process handles (a zip); reading reopens them
    def close(self) -> None: ...  # release everything (temporary files); no reading afterwards


def safe_name(name: str, where: str) -> str:
    """An archive member's name as a relative POSIX path inside the archive, or a UserError:
    absolute paths, drive letters and `..` would name files outside it."""
    text = name.replace("\\", "/")
    rel = PurePosixPath(text)
    if text.startswith("/") or (len(text) > 1 and text[1] == ":") or ".." in rel.parts or "\0" in text:
        raise UserError(f"{where}: member {name!r} names a path outside the archive; refusing to read it")
    return str(rel)


def is_midi_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    # hidden files (macOS's ._x.mid resource forks in __MACOSX/ among them) are no performances
    return base.lower().endswith(MIDI_SUFFIXES) and not base.startswith(".") and "__MACOSX/" not in name + "/"


def read_capped(f, cap: int, name: str) -> bytes:
    data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(f"larger than the {cap >> 20} MB cap per file (--max-file-mb)")
    return data


def file_size_ok(path: str | os.PathLike, cap: int) -> None:
    if os.stat(path).st_size > cap:
        raise OSError(f"larger than the {cap >> 20} MB cap per file (--max-file-mb)")


def size_text(n: int) -> str:
    return f"{n / 2**30:.3g} GB" if n >= 2**30 else f"{n / 2**20:.3g} MB"


def check_zip_caps(path: Path, infos: list, limits: Limits) -> None:
    """Refuse (UserError) a zip with more members than `limits` allow or whose members, by their
    declared sizes, expand past the cap (zipfile stops each member at its declared size)."""
    if len(infos) > limits.max_members:
        raise UserError(f"{path}: {len(infos)} members, over the cap of {limits.max_members}; refusing to read it")
    total = sum(i.file_size for i in infos)
    if total > limits.max_archive_bytes:
        raise UserError(
            f"{path}: expands to {total / 2**20:.1f} MB, over the {size_text(limits.max_archive_bytes)} "
            "cap (--max-archive-gb); refusing to read it"
        )
