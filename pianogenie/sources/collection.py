"""A plain collection of MIDI files: a folder (nested, links followed), a zip (read in place) or a
tar / tar.gz / tar.bz2 / tar.xz (unpacked once, under names of our own, into a private temporary
folder: a compressed tar cannot be read at random).

Every `.mid`/`.midi` file (any case; hidden files and `__MACOSX/` left out) is a performance.
Splits come from `SplitRule`: a user's CSV of (path, split) rows, or else each file's piece is
hashed into train/validation/test. The piece (`--group-by`) depends on the file's own path
alone, so adding files never regroups (and never moves) the pieces already there:
- auto (default): the folder holding the file, except that a folder named `versions` (any case)
  is part of its parent's piece, so that POP909's `<id>/<id>.mid` and `<id>/versions/<id>-vN.mid`
  stay together; a file at the top of the source is a piece of its own;
- folder: exactly the folder holding the file; file: every file alone.
Text files beside a MIDI file (`.txt`, `.csv`, `.json`, `.tsv`, `.lab`) are its extras, labelled
by their stem (POP909's `chord_midi`, `key_audio`, ...).

Bad input is one UserError line: nothing to read, a member named outside the archive, a symlink
loop, an archive expanding past `Limits`.
"""

from __future__ import annotations

import builtins
import csv
import fnmatch
import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from pianogenie.sources.base import (
    SPLITS,
    Limits,
    Performance,
    SourceOptions,
    SplitRule,
    check_zip_caps,
    file_size_ok,
    is_midi_name,
    read_capped,
    safe_name,
    size_text,
)
from pianogenie.util import UserError

EXTRA_SUFFIXES = (".txt", ".csv", ".json", ".tsv", ".lab")
MAX_CSV_BYTES = 256 << 20
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError)
_OPEN_ZIPS: dict = {}


def detect(path: Path) -> bool:
    return path.is_dir() or (path.is_file() and (zipfile.is_zipfile(path) or _is_tar(path)))


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except (OSError, tarfile.TarError, EOFError, zlib.error, ValueError):
        return False


def open(path: Path, options: SourceOptions) -> MidiCollection:
    limits = options.limits
    if path.is_dir():
        kind, names, temp = "folder", _walk(path, limits), None
    elif zipfile.is_zipfile(path):
        kind, names, temp = "zip", _zip_names(path, limits), None
    else:
        kind = "tar"
        temp = Path(tempfile.mkdtemp(prefix="pianogenie-tar-"))
        try:
            names = _untar(path, temp, limits)
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise
    try:
        return MidiCollection.build(path, kind, names, options, temp)
    except BaseException:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        raise


def _wanted(name: str) -> bool:
    return is_midi_name(name) or (name.lower().endswith(EXTRA_SUFFIXES) and not name.rsplit("/", 1)[-1].startswith("."))


def _walk(root: Path, limits: Limits) -> dict[str, str]:
    """{relative name: file path} of the MIDI and extra files below `root`, links followed."""
    found: dict[str, str] = {}
    entries = 0

    def visit(folder: Path, rel: str, chain: tuple) -> None:
        nonlocal entries
        try:
            items = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            raise UserError(f"{folder}: cannot list folder ({e.strerror or e})") from None
        for entry in items:
            entries += 1
            if entries > limits.max_members:
                raise UserError(f"{root}: more than {limits.max_members} files and folders; refusing to walk it all")
            name = f"{rel}{entry.name}"
            try:
                is_dir = entry.is_dir()  # follows links
            except OSError:
                is_dir = False
            if is_dir:
                if entry.name.startswith(".") or entry.name == "__MACOSX":
                    continue
                try:
                    st = os.stat(entry.path)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in chain:  # a link back to a folder above: walking on would never end
                    raise UserError(f"{root}: symlink loop: {name} leads back to a folder that holds it")
                visit(Path(entry.path), name + "/", chain + (ident,))
            elif _wanted(name):
                found[name] = entry.path

    st = os.stat(root)
    visit(root, "", ((st.st_dev, st.st_ino),))
    return found


