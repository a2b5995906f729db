"""`pianogenie prepare` (pianogenie.prepare): the notes file and its report, skipped files, workers, interruption, real files, outputs that lose nothing."""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    GOOD_A,
    GOOD_B,
    assert_same_notes,
    build_midi,
    pretty_reference,
    tiny_files,
    write_maestro,
    zip_folder,
)

from pianogenie import notes_file as data
from pianogenie.cli import main
from pianogenie.maestro import find_source
from pianogenie.midi import parse_midi
from pianogenie.notes_file import load_notes
from pianogenie.outputs import gzip_marked
from pianogenie.prepare import PrepareReport, prepare, report_path
from pianogenie.sources.base import SPLITS, Performance
from pianogenie.util import UserError

# ---------------------------------------------------------------------------------------------
# prepare and load_notes


def test_prepare_writes_tutorial_format_and_report(tmp_path):
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "out" / "notes.json.gz"
    report = prepare(src, out, workers=1, progress=False)

    with gzip.open(out, "rt") as f:  # plain stdlib reader, as the tutorial's code does
        obj = json.load(f)
    assert list(obj) == ["train", "validation", "test"]
    assert obj["train"][0] == [[0, 0.5, 39, 80], [0.25, 0.25, 41, 70], [0.25, 0.125, 43, 90], [1, 0.5, 87, 127]]
    assert all(isinstance(row[2], int) and isinstance(row[3], int) for p in obj.values() for perf in p for row in perf)

    notes = load_notes(out)
    np.testing.assert_array_equal(notes["test"][0], parse_midi(tiny_files()["2017/c.midi"][1]).notes)
    rep = json.loads(report_path(out).read_text())
    assert report_path(out) == tmp_path / "out" / "notes.report.json"
    assert rep["splits"]["test"] == {
        "performances": 1,
        "notes": 3,
        "dropped_out_of_range": 0,
        "dropped_non_positive_duration": 0,
        "skipped": 0,
    }
    assert rep["skipped"] == [] and report.splits == rep["splits"]


def test_prepare_drops_and_counts_unplayable_notes(tmp_path):
    events = [(0, "note_on", 0, 61, 80), (0, "note_off", 0, 61, 0)]  # zero length
    files = {"x.midi": ("train", build_midi(GOOD_A + [(0.1, 0.1, 10, 10), (0.2, 0.1, 120, 10)], events=events))}
    src = find_source(write_maestro(tmp_path / "m", files))
    rep = prepare(src, tmp_path / "o.json.gz", workers=1, progress=False)
    assert rep.splits["train"]["notes"] == 4
    assert rep.splits["train"]["dropped_out_of_range"] == 2
    assert rep.splits["train"]["dropped_non_positive_duration"] == 1


