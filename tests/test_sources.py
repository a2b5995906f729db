"""Sources other than MAESTRO (folders, zips and tars of MIDI files), splits by piece, track
selection, bad input, and the memory-mapped notes store; tiny MIDI files built in code."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import mido
import numpy as np
import pytest

try:  # main keeps the tiny-MIDI builders in tests/helpers.py; this branch still has them in conftest
    from helpers import build_midi, write_maestro
except ImportError:
    from conftest import build_midi, write_maestro
from pianogenie.cli import main
from pianogenie.midi import TrackSelection, parse_midi
from pianogenie.notes_file import load_notes
from pianogenie.prepare import prepare
from pianogenie.sources import SourceOptions, SplitRule, open_source
from pianogenie.sources.base import SPLITS
from pianogenie.store import StoreSplit
from pianogenie.util import UserError
from pianogenie.windows import Notes, TrainWindows, eval_windows


def multitrack(tracks: list[tuple[str, int, list[tuple[float, float, int, int]]]], drums=()) -> bytes:
    """A type-1 file: tempo track, then one named track per (name, program, notes in beats), then drums."""
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    mf.tracks.append(mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500000, time=0)]))
    for ch, (name, program, notes) in enumerate(list(tracks) + ([("DRUMS", 0, list(drums))] if drums else [])):
        channel = 9 if name == "DRUMS" else ch
        evs = []
        for on, dur, pitch, vel in notes:
            evs += [
                (round(on * 480), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=vel)),
                (round((on + dur) * 480), 0, mido.Message("note_off", channel=channel, note=pitch, velocity=0)),
            ]
        tr = mido.MidiTrack(
            [
                mido.MetaMessage("track_name", name=name, time=0),
                mido.Message("program_change", channel=channel, program=program, time=0),
            ]
        )
        last = 0
        for tick, _, msg in sorted(evs, key=lambda e: (e[0], e[1])):
            tr.append(msg.copy(time=tick - last))
            last = tick
        mf.tracks.append(tr)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def song(i: int) -> bytes:
    melody = [(j * 0.5, 0.5, 60 + (i + j) % 12, 90) for j in range(8)]
    piano = [(j * 1.0, 1.0, 40 + (i * 3 + j) % 12, 60) for j in range(4)]
    return multitrack(
        [("MELODY", 0, melody), ("BRIDGE", 0, [(0.25, 0.25, 70 + i % 5, 70)]), ("PIANO", 0, piano)],
        drums=[(0, 0.1, 36, 100)],
    )


def pop_folder(root: Path, n: int = 12) -> Path:
    """POP909's layout: <id>/<id>.mid, <id>/versions/<id>-vN.mid, annotation text files beside."""
    for i in range(n):
        d = root / "POP909" / f"{i:03d}"
        (d / "versions").mkdir(parents=True)
        (d / f"{i:03d}.mid").write_bytes(song(i))
        (d / "versions" / f"{i:03d}-v1.MIDI").write_bytes(song(i + 100))
        (d / "chord_midi.txt").write_text("0.0\t1.0\tC:maj\n")
        (d / "key_audio.txt").write_text("0.0\t9.0\tC:maj\n")
    (root / "README.md").write_text("not MIDI")
    return root


def run(args, capsys):
    code = main(args)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_folder_pieces_stay_together_and_extras_are_found(tmp_path):
    src = open_source(pop_folder(tmp_path / "pop"))
    assert src.kind == "folder" and len(src.performances) == 24 and src.groups == 12
    by_group: dict = {}
    for p in src.performances:
        by_group.setdefault(p.group, set()).add(p.split)
    assert all(len(splits) == 1 for splits in by_group.values())  # a piece never straddles splits
    main_perf = next(p for p in src.performances if p.midi_filename == "POP909/003/003.mid")
    assert main_perf.group == "POP909/003"
    assert src.read(main_perf.extra("chord_midi")) == b"0.0\t1.0\tC:maj\n"
    assert main_perf.extra("key_audio") == "POP909/003/key_audio.txt"
    version = next(p for p in src.performances if p.midi_filename == "POP909/003/versions/003-v1.MIDI")
    assert version.group == "POP909/003" and version.extras == ()  # uppercase suffix found; no text beside it


