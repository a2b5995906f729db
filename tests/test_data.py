"""pianogenie.data: MAESTRO discovery, MIDI parsing (== pretty_midi), prepare, load_notes, bad input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from conftest import build_midi, write_maestro, zip_folder
from pianogenie import data
from pianogenie.cli import main
from pianogenie.data import load_notes
from pianogenie.outputs import gzip_marked
from pianogenie.maestro import find_source
from pianogenie.midi import parse_midi
from pianogenie.prepare import PrepareReport, prepare, report_path
from pianogenie.util import UserError

GOOD_A = [(0.0, 1.0, 60, 80), (0.5, 0.25, 64, 90), (0.5, 0.5, 62, 70), (2.0, 1.0, 108, 127)]
GOOD_B = [(0.0, 0.5, 21, 1), (1.0, 0.5, 55, 100)]


def pretty_reference(midi: bytes) -> np.ndarray:
    """What pretty_midi reads: all non-drum notes, pitch in the piano range, positive duration."""
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    rows = [
        (n.start, n.end - n.start, n.pitch - 21, n.velocity)
        for inst in pm.instruments
        if not inst.is_drum
        for n in inst.notes
        if 21 <= n.pitch <= 108 and n.end > n.start
    ]
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return a[np.lexsort((a[:, 3], a[:, 1], a[:, 2], a[:, 0]))]


def assert_same_notes(ours: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """The issue's criterion: same count, same keys and velocities, onsets and offsets within tol."""
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours[:, 2:], ref[:, 2:])
    np.testing.assert_allclose(ours[:, 0], ref[:, 0], rtol=0, atol=tol)
    np.testing.assert_allclose(ours[:, 0] + ours[:, 1], ref[:, 0] + ref[:, 1], rtol=0, atol=tol)


# ---------------------------------------------------------------------------------------------
# Parsing


def test_parse_midi_notes_keys_sorting_and_drops():
    midi = build_midi(
        GOOD_A + [(0.25, 0.5, 20, 50), (0.3, 0.2, 109, 50)],  # two outside the piano range
        drums=[(0.0, 0.5, 36, 100)],
    )
    p = parse_midi(midi)
    assert p.dropped_out_of_range == 2
    assert p.dropped_non_positive == 0
    assert p.notes.dtype == np.float64 and p.notes.shape == (4, 4)
    # 120 bpm: one beat = 0.5 s; sorted by onset, then key
    expected = [[0.0, 0.5, 39, 80], [0.25, 0.25, 41, 70], [0.25, 0.125, 43, 90], [1.0, 0.5, 87, 127]]
    np.testing.assert_array_equal(p.notes, expected)


def test_parse_midi_tempo_changes_match_pretty_midi():
    midi = build_midi(
        [(i * 0.5, 0.4, 40 + i, 60 + i) for i in range(40)],
        tempos=[(0, 400000), (1000, 700000), (1000, 650000), (5000, 300000)],
        ticks_per_beat=384,
    )
    p = parse_midi(midi)
    assert not p.used_pretty_midi
    np.testing.assert_allclose(p.notes, pretty_reference(midi), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "events",
    [
        # note-on velocity 0 is a note-off
        [(0, "note_on", 0, 60, 80), (100, "note_on", 0, 60, 0)],
        # same pitch re-struck before its note-off: pretty_midi ends both at the first note-off
        [(0, "note_on", 0, 60, 80), (100, "note_on", 0, 60, 90), (200, "note_off", 0, 60, 0), (300, "note_off", 0, 60, 0)],
        # overlapping notes ending together
        [(0, "note_on", 0, 60, 80), (100, "note_on", 0, 60, 90), (200, "note_off", 0, 60, 0), (200, "note_off", 0, 60, 0)],
        # re-strike on the tick of the note-off, either order
        [(0, "note_on", 0, 60, 80), (100, "note_on", 0, 60, 90), (100, "note_off", 0, 60, 0), (200, "note_off", 0, 60, 0)],
        [(0, "note_on", 0, 60, 80), (100, "note_off", 0, 60, 0), (100, "note_on", 0, 60, 90), (200, "note_off", 0, 60, 0)],
        # zero-length note, and two note-ons on one tick closed on that tick
        [(0, "note_on", 0, 60, 80), (0, "note_off", 0, 60, 0), (10, "note_on", 0, 62, 80), (20, "note_off", 0, 62, 0)],
        [(0, "note_on", 0, 60, 80), (0, "note_on", 0, 60, 81), (0, "note_off", 0, 60, 0), (50, "note_off", 0, 60, 0),
         (60, "note_on", 0, 64, 80), (90, "note_off", 0, 64, 0)],
        # the same pitch on two channels is two instruments
        [(0, "note_on", 0, 60, 80), (50, "note_on", 1, 60, 70), (100, "note_off", 0, 60, 0), (200, "note_off", 1, 60, 0)],
        # spurious note-off, and a note never switched off
        [(0, "note_off", 0, 61, 0), (10, "note_on", 0, 61, 80), (30, "note_off", 0, 61, 0), (40, "note_on", 0, 70, 80)],
    ],
)
def test_parse_midi_pairs_notes_like_pretty_midi(events):
    midi = build_midi(events=events)
    assert_same_notes(parse_midi(midi).notes, pretty_reference(midi), tol=1e-6)