def _zip_names(path: Path, limits: Limits) -> dict[str, str]:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (OSError, *_ZIP_ERRORS) as e:
        raise UserError(f"{path}: unreadable zip ({type(e).__name__}: {e})") from None
    check_zip_caps(path, infos, limits)
    names = {}
    for info in infos:
        name = safe_name(info.filename, str(path))
        if not info.is_dir() and _wanted(name):
            names[name] = info.filename
    return names


def _untar(path: Path, temp: Path, limits: Limits) -> dict[str, str]:
    """Unpack the MIDI and extra members of a tar into `temp` under numbered names (a member's own
    name never becomes a path here), within the caps; {member name: file in temp}."""
    names: dict[str, str] = {}
    total = members = 0
    try:
        with tarfile.open(path, "r|*") as tf:  # one pass, streaming: works for every compression
            for m in tf:
                members += 1
                if members > limits.max_members:
                    raise UserError(f"{path}: more than {limits.max_members} members; refusing to read it")
                name = safe_name(m.name, str(path))
                # every member counts, whatever its type: streaming past one inflates its data too
                total += max(m.size, 0)
                if total > limits.max_archive_bytes:
                    raise UserError(
                        f"{path}: expands past the {size_text(limits.max_archive_bytes)} cap "
                        "(--max-archive-gb); refusing to read it"
                    )
                if not m.isfile():  # links, devices, folders: nothing to read (a link could point anywhere)
                    continue
                if not _wanted(name):
                    continue
                if m.size > limits.max_file_bytes:
                    names[name] = ""  # not unpacked: read() reports it as over the cap
                    continue
                target = temp / f"{len(names):08d}"
                src = tf.extractfile(m)
                assert src is not None, "a regular file (isfile above)"
                with src as f, target.open("wb") as out:
                    shutil.copyfileobj(f, out)
                names[name] = str(target)
    except (OSError, tarfile.TarError, EOFError, zlib.error, ValueError) as e:
        raise UserError(f"{path}: unreadable tar archive ({type(e).__name__}: {e})") from None
    return names


def piece(name: str, rule: str) -> str:
    """The piece of the MIDI file `name` (a relative POSIX path) under `--group-by rule`: from the
    name alone, never from which other files there are, so adding files regroups nothing."""
    if rule == "file" or "/" not in name:
        return name  # a file at the top of the source: a piece of its own
    folder = name.rsplit("/", 1)[0]
    if rule == "auto" and "/" in folder:
        parent, last = folder.rsplit("/", 1)
        if last.lower() == "versions":  # POP909's <id>/versions/: other renditions of <id>
            return parent
    return folder