def test_splits_are_stable_when_files_are_added_and_adjustable(tmp_path):
    before = {p.midi_filename: p.split for p in open_source(pop_folder(tmp_path / "pop", 40)).performances}
    assert set(before.values()) == {"train", "validation", "test"}
    d = tmp_path / "pop" / "POP909" / "new"
    d.mkdir()
    (d / "new.mid").write_bytes(song(7))
    after = {p.midi_filename: p.split for p in open_source(tmp_path / "pop").performances}
    assert {k: after[k] for k in before} == before and "POP909/new/new.mid" in after
    only_test = open_source(tmp_path / "pop", SourceOptions(splits=SplitRule(fractions=(0, 0, 1))))
    assert {p.split for p in only_test.performances} == {"test"}
    per_file = open_source(tmp_path / "pop", SourceOptions(splits=SplitRule(group_by="file")))
    assert {p.group for p in per_file.performances} == set(after)
    with pytest.raises(UserError, match="summing to 1"):
        SplitRule(fractions=(0.5, 0.1, 0.1))


def test_splits_from_csv(tmp_path, capsys):
    root = pop_folder(tmp_path / "pop", 3)
    (tmp_path / "splits.csv").write_text("path,split\nPOP909/000/000.mid,test\nPOP909/001/001.mid,validation\n")
    out = tmp_path / "notes.json.gz"
    code, _, err = run(
        ["prepare", str(root), "-o", str(out), "--splits", str(tmp_path / "splits.csv"), "--workers", "1"], capsys
    )
    assert code == 0 and "not listed in --splits" in err
    notes = load_notes(out)
    assert sorted(notes) == ["test", "validation"] and len(notes["test"]) == 1
    (tmp_path / "bad.csv").write_text("POP909/000/000.mid,holdout\n")
    code, _, err = run(
        ["prepare", str(root), "-o", str(tmp_path / "o2.json.gz"), "--splits", str(tmp_path / "bad.csv")], capsys
    )
    assert code == 2 and "holdout" in err and len(err.splitlines()) == 1


def test_prepare_collection_duplicates_tracks_and_report(tmp_path, capsys):
    root = pop_folder(tmp_path / "pop", 6)
    (root / "POP909" / "005" / "copy.mid").write_bytes(song(5))  # byte-identical to 005.mid
    out = tmp_path / "pop.json.gz"
    code, _stdout, err = run(["prepare", str(root), "-o", str(out), "--workers", "2"], capsys)
    assert code == 0 and "byte-identical" in err
    rep = json.loads((tmp_path / "pop.report.json").read_text())
    assert rep["duplicates"] == [{"midi_filename": "POP909/005/copy.mid", "same_as": "POP909/005/005.mid"}]
    assert sum(s["performances"] for s in rep["splits"].values()) == 12
    assert sum(s["duplicates"] for s in rep["splits"].values()) == 1
    row = next(f for f in rep["files"] if f["midi_filename"] == "POP909/000/000.mid")
    assert [t.split(" ")[0] for t in row["tracks"]] == ["MELODY", "BRIDGE", "PIANO"]
    assert row["ignored_tracks"][0].startswith("DRUMS (drums")  # drums never taken
    assert row["notes"] == 13
    # the default merges every non-drum track: the same notes as parse_midi gives
    perf = next(p for p in open_source(root).performances if p.midi_filename == "POP909/000/000.mid")
    got = load_notes(out)[perf.split]
    assert any(np.array_equal(a, parse_midi(song(0)).notes) for a in got)


def test_track_selection_by_name_and_program(tmp_path, capsys):
    data = multitrack(
        [
            ("Melody", 0, [(0, 1, 60, 80)]),
            ("Strings", 48, [(0, 1, 50, 80), (1, 1, 52, 80)]),
            ("Piano", 1, [(0, 1, 40, 80)]),
        ],
        drums=[(0, 1, 40, 100)],
    )
    assert len(parse_midi(data).notes) == 4
    by_name = parse_midi(data, TrackSelection.parse("PIANO,melody"))
    assert sorted(by_name.notes[:, 2].astype(int) + 21) == [40, 60]
    by_program = parse_midi(data, TrackSelection.parse(programs="piano"))
    assert sorted(by_program.notes[:, 2].astype(int) + 21) == [40, 60] and len(by_program.ignored) == 2
    strings = parse_midi(data, TrackSelection.parse(programs="48-55"))
    assert len(strings.notes) == 2 and strings.tracks == ["Strings (program 48, 2 notes)"]
    drums_by_program = parse_midi(data, TrackSelection.parse(programs="0"))
    assert sorted(drums_by_program.notes[:, 2].astype(int) + 21) == [60]  # the drum track's program 0 is ignored
    with pytest.raises(ValueError, match="family"):
        TrackSelection.parse(programs="kazoo")
    # a file with no matching track is skipped and reported; nothing left is an error
    root = tmp_path / "c"
    (root / "a").mkdir(parents=True)
    (root / "a" / "x.mid").write_bytes(data)
    (root / "a" / "y.mid").write_bytes(multitrack([("Lead", 80, [(0, 1, 70, 80)])]))
    out = tmp_path / "n.json.gz"
    code, _, err = run(["prepare", str(root), "-o", str(out), "--tracks", "piano", "--workers", "1"], capsys)
    assert code == 0 and "no track matches" in err
    rep = json.loads((tmp_path / "n.report.json").read_text())
    assert [s["midi_filename"] for s in rep["skipped"]] == ["a/y.mid"] and "Lead (program 80" in rep["skipped"][0][
        "reason"
    ]
    code, _, err = run(["prepare", str(root), "-o", str(tmp_path / "m.json.gz"), "--tracks", "TUBA"], capsys)
    last = err.splitlines()[-1]  # after one warning per skipped file
    assert code == 2 and last.startswith("pianogenie prepare: error:") and "no file has a track matching" in last
    assert not (tmp_path / "m.json.gz").exists()