def test_parse_midi_rejects_non_midi():
    for bad in (b"", b"not a midi file at all", build_midi(GOOD_A)[:30]):
        with pytest.raises(Exception):
            parse_midi(bad)


REAL_FILES = [
    # overlapping same-pitch notes, zero-length notes, and ordinary files from several sources
    "Liszt/Hungarian_Rhapsodies/6/LiA09M.midi",
    "Chopin/Etudes_op_10/8/Benabdallah02.midi",
    "Chopin/Sonata_3/2nd/SCHU09.midi",
    "Beethoven/Piano_Sonatas/32-1/MORET01.midi",
    "Balakirev/Islamey/Cho05.midi",
]


def test_symusic_notes_equal_pretty_midi_on_real_files(maestro_dir):
    rows = list(csv.DictReader(open(maestro_dir / "maestro-v3.0.0.csv", newline="")))
    names = [n for n in REAL_FILES if (maestro_dir / n).exists()]
    names += [r["midi_filename"] for r in rows[:: max(1, len(rows) // 8)]]  # spread over the dataset
    for name in names:
        midi = (maestro_dir / name).read_bytes()
        parsed = parse_midi(midi)
        # the criterion is 1e-4 s; we match to the microsecond we round to
        assert_same_notes(parsed.notes, pretty_reference(midi), tol=1e-6)
        assert len(parsed.notes) > 100, name


# ---------------------------------------------------------------------------------------------
# Finding the dataset


def tiny_files() -> dict[str, tuple[str, bytes]]:
    return {
        "2018/a.midi": ("train", build_midi(GOOD_A)),
        "2018/b.midi": ("validation", build_midi(GOOD_B)),
        "2017/c.midi": ("test", build_midi(GOOD_B + [(3.0, 1.0, 30, 30)])),
    }


@pytest.mark.parametrize("version,formats", [("3.0.0", ("json",)), ("3.0.0", ("csv",)), ("3.0.0", ("json", "csv")),
                                             ("2.0.0", ("json",)), ("2.0.0", ("csv",))])
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
    assert rep["splits"]["test"] == {"performances": 1, "notes": 3, "dropped_out_of_range": 0,
                                     "dropped_non_positive_duration": 0, "skipped": 0}
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
    files = {f"p{i}.midi": ("train" if i % 3 else "validation", build_midi([(j * 0.3, 0.2, 30 + i + j, 64) for j in range(20)]))
             for i in range(9)}
    src = find_source(write_maestro(tmp_path / "m", files))
    prepare(src, tmp_path / "one.json.gz", workers=1, progress=False)
    prepare(src, tmp_path / "two.json.gz", workers=2, progress=False)
    assert gzip.decompress((tmp_path / "one.json.gz").read_bytes()) == gzip.decompress((tmp_path / "two.json.gz").read_bytes())


def test_no_performance_prepared_is_an_error(tmp_path):
    src = find_source(write_maestro(tmp_path / "m", {"a.midi": ("train", b"junk")}))
    with pytest.raises(UserError, match="nothing written"):
        prepare(src, tmp_path / "o.json.gz", workers=1, progress=False, warn=lambda m: None)
    assert not (tmp_path / "o.json.gz").exists()


def tutorial_style_file(path: Path, dataset: dict) -> Path:
    """Written as the 2021 tutorial's notebook does: json.dumps (", " separators) + gzip, floats everywhere."""
    with gzip.open(path, "wt") as f:
        json.dump(dataset, f)
    return path


def test_load_notes_reads_tutorial_format(tmp_path):
    rng = np.random.default_rng(0)
    perf = [[float(t), 0.1234567891234, float(k), float(v)]
            for t, k, v in zip(np.cumsum(rng.random(50)), rng.integers(0, 88, 50), rng.integers(1, 128, 50))]
    dataset = {"train": [perf, perf[:10]], "validation": [perf[:3]], "test": []}
    loaded = load_notes(tutorial_style_file(tmp_path / "maestro-v2.0.0-simple.json.gz", dataset))
    assert set(loaded) == {"train", "validation", "test"} and loaded["test"] == []
    np.testing.assert_array_equal(loaded["train"][0], np.array(perf))  # exact: full-precision floats
    assert loaded["validation"][0].shape == (3, 4) and loaded["validation"][0].dtype == np.float64


def test_fast_and_general_readers_agree(tmp_path):
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "o.json.gz"
    prepare(src, out, workers=1, progress=False)
    text = gzip.decompress(out.read_bytes())
    general = data._parse_general(out, text)
    fast = data._parse_fast(text)
    assert fast is not None and fast.keys() == general.keys()
    for split in fast:
        for a, b in zip(fast[split], general[split], strict=True):
            np.testing.assert_array_equal(a, b)


def test_notes_json_is_plain_json_and_exact():
    rng = np.random.default_rng(1)
    t = np.round(np.sort(rng.random(500) * 5000), 6)
    notes = np.stack([t, np.round(rng.random(500) * 30 + 1e-6, 6), rng.integers(0, 88, 500), rng.integers(1, 128, 500)], 1)
    notes[0, :2] = [0.0, 0.000001]
    text = data.notes_to_json(notes)
    np.testing.assert_array_equal(np.array(json.loads(text)), notes)  # any JSON reader, exact values
    np.testing.assert_array_equal(data._parse_fast(b'{"test":[' + text + b"]}")["test"][0], notes)


@pytest.mark.parametrize(
    "content,words",
    [
        (b"plain text, not gzip", "not a gzip file"),
        (gzip.compress(b"{not json"), "not valid JSON"),
        (gzip.compress(b"[1, 2, 3]"), "wrong structure"),
        (gzip.compress(b'{"training": []}'), "wrong structure"),
        (gzip.compress(b'{"train": {"a": 1}}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80], [1.0, 0.5, 40]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80, 1], [1.0, 0.5, 40]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[["a", 0.5, 39, 80]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 88, 80]]]}'), "train performance 0, note 0: key must be"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 3.5, 80]]]}'), "note 0: key must be an integer"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 30, 0]]]}'), "note 0: velocity must be"),
        (gzip.compress(b"{}")[:-6], "corrupt gzip"),
        # ragged rows whose numbers add up to whole rows of four (once read as two valid notes)
        (gzip.compress(b'{"train": [[[0,0.1,40],[80,0.2,0.1,41,80]]]}'), "train performance 0, note 0: expected"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80]],[[0,0.1,40],[80,0.2,0.1,41,80]]]}'), "performance 1, note 0"),
        # numbers written as strings or booleans (numpy would convert them)
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,0.1,"41",80]]]}'), "performance 0, note 1: expected"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,0.1,true,80]]]}'), "note 1: expected"),
        (gzip.compress(b'{"validation": [[[0,0.1,40,80]]], "train": [[[0,null,40,80]]]}'), "train performance 0"),
        # negative durations, decreasing onsets, absurd times
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,-0.1,41,80]]]}'), "note 1: duration must be"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[1,0.1,41,80],[0.5,0.1,41,80]]]}'), "note 2: onset before"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[1e308,0.1,41,80]]]}'), "note 1: onset must be"),
        (gzip.compress(b'{"train": [[[-1,0.1,40,80]]]}'), "note 0: onset must be"),
        # deeply nested JSON
        (gzip.compress(b'{"train": ' + b"[" * 100000 + b"]" * 100000 + b"}"), "not valid JSON"),
    ],
)
def test_load_notes_bad_files_name_the_file(tmp_path, content, words):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(content)
    with pytest.raises(UserError, match=words) as e:
        load_notes(path)
    assert str(path) in str(e.value)