def _read_split_csv(path: Path) -> dict[str, str]:
    try:
        if path.stat().st_size > MAX_CSV_BYTES:
            raise UserError(f"--splits {path}: larger than {MAX_CSV_BYTES >> 20} MB")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise UserError(f"--splits {path}: cannot read it ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise UserError(f"--splits {path}: not UTF-8 text") from None
    out: dict[str, str] = {}
    try:
        for i, row in enumerate(csv.reader(io.StringIO(text)), 1):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != 2:
                raise UserError(f"--splits {path}: line {i}: expected two columns (path, split), got {len(row)}")
            name, split = row[0].strip().replace("\\", "/"), row[1].strip()
            if i == 1 and (name.lower(), split.lower()) == ("path", "split"):
                continue  # a header
            if split not in SPLITS:
                raise UserError(f"--splits {path}: line {i}: split {split!r} is none of {', '.join(SPLITS)}")
            out[str(PurePosixPath(name))] = split
    except csv.Error as e:
        raise UserError(f"--splits {path}: not a CSV file ({e})") from None
    return out


class MidiCollection:
    """Any folder, zip or tar of MIDI files, as a `pianogenie.sources.base.Source`."""

    dedupe = True  # collections hold copies (POP909's versions, re-uploads): each content counts once
    default_style = "pop"  # for any collection that is not MAESTRO (--style names another)
    assigns_splits = True  # hashed by piece or read from --splits: an empty split is worth a warning

    def __init__(
        self,
        path: Path,
        kind: str,
        files: dict[str, str],
        performances: tuple,
        unknown: tuple,
        limits: Limits,
        rule: SplitRule,
        temp: Path | None,
        groups: int,
    ):
        self.path, self.kind, self._files, self.limits, self.rule = path, kind, files, limits, rule
        self.performances, self.unknown_split, self._temp, self.groups = performances, unknown, temp, groups

    @classmethod
    def build(
        cls, path: Path, kind: str, files: dict[str, str], options: SourceOptions, temp: Path | None
    ) -> MidiCollection:
        midi = sorted(
            n
            for n in files
            if is_midi_name(n) and not any(fnmatch.fnmatchcase(n, pattern) for pattern in options.exclude)
        )
        if not midi:
            what = {"folder": "folder", "zip": "zip", "tar": "tar archive"}[kind]
            left = " (after --exclude)" if options.exclude and any(is_midi_name(n) for n in files) else ""
            raise UserError(
                f"{path}: no MIDI files (.mid/.midi) in this {what}{left}; nothing to prepare (expected a MAESTRO folder or zip, or a folder, zip or tar of MIDI files)"
            )
        rule = options.splits
        groups = {n: piece(n, rule.group_by) for n in midi}
        given = _read_split_csv(rule.csv) if rule.csv is not None else None
        extras: dict[str, list] = {}
        for n in files:
            if not is_midi_name(n):
                folder, _, base = n.rpartition("/")
                extras.setdefault(folder, []).append((base.rsplit(".", 1)[0], n))
        perfs: list[Performance] = []
        unknown: list[Performance] = []
        for n in midi:
            split = given.get(n, "") if given is not None else rule.split_of(groups[n])
            p = Performance(split, n, group=groups[n], extras=tuple(sorted(extras.get(n.rpartition("/")[0], ()))))
            (perfs if split else unknown).append(p)
        return cls(
            path, kind, files, tuple(perfs), tuple(unknown), options.limits, rule, temp, len(set(groups.values()))
        )

    def read(self, name: str) -> bytes:
        where = self._files.get(name)
        if where is None:
            raise FileNotFoundError(f"not in the source: {name}")
        cap = self.limits.max_file_bytes
        if not where:
            raise OSError(f"larger than the {cap >> 20} MB cap per file (--max-file-mb)")
        if self.kind == "zip":
            key = (os.getpid(), str(self.path))
            zf = _OPEN_ZIPS.get(key)
            if zf is None:
                zf = _OPEN_ZIPS[key] = zipfile.ZipFile(self.path)
            try:
                if zf.getinfo(where).file_size > cap:
                    raise OSError(f"larger than the {cap >> 20} MB cap per file (--max-file-mb)")
                with zf.open(where) as f:
                    return read_capped(f, cap, name)
            except _ZIP_ERRORS as e:
                raise OSError(f"corrupt zip member {where} ({type(e).__name__}: {e})") from None
        if not stat.S_ISREG(os.stat(where).st_mode):
            raise OSError("not a regular file")
        file_size_ok(where, cap)
        with builtins.open(where, "rb") as f:
            return read_capped(f, cap, name)

    def unsplit(self) -> str:
        return f"{len(self.unknown_split)} MIDI file(s) are not listed in --splits"

    def unsplit_reason(self, p: Performance) -> str:
        return "not listed in --splits"

    def describe(self) -> dict:
        rule = self.rule
        splits = (
            f"from {rule.csv}"
            if rule.csv is not None
            else f"hashed by piece (--group-by {rule.group_by}): "
            + ", ".join(f"{s} {f:g}" for s, f in zip(SPLITS, rule.fractions))
        )
        return {
            "path": str(self.path),
            "kind": self.kind,
            "format": "midi collection",
            "midi_files": len(self.performances) + len(self.unknown_split),
            "pieces": self.groups,
            "splits": splits,
        }

    def inputs(self) -> list:
        return [self.path]

    def release(self) -> None:
        """Close this process's handle on the zip (reopened on the next read)."""
        if (zf := _OPEN_ZIPS.pop((os.getpid(), str(self.path)), None)) is not None:
            zf.close()

    def close(self) -> None:
        """Release everything, the unpacked tar included (the source cannot be read afterwards)."""
        self.release()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