def bad_files() -> dict[str, tuple[str, bytes | None]]:
    good = build_midi(GOOD_A)
    return {
        "good1.midi": ("train", good),
        "corrupt.midi": ("train", good[:14] + b"MTrk\x00\x00\x10\x00" + b"\xff" * 40),
        "truncated.midi": ("train", good[: len(good) // 2]),
        "empty.midi": ("validation", b""),
        "text.midi": ("validation", b"this is not a MIDI file"),
        "missing.midi": ("validation", None),
        "good2.midi": ("validation", build_midi(GOOD_B)),
    }


def test_prepare_skips_bad_files_with_warning_and_report(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", bad_files())
    out = tmp_path / "out.json.gz"
    assert main(["prepare", str(root), "-o", str(out), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    skipped = ["corrupt.midi", "truncated.midi", "empty.midi", "text.midi", "missing.midi"]
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == len(skipped) and all(any(s in w for w in warnings) for s in skipped)

    notes = load_notes(out)
    assert [len(notes["train"]), len(notes["validation"])] == [1, 1]
    rep = json.loads(report_path(out).read_text())
    reasons = {s["midi_filename"]: s["reason"] for s in rep["skipped"]}
    assert set(reasons) == set(skipped)
    assert reasons["missing.midi"].startswith("missing")
    assert reasons["empty.midi"] == "empty file"
    assert "not a readable MIDI" in reasons["text.midi"] and "not a readable MIDI" in reasons["truncated.midi"]
    assert rep["splits"]["train"]["skipped"] == 2 and rep["splits"]["validation"]["skipped"] == 3


def test_prepare_strict_fails_and_writes_nothing(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", bad_files())
    out = tmp_path / "out.json.gz"
    assert main(["prepare", str(root), "-o", str(out), "--strict", "--workers", "1"]) == 2
    assert "--strict" in capsys.readouterr().err
    assert not out.exists() and not report_path(out).exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "m"]  # no temporary leftovers either


def test_interrupted_prepare_leaves_no_partial_output(tmp_path, monkeypatch):
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "out.json.gz"
    previous = gzip_marked(gzip.compress(b"previous run"), "prepare")  # an earlier prepare's output
    out.write_bytes(previous)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(data._gzip, "compress", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, out, workers=1, progress=False)
    assert out.read_bytes() == previous  # untouched, and no temporary file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "out.json.gz"]


def test_workers_give_identical_output(tmp_path):
    files = {
        f"p{i}.midi": (
            "train" if i % 3 else "validation",
            build_midi([(j * 0.3, 0.2, 30 + i + j, 64) for j in range(20)]),
        )
        for i in range(9)
    }
    src = find_source(write_maestro(tmp_path / "m", files))
    prepare(src, tmp_path / "one.json.gz", workers=1, progress=False)
    prepare(src, tmp_path / "two.json.gz", workers=2, progress=False)
    assert gzip.decompress((tmp_path / "one.json.gz").read_bytes()) == gzip.decompress(
        (tmp_path / "two.json.gz").read_bytes()
    )


def test_no_performance_prepared_is_an_error(tmp_path):
    src = find_source(write_maestro(tmp_path / "m", {"a.midi": ("train", b"junk")}))
    with pytest.raises(UserError, match="nothing written"):
        prepare(src, tmp_path / "o.json.gz", workers=1, progress=False, warn=lambda m: None)
    assert not (tmp_path / "o.json.gz").exists()


# ---------------------------------------------------------------------------------------------
# End to end on real files


def test_prepare_real_files_end_to_end(maestro_dir, tmp_path, capsys):
    out = tmp_path / "real.json.gz"
    assert main(["prepare", str(maestro_dir), "-o", str(out), "--limit", "6", "--workers", "2"]) == 0
    assert "wrote" in capsys.readouterr().out
    src = find_source(maestro_dir)
    notes = load_notes(out)
    rep = json.loads(report_path(out).read_text())
    assert rep["skipped"] == [] and rep["source"]["version"] == "3.0.0"
    expected_splits = [p.split for p in src.performances[:6]]
    assert sum(len(v) for v in notes.values()) == 6
    assert {s: expected_splits.count(s) for s in set(expected_splits)} == {s: len(v) for s, v in notes.items()}
    first = src.performances[0]
    got = notes[first.split][0]
    assert_same_notes(got, pretty_reference((maestro_dir / first.midi_filename).read_bytes()), tol=1e-6)
    assert (np.diff(got[:, 0]) >= 0).all()


def test_prepare_real_files_from_official_style_zip(maestro_dir, tmp_path):
    src = find_source(maestro_dir)
    chosen = {p.midi_filename: (p.split, (maestro_dir / p.midi_filename).read_bytes()) for p in src.performances[:3]}
    root = write_maestro(tmp_path / "m", chosen, formats=("json", "csv"))
    z = zip_folder(root, tmp_path / "maestro-v3.0.0-midi.zip", "maestro-v3.0.0")
    rep = prepare(find_source(z), tmp_path / "z.json.gz", workers=2, progress=False)
    assert rep.skipped == [] and sum(s["performances"] for s in rep.splits.values()) == 3
    from_folder = prepare(find_source(root), tmp_path / "f.json.gz", workers=1, progress=False)
    assert from_folder.splits == rep.splits
    assert gzip.decompress((tmp_path / "z.json.gz").read_bytes()) == gzip.decompress(
        (tmp_path / "f.json.gz").read_bytes()
    )


# ---------------------------------------------------------------------------------------------
# Outputs: nothing lost


def test_prepare_refuses_outputs_that_are_inputs(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", tiny_files(), formats=("json", "csv"))
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    for out in [root / "maestro-v3.0.0.csv", root / "maestro-v3.0.0.json", root / "2018" / "a.midi"]:
        assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pianogenie prepare: error: ") and str(out) in err and len(err.splitlines()) == 1
    zipped = zip_folder(root, tmp_path / "maestro-v3.0.0-midi.zip", "maestro-v3.0.0")
    zip_bytes = zipped.read_bytes()
    link = tmp_path / "link.json.gz"
    link.symlink_to(zipped)
    for out in [zipped, link]:
        assert main(["prepare", str(zipped), "-o", str(out), "--workers", "1"]) == 2
        assert "is also the input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    assert zipped.read_bytes() == zip_bytes
    # a new file inside the dataset folder takes nothing from it: allowed
    assert main(["prepare", str(root), "-o", str(root / "notes.json.gz"), "--workers", "1"]) == 0


def test_prepare_refuses_to_overwrite_files_it_did_not_write(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", tiny_files())
    out = tmp_path / "out.json.gz"
    out.write_text("my notes, not a notes file")
    assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and out.read_text() == "my notes, not a notes file"
    out.unlink()
    report_path(out).write_text("an unrelated file that happens to have the report's name")
    assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and not out.exists()
    report_path(out).unlink()
    assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 0
    assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 0  # its own outputs: replaced


def test_prepare_writes_notes_and_report_both_or_neither(tmp_path, monkeypatch, capsys):
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "out.json.gz"
    report_path(out).mkdir()  # the report cannot be written: nothing is, and no work is done
    assert main(["prepare", str(src.path), "-o", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert str(report_path(out)) in err and "folder" in err and not out.exists()
    report_path(out).rmdir()

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(PrepareReport, "to_json", interrupted)  # Ctrl-C while the report is written
    with pytest.raises(KeyboardInterrupt):
        prepare(src, out, workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    monkeypatch.undo()

    real_replace = os.replace

    def full_disk(a, b):  # the second rename fails: the first is taken back
        if str(b).endswith(".report.json"):
            raise OSError(28, "No space left on device")
        return real_replace(a, b)

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(UserError, match="No space left on device"):
        prepare(src, out, workers=1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("make_bad", ["dir", "parent_is_file", "special"])
def test_prepare_unwritable_output_is_one_line(tmp_path, capsys, make_bad):
    root = write_maestro(tmp_path / "m", tiny_files())
    out = tmp_path / "out.json.gz"
    if make_bad == "dir":
        out.mkdir()
    elif make_bad == "parent_is_file":
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "sub" / "out.json.gz"
    else:
        out = Path("/dev/null")
    assert main(["prepare", str(root), "-o", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie prepare: error: ") and len(err.splitlines()) == 1 and str(out) in err


@pytest.mark.parametrize("limit", ["0", "-1"])
def test_prepare_limit_must_be_positive(tmp_path, capsys, limit):
    root = write_maestro(tmp_path / "m", tiny_files())
    assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz"), f"--limit={limit}"]) == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def test_unknown_splits_are_warned_about_and_explained(tmp_path, capsys):
    files = {"a.midi": ("train", build_midi(GOOD_A)), "b.midi": ("holdout", build_midi(GOOD_B))}
    root = write_maestro(tmp_path / "m", files)
    assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz"), "--workers", "1"]) == 0
    assert "unknown split ('holdout'" in capsys.readouterr().err
    root = write_maestro(tmp_path / "n", {"b.midi": ("holdout", build_midi(GOOD_B))})
    assert main(["prepare", str(root), "-o", str(tmp_path / "p.json.gz"), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert "no performance has a split: 1 row(s) of maestro-v3.0.0.json have an unknown split ('holdout';" in err


def test_hostile_midi_and_metadata_are_skipped_with_reasons(tmp_path, capsys):
    import mido

    def midi(tempo=None, tpq=480):
        mf = mido.MidiFile(ticks_per_beat=480)
        tr = mido.MidiTrack()
        mf.tracks.append(tr)
        if tempo is not None:
            tr.append(mido.MetaMessage("set_tempo", tempo=tempo))
        tr += [mido.Message("note_on", note=60, velocity=64, time=0), mido.Message("note_off", note=60, time=480)]
        buf = io.BytesIO()
        mf.save(file=buf)
        raw = bytearray(buf.getvalue())
        raw[12:14] = tpq.to_bytes(2, "big")
        return bytes(raw)

    files = {
        "good.midi": ("train", build_midi(GOOD_A)),
        "tempo0.midi": ("train", midi(tempo=0)),
        "tpq0.midi": ("train", midi(tpq=0)),
        "smpte.midi": ("train", midi(tpq=0xE728)),
        "x" * 300 + ".midi": ("train", None),
        "nul\0name.midi": ("train", None),
        "": ("train", None),
    }
    root = write_maestro(tmp_path / "m", {k: v for k, v in files.items() if v[1] is not None})
    meta = json.loads((root / "maestro-v3.0.0.json").read_text())
    for name in ["x" * 300 + ".midi", "nul\0name.midi", ""]:
        i = str(len(meta["split"]))
        for col in meta:
            meta[col][i] = meta[col]["0"]
        meta["midi_filename"][i] = name
    meta["midi_filename"][str(len(meta["split"]))] = None  # a row without a split
    (root / "maestro-v3.0.0.json").write_text(json.dumps(meta))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning (tempo 0) leaks out
        assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz"), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "tempo0.midi: not a readable MIDI file: it has a tempo of 0" in err
    assert "tpq0.midi: not a readable MIDI file: its header gives 0 ticks" in err
    assert "smpte.midi: not a readable MIDI file" in err
    assert "File name too long" in err and "not a file name: 'nul\\x00name.midi'" in err
    assert "Traceback" not in err


class MemorySource:
    """A kind of source prepare has never heard of: it has only the `Source` interface to go by."""

    kind = "memory"
    dedupe = False
    default_style = "classical"
    assigns_splits = False

    def __init__(self, path: Path, files: dict):
        self.path, self.files = path, files
        perfs = [Performance(split, name, group=name) for name, (split, _) in files.items()]
        self.performances = tuple(p for p in perfs if p.split in SPLITS)
        self.unknown_split = tuple(p for p in perfs if p.split not in SPLITS)
        self.groups = len(perfs)

    def read(self, name: str) -> bytes:
        return self.files[name][1]

    def unsplit(self) -> str:
        return f"{len(self.unknown_split)} take(s) set aside by the archivist"

    def unsplit_reason(self, p: Performance) -> str:
        return "set aside by the archivist"

    def describe(self) -> dict:
        return {"path": str(self.path), "kind": self.kind, "format": "memory"}

    def inputs(self) -> list:
        return [self.path]

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_prepare_knows_sources_only_by_their_interface(tmp_path):
    from pianogenie.harmony import style_id

    files = {"a.midi": ("train", build_midi(GOOD_A)), "b.midi": ("aside", build_midi(GOOD_B))}
    warnings: list = []
    out = tmp_path / "o.json.gz"
    report = prepare(
        MemorySource(tmp_path / "mem", files), out, workers=1, progress=False, warn=warnings.append, labels="annotated"
    )
    assert report.labels == {"mode": "annotated", "style": style_id("classical")}  # the source's default style
    assert warnings == ["1 take(s) set aside by the archivist: skipped"]  # no empty-split warnings: its own splits
    assert report.skipped == [{"midi_filename": "b.midi", "split": "aside", "reason": "set aside by the archivist"}]
    with pytest.raises(UserError, match=r"no performance has a split: 1 take\(s\) set aside by the archivist"):
        prepare(MemorySource(tmp_path / "mem", {"b.midi": files["b.midi"]}), tmp_path / "p.json.gz", progress=False)