def test_load_notes_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        load_notes(tmp_path / "nope.json.gz")


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
    assert gzip.decompress((tmp_path / "z.json.gz").read_bytes()) == gzip.decompress((tmp_path / "f.json.gz").read_bytes())


# ---------------------------------------------------------------------------------------------
# load_notes' binary cache


def cache_files() -> list[Path]:
    from pianogenie.download import cache_dir

    return sorted((cache_dir() / "notes").glob("*.npz"))


def test_prepare_primes_the_cache_and_load_uses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "o.json.gz"
    prepare(src, out, workers=1, progress=False)
    assert len(cache_files()) == 1
    parsed = data._parse_general(out, gzip.decompress(out.read_bytes()))
    monkeypatch.setattr(data, "_parse_fast", lambda text: pytest.fail("the cache should have answered"))
    cached = load_notes(out)
    assert cached.keys() == parsed.keys()
    for split in parsed:
        for a, b in zip(cached[split], parsed[split], strict=True):
            np.testing.assert_array_equal(a, b)


def test_cache_keeps_only_the_most_recently_used_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    paths = []
    for i in range(data._CACHE_KEEP + 1):
        path = tmp_path / f"n{i}.json.gz"
        path.write_bytes(gzip.compress(b'{"train": [[[0.0, 0.5, %d, 80]]]}' % i))
        paths.append(path)
    entry = [data._cache_path(p.read_bytes()) for p in paths]
    for i, path in enumerate(paths[:-1]):
        load_notes(path)
        os.utime(entry[i], (1000 * (i + 1),) * 2)  # n0 oldest
    load_notes(paths[0])  # a hit makes n0 the most recent, so n1 is now the oldest
    load_notes(paths[-1])
    assert set(cache_files()) == set(entry) - {entry[1]}