def _archive_members(root: Path) -> list[tuple[str, bytes]]:
    return sorted((p.relative_to(root).as_posix(), p.read_bytes()) for p in root.rglob("*") if p.is_file())


def test_zip_and_tar_read_like_the_folder(tmp_path):
    root = pop_folder(tmp_path / "pop", 4)
    members = _archive_members(root)
    with zipfile.ZipFile(tmp_path / "pop.zip", "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    with tarfile.open(tmp_path / "pop.tar.gz", "w:gz") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    want = {}
    for kind, path in [("folder", root), ("zip", tmp_path / "pop.zip"), ("tar", tmp_path / "pop.tar.gz")]:
        src = open_source(path)
        assert src.kind == kind
        try:
            got = {(p.split, p.midi_filename, p.extras): src.read(p.midi_filename) for p in src.performances}
            prepare(src, tmp_path / f"{kind}.json.gz", workers=1, progress=False)
        finally:
            src.close()
        want = want or got
        assert got == want
    notes = [load_notes(tmp_path / f"{k}.json.gz") for k in ("folder", "zip", "tar")]
    assert all(all(np.array_equal(a, b) for a, b in zip(n[s], notes[0][s])) for n in notes for s in notes[0])


@pytest.mark.parametrize("kind", ["zip", "tar"])
@pytest.mark.parametrize("member", ["../evil.mid", "/abs/evil.mid", "a/../../evil.mid"])
def test_archive_members_outside_are_refused(tmp_path, capsys, kind, member):
    path = tmp_path / f"bad.{'zip' if kind == 'zip' else 'tar'}"
    data = song(1)
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("ok/a.mid", data)
            zf.writestr(zipfile.ZipInfo(member), data)  # ZipInfo keeps the name as given
    else:
        with tarfile.open(path, "w") as tf:
            for name in ("ok/a.mid", member):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    code, _, err = run(["prepare", str(path), "-o", str(tmp_path / "o.json.gz")], capsys)
    assert code == 2 and "outside the archive" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert not (tmp_path.parent / "evil.mid").exists()


def test_bad_inputs_are_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no MIDI here")
    loop = tmp_path / "loop" / "a"
    loop.mkdir(parents=True)
    (loop / "x.mid").write_bytes(song(1))
    (loop / "back").symlink_to(tmp_path / "loop")
    with zipfile.ZipFile(tmp_path / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.mid", song(1))
        zf.writestr("zeros.bin", b"\0" * (3 << 20))
    for args, words in [
        ([str(tmp_path / "empty")], "no MIDI files"),
        ([str(tmp_path / "loop")], "symlink loop"),
        ([str(tmp_path / "bomb.zip"), "--max-archive-gb", "0.001"], "over the 1.02 MB cap"),
        ([str(tmp_path / "nowhere")], "does not exist"),
    ]:
        code, _, err = run(["prepare", *args, "-o", str(tmp_path / "o.json.gz")], capsys)
        assert code == 2 and words in err and len(err.splitlines()) == 1, err
        assert not (tmp_path / "o.json.gz").exists()


def test_bad_files_are_skipped_with_reasons(tmp_path, capsys):
    root = tmp_path / "c"
    (root / "p").mkdir(parents=True)
    (root / "p" / "good.mid").write_bytes(song(1))
    (root / "p" / "empty.mid").write_bytes(b"")
    (root / "p" / "text.MID").write_bytes(b"this is not a MIDI file")
    (root / "p" / "big.midi").write_bytes(song(2) + b"\0" * 200_000)  # over the cap given below
    (root / "p" / "._good.mid").write_bytes(b"AppleDouble")  # hidden: not a performance
    out = tmp_path / "o.json.gz"
    code, _, err = run(
        ["prepare", str(root), "-o", str(out), "--max-file-mb", "0.1", "--workers", "1", "--split-fractions", "1,0,0"],
        capsys,
    )
    assert code == 0, err
    reasons = {s["midi_filename"]: s["reason"] for s in json.loads((tmp_path / "o.report.json").read_text())["skipped"]}
    assert reasons.keys() == {"p/empty.mid", "p/text.MID", "p/big.midi"}
    assert reasons["p/empty.mid"] == "empty file" and "not a readable MIDI" in reasons["p/text.MID"]
    assert "cap" in reasons["p/big.midi"]
    assert len(load_notes(out)["train"]) == 1


def test_maestro_refuses_collection_split_options(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", {"a.midi": ("train", build_midi([(0, 1, 60, 80)]))})
    code, _, err = run(["prepare", str(root), "-o", str(tmp_path / "o.json.gz"), "--split-fractions", "1,0,0"], capsys)
    assert code == 2 and "its metadata gives the splits" in err


# ---------------------------------------------------------------------------------------------
# The notes store


def test_store_round_trips_and_windows_match_the_json(tmp_path, capsys):
    root = pop_folder(tmp_path / "pop", 10)
    store, js = tmp_path / "store", tmp_path / "n.json.gz"
    assert run(["prepare", str(root), "-o", str(store), "--workers", "2"], capsys)[0] == 0
    assert run(["prepare", str(root), "-o", str(js), "--workers", "1"], capsys)[0] == 0
    a, b = load_notes(store), load_notes(js)
    assert isinstance(a["train"], StoreSplit) and isinstance(a["train"].keys, np.memmap)
    assert sorted(a) == sorted(b)
    for s in b:
        assert len(a[s]) == len(b[s]) and all(np.array_equal(x, y) for x, y in zip(a[s], b[s]))
    rep = json.loads((store / "report.json").read_text())
    assert sum(x["performances"] for x in rep["splits"].values()) == 20
    names = [json.loads(line) for line in (store / "train.names.jsonl").read_text().splitlines()]
    assert len(names) == len(a["train"]) and all(n.startswith("POP909/") for n in names)
    na, nb = Notes(a["train"], "train"), Notes(b["train"], "train")
    wa, wb = TrainWindows(na, 8), TrainWindows(nb, 8)
    for seed in range(3):
        x = wa.sample(np.random.default_rng(seed), 5, 1.0, 0.1, 4)
        y = wb.sample(np.random.default_rng(seed), 5, 1.0, 0.1, 4)
        assert all(torch_equal(u, v) for u, v in zip(x._fields()[:4], y._fields()[:4]))
    for protocol in ("all", "first128"):
        assert all(np.array_equal(u, v) for u, v in zip(eval_windows(na, 8, protocol), eval_windows(nb, 8, protocol)))


def torch_equal(u, v) -> bool:
    return u.dtype == v.dtype and bool((u == v).all())


def test_store_is_replaced_only_when_it_is_ours(tmp_path, capsys):
    root = pop_folder(tmp_path / "pop", 3)
    store = tmp_path / "store"
    assert run(["prepare", str(root), "-o", str(store), "--workers", "1"], capsys)[0] == 0
    first = (store / "manifest.json").read_bytes()
    assert run(["prepare", str(root), "-o", str(store), "--workers", "1", "--tracks", "PIANO"], capsys)[0] == 0
    assert (store / "manifest.json").read_bytes() != first  # replaced: fewer notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop", "store"]  # nothing left aside
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    code, _, err = run(["prepare", str(root), "-o", str(mine)], capsys)
    assert code == 2 and "refusing to replace" in err and (mine / "thesis.txt").read_text() == "precious"
    code, _, err = run(["prepare", str(root), "-o", str(root / "POP909" / "store")], capsys)
    assert code == 2 and "inside the input folder" in err
    (store / "train.key.npy").write_bytes(b"\x93NUMPY")  # damaged: one line, not a traceback
    with pytest.raises(UserError, match=r"train\.key\.npy"):
        load_notes(store)


def test_eval_sample_is_fixed_and_seeded():
    perfs = [
        np.column_stack([np.arange(n) * 0.1, np.full(n, 0.1), np.full(n, 40), np.full(n, 64)]).astype(float)
        for n in (50, 300, 7, 1000)
    ]
    notes = Notes(perfs)
    all_s, _all_l = eval_windows(notes, 16)
    assert len(all_s) == 3 + 18 + 1 + 62
    s1, _l1 = eval_windows(notes, 16, sample=20, seed=3)
    s2, _ = eval_windows(notes, 16, sample=20, seed=3)
    s3, _ = eval_windows(notes, 16, sample=20, seed=4)
    assert len(s1) == 20 and np.array_equal(s1, s2) and not np.array_equal(s1, s3)
    assert set(s1) <= set(all_s) and np.all(np.diff(s1) > 0)
    assert np.array_equal(eval_windows(notes, 16, sample=1000)[0], all_s)  # fewer windows than the sample: all


def test_maestro_performances_list_asap_annotations(tmp_path):
    root = write_maestro(
        tmp_path / "m",
        {
            "Bach/x/a.midi": ("train", build_midi([(0, 1, 60, 80)])),
            "Bach/x/b.midi": ("validation", build_midi([(0, 1, 62, 80)])),
        },
    )
    (root / "Bach" / "x" / "a_annotations.txt").write_text("0.5\t0.5\tdb,4/4,0\n")
    src = open_source(root)
    a, b = src.performances
    assert src.read(a.extra("annotations")) == b"0.5\t0.5\tdb,4/4,0\n" and b.extra("annotations") is None


def test_tar_over_the_caps_is_refused(tmp_path, capsys):
    path = tmp_path / "big.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for i in range(3):
            data = song(i) if i < 2 else b"\0" * (2 << 20)  # compresses to almost nothing
            info = tarfile.TarInfo(f"x/{i}.mid" if i < 2 else "x/zeros.bin")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    code, _, err = run(["prepare", str(path), "-o", str(tmp_path / "o.json.gz"), "--max-archive-gb", "0.001"], capsys)
    assert code == 2 and "expands past the 1.02 MB cap" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tar.gz"]
    src = open_source(path)  # within the default caps: both songs, no unpacked files left once closed
    temp = src._temp
    assert len(src.performances) == 2 and temp.is_dir()
    src.close()
    assert not temp.exists()


def test_interrupted_store_leaves_the_previous_one(tmp_path, capsys, monkeypatch):
    from pianogenie import store as store_module

    root = pop_folder(tmp_path / "pop", 3)
    out = tmp_path / "store"
    assert run(["prepare", str(root), "-o", str(out), "--workers", "1"], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_module.StoreWriter, "finish", interrupted)
    src = open_source(root)
    with pytest.raises(KeyboardInterrupt):
        prepare(src, out, workers=1, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop", "store"]


def test_adding_a_file_never_regroups_pieces(tmp_path):
    root = tmp_path / "c"
    for i in range(30):
        d = root / "artist" / f"album{i:02d}"
        d.mkdir(parents=True)
        (d / "s.mid").write_bytes(song(i))
    before = {p.midi_filename: (p.group, p.split) for p in open_source(root).performances}
    assert len({g for g, _ in before.values()}) == 30 and {s for _, s in before.values()} == set(SPLITS)
    (root / "artist" / "intro.mid").write_bytes(song(99))  # a file beside the album folders
    after = {p.midi_filename: (p.group, p.split) for p in open_source(root).performances}
    assert {k: after[k] for k in before} == before and after["artist/intro.mid"][0] == "artist"
    # a versions/ folder (any case) belongs to its parent's piece, whether or not the parent holds MIDI
    for name in ("song/Versions/v1.mid", "lone/versions/v1.mid", "versions/top.mid"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(song(5))
    groups = {p.midi_filename: p.group for p in open_source(root).performances}
    assert groups["song/Versions/v1.mid"] == "song" and groups["lone/versions/v1.mid"] == "lone"
    assert groups["versions/top.mid"] == "versions"


def test_tar_members_of_every_type_count_toward_the_cap(tmp_path, capsys):
    path = tmp_path / "odd.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for i in range(2):
            info = tarfile.TarInfo(f"x/{i}.mid")
            info.size = len(song(i))
            tf.addfile(info, io.BytesIO(song(i)))
        info = tarfile.TarInfo("x/blob")
        info.type = b"Z"  # a type tarfile does not know: its data is streamed through, never extracted
        info.size = 2 << 20
        tf.addfile(info, io.BytesIO(b"\0" * info.size))
    code, _, err = run(["prepare", str(path), "-o", str(tmp_path / "o.json.gz"), "--max-archive-gb", "0.001"], capsys)
    assert code == 2 and "expands past the 1.02 MB cap" in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd.tar.gz"]
