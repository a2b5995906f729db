"""Finding a MAESTRO dataset (pianogenie.maestro): folders and official zips, metadata versions, damaged or hostile sources."""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import pytest
from helpers import build_midi, tiny_files, write_maestro, zip_folder

from pianogenie.bounded import NotRegular
from pianogenie.cli import main
from pianogenie.maestro import find_source
from pianogenie.notes_file import load_notes
from pianogenie.sources.base import Limits
from pianogenie.util import UserError

# ---------------------------------------------------------------------------------------------
# Finding the dataset


@pytest.mark.parametrize(
    "version,formats",
    [("3.0.0", ("json",)), ("3.0.0", ("csv",)), ("3.0.0", ("json", "csv")), ("2.0.0", ("json",)), ("2.0.0", ("csv",))],
)
def test_find_source_folder_versions(tmp_path, version, formats):
    root = write_maestro(tmp_path / "m", tiny_files(), version=version, formats=formats)
    src = find_source(root)
    assert src.kind == "folder" and src.version == version
    assert [(p.split, p.midi_filename) for p in src.performances] == [(s, n) for n, (s, _) in tiny_files().items()]
    assert src.read("2018/b.midi") == tiny_files()["2018/b.midi"][1]


@pytest.mark.parametrize("version", ["3.0.0", "2.0.0"])
def test_find_source_official_zip_read_in_place(tmp_path, version):
    root = write_maestro(tmp_path / "m", tiny_files(), version=version, formats=("json", "csv"))
    z = zip_folder(root, tmp_path / f"maestro-v{version}-midi.zip", f"maestro-v{version}")
    src = find_source(z)
    assert src.kind == "zip" and src.root == f"maestro-v{version}/" and len(src.performances) == 3
    assert src.read("2018/a.midi") == tiny_files()["2018/a.midi"][1]
    # the folder the zip unpacks into works too
    with zipfile.ZipFile(z) as zf:
        zf.extractall(tmp_path / "unpacked")
    assert len(find_source(tmp_path / "unpacked").performances) == 3


def test_find_source_not_maestro(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("x/readme.txt", "no metadata")
    for bad, words in [
        (tmp_path / "empty", "not a MAESTRO folder"),
        (tmp_path / "notes.txt", "neither a folder nor a zip"),
        (tmp_path / "other.zip", "holds no maestro-vX.Y.Z"),
        (tmp_path / "nowhere", "does not exist"),
    ]:
        with pytest.raises(UserError, match=words) as e:
            find_source(bad)
        assert str(bad) in str(e.value) and "expected" in str(e.value)


def test_cli_non_maestro_source_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["prepare", str(tmp_path / "empty"), "-o", str(tmp_path / "out.json.gz")])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("pianogenie prepare: error:") and "MAESTRO" in err and "Traceback" not in err
    assert not (tmp_path / "out.json.gz").exists()


def test_metadata_without_required_column(tmp_path):
    (tmp_path / "maestro-v3.0.0.csv").write_text("canonical_title,midi_filename\nx,a.midi\n")
    with pytest.raises(UserError, match="no 'split' column"):
        find_source(tmp_path)


def _damage_member(zip_path: Path, name: str) -> None:
    """Flip bytes in the middle of one member's stored data (its local header stays intact)."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(zip_path.read_bytes())
    name_len, extra_len = (
        int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little"),
        int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little"),
    )
    start = info.header_offset + 30 + name_len + extra_len
    mid = start + info.compress_size // 2
    raw[mid : mid + 4] = bytes(b ^ 0xFF for b in raw[mid : mid + 4])
    zip_path.write_bytes(bytes(raw))


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_zip_members_are_skipped_or_one_clear_error(tmp_path, capsys, compression):
    files = {
        f"2018/p{i}.midi": ("train", build_midi([(j * 0.1, 0.3, 40 + (i + j) % 30, 70) for j in range(200)]))
        for i in range(3)
    }
    root = write_maestro(tmp_path / "m", files)
    zipped = tmp_path / "maestro-v3.0.0-midi.zip"
    with zipfile.ZipFile(zipped, "w", compression) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"maestro-v3.0.0/{p.relative_to(root).as_posix()}")
    _damage_member(zipped, "maestro-v3.0.0/2018/p1.midi")  # deflate: corrupt data; stored: bad CRC
    out = tmp_path / "o.json.gz"
    assert main(["prepare", str(zipped), "-o", str(out), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    assert "skipped 2018/p1.midi: unreadable: corrupt zip member" in err
    assert len(load_notes(out)["train"]) == 2
    _damage_member(zipped, "maestro-v3.0.0/maestro-v3.0.0.json")
    assert main(["prepare", str(zipped), "-o", str(tmp_path / "p.json.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pianogenie prepare: error: {zipped}") and len(err.splitlines()) == 1


def test_metadata_with_oversized_csv_field_is_one_clear_error(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", tiny_files(), formats=("csv",))
    (root / "maestro-v3.0.0.csv").write_text("split,midi_filename\ntrain," + "a" * 200_000 + "\n")
    assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie prepare: error: maestro-v3.0.0.csv: cannot read MAESTRO metadata (field larger")


def test_zip_is_held_to_the_archive_caps(tmp_path, capsys, monkeypatch):
    from pianogenie import maestro

    root = write_maestro(tmp_path / "m", tiny_files())
    (root / "zeros.bin").write_bytes(b"\0" * (3 << 20))  # deflates to almost nothing
    z = zip_folder(root, tmp_path / "maestro-v3.0.0-midi.zip", "maestro-v3.0.0")
    code = main(["prepare", str(z), "-o", str(tmp_path / "o.json.gz"), "--max-archive-gb", "0.001"])
    err = capsys.readouterr().err
    assert code == 2 and "over the 1.02 MB cap" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o.json.gz").exists()
    with pytest.raises(UserError, match="members, over the cap of 2"):
        find_source(z, Limits(max_members=2))
    # the metadata is read whole, so it has a cap of its own, checked before reading it
    monkeypatch.setattr(maestro, "MAX_METADATA_BYTES", 100)
    with pytest.raises(UserError, match=r"maestro-v3\.0\.0\.json is larger than"):
        find_source(z)
    with pytest.raises(UserError, match="metadata larger than"):
        find_source(root)


def test_folder_refuses_a_fifo_instead_of_waiting_on_it(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", {**tiny_files(), "2018/fifo.midi": ("train", None)})
    os.mkfifo(root / "2018" / "fifo.midi")
    src = find_source(root)
    outcome: list = []

    def read() -> None:
        try:
            outcome.append(src.read("2018/fifo.midi"))
        except OSError as e:
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)  # a blocking open() would hang the test, not fail it
    reader.start()
    reader.join(10)
    assert outcome and isinstance(outcome[0], NotRegular), "reading a FIFO must be refused, not wait for a writer"
    assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz"), "--workers", "1"]) == 0
    assert "skipped 2018/fifo.midi: unreadable: not a regular file" in capsys.readouterr().err