def test_cache_follows_contents_and_survives_damage(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "n.json.gz"
    path.write_bytes(gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80]]], "test": []}'))
    first = load_notes(path)
    assert len(cache_files()) == 1 and first["test"] == []
    path.write_bytes(gzip.compress(b'{"train": [[[1.0, 0.5, 40, 81], [2.0, 0.25, 41, 82]]]}'))
    second = load_notes(path)  # other contents: not the old cache entry
    np.testing.assert_array_equal(second["train"][0], [[1.0, 0.5, 40, 81], [2.0, 0.25, 41, 82]])
    assert len(cache_files()) == 2
    for f in cache_files():
        f.write_bytes(b"damaged")
    np.testing.assert_array_equal(load_notes(path)["train"][0], second["train"][0])


def test_unwritable_cache_does_not_stop_loading(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("PIANOGENIE_CACHE", str(blocker))
    path = tmp_path / "n.json.gz"
    path.write_bytes(gzip.compress(b'{"validation": [[[0.0, 0.5, 39, 80]]]}'))
    assert load_notes(path)["validation"][0].shape == (1, 4)


def test_cache_tells_apart_multi_member_gzip_files_that_end_alike(tmp_path, monkeypatch):
    """Same length, same last member (so the same gzip trailer), different first members."""
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    tail = gzip.compress(b"]]]}", mtime=0)
    heads = [gzip.compress(b'{"train":[[[0,0.5,%d,80' % k, mtime=0) for k in (40, 41)]
    assert len(heads[0]) == len(heads[1]) and heads[0] != heads[1]
    paths = []
    for i, h in enumerate(heads):
        paths.append(tmp_path / f"n{i}.json.gz")
        paths[-1].write_bytes(h + tail)
    assert paths[0].read_bytes()[-8:] == paths[1].read_bytes()[-8:]
    assert load_notes(paths[0])["train"][0][0, 2] == 40
    assert load_notes(paths[1])["train"][0][0, 2] == 41  # not the first file's notes from the cache


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
    assert "no row of maestro-v3.0.0.json has a split among train, validation, test (found: 'holdout')" in err


def _damage_member(zip_path: Path, name: str) -> None:
    """Flip bytes in the middle of one member's stored data (its local header stays intact)."""
    with zipfile.ZipFile(zip_path) as zf:
        info = zf.getinfo(name)
    raw = bytearray(zip_path.read_bytes())
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    mid = start + info.compress_size // 2
    raw[mid:mid + 4] = bytes(b ^ 0xFF for b in raw[mid:mid + 4])
    zip_path.write_bytes(bytes(raw))


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_zip_members_are_skipped_or_one_clear_error(tmp_path, capsys, compression):
    files = {f"2018/p{i}.midi": ("train", build_midi([(j * 0.1, 0.3, 40 + (i + j) % 30, 70) for j in range(200)]))
             for i in range(3)}
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

    files = {"good.midi": ("train", build_midi(GOOD_A)), "tempo0.midi": ("train", midi(tempo=0)),
             "tpq0.midi": ("train", midi(tpq=0)), "smpte.midi": ("train", midi(tpq=0xE728)),
             "x" * 300 + ".midi": ("train", None), "nul\0name.midi": ("train", None), "": ("train", None)}
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


def test_metadata_with_oversized_csv_field_is_one_clear_error(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", tiny_files(), formats=("csv",))
    (root / "maestro-v3.0.0.csv").write_text("split,midi_filename\ntrain," + "a" * 200_000 + "\n")
    assert main(["prepare", str(root), "-o", str(tmp_path / "o.json.gz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie prepare: error: maestro-v3.0.0.csv: cannot read MAESTRO metadata (field larger")
