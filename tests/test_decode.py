"""`pianogenie decode`: input formats, the MIDI written, contour with the reference model, bad input."""

from __future__ import annotations

import json

import mido
import numpy as np
import pretty_midi
import pytest

from pianogenie import genie as genie_mod
from pianogenie.cli import main
from pianogenie.constants import LOWEST_PITCH
from pianogenie.decode import DEFAULT_VELOCITY, Press, decode_performance, performance_midi, read_presses
from pianogenie.genie import PianoGenie
from pianogenie.outputs import midi_text_event


def write_json(path, rows):
    path.write_text(json.dumps(rows))
    return path


def write_midi_input(path, notes):
    """notes: (pitch, start, end, velocity) -> a controller-style MIDI file written with mido: two tracks
    (so tracks are merged), channel 10 for odd notes, note-off as note-on velocity 0, 120 bpm."""
    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    for track_no in range(2):
        events = []
        for i, (pitch, start, end, vel) in enumerate(notes):
            if i % 2 == track_no:
                ch = 9 if track_no else 0
                events += [
                    (round(start * 960), 1, mido.Message("note_on", channel=ch, note=pitch, velocity=vel)),
                    (
                        round(end * 960),
                        2 if end == start else 0,
                        mido.Message("note_on", channel=ch, note=pitch, velocity=0),
                    ),
                ]
        track, now = mido.MidiTrack(), 0
        # at one tick: earlier notes' note-offs, then note-ons, then zero-length notes' note-offs
        for tick, _, msg in sorted(events, key=lambda e: e[:2]):
            track.append(msg.copy(time=tick - now))
            now = tick
        mf.tracks.append(track)
    mf.save(str(path))
    return path


def notes_of(path):
    midi = pretty_midi.PrettyMIDI(str(path))
    assert len(midi.instruments) == 1 and midi.instruments[0].program == 0  # one acoustic piano track
    return sorted(midi.instruments[0].notes, key=lambda n: (n.start, n.pitch))


def decode(*argv):
    return main(["decode", *map(str, argv)])


def test_json_decode_writes_one_note_per_press(tmp_path, ckpt, capsys):
    rows = [{"time": 0.5 + 0.2 * i, "button": i % 8, "duration": 0.1 + 0.01 * i} for i in range(24)]
    rows[5]["velocity"] = 100
    src, out = write_json(tmp_path / "perf.json", rows), tmp_path / "out.mid"
    assert decode(src, "-o", out, "--model", ckpt, "--seed", 3) == 0
    assert "24 notes" in capsys.readouterr().out
    notes = notes_of(out)
    assert len(notes) == len(rows)
    np.testing.assert_allclose([n.start for n in notes], [r["time"] for r in rows], atol=1e-3)
    np.testing.assert_allclose([n.end - n.start for n in notes], [r["duration"] for r in rows], atol=2e-3)
    assert [n.velocity for n in notes] == [100 if i == 5 else DEFAULT_VELOCITY for i in range(24)]
    # the keys are those of the Python session with the same seed
    genie = PianoGenie.load(ckpt, seed=3)
    keys = decode_performance(read_presses(src), genie, 0.25)
    assert [n.pitch for n in notes] == (keys + LOWEST_PITCH).tolist()
    # same seed -> same file; another seed -> (almost surely) other keys
    out2, out3 = tmp_path / "again.mid", tmp_path / "other.mid"
    assert decode(src, "-o", out2, "--model", ckpt, "--seed", 3) == 0
    assert out2.read_bytes() == out.read_bytes()
    assert decode(src, "-o", out3, "--model", ckpt, "--seed", 4, "--temperature", 1) == 0
    assert [n.pitch for n in notes_of(out3)] != [n.pitch for n in notes]


def test_csv_rows_with_and_without_header(tmp_path, ckpt):
    plain = tmp_path / "a.csv"
    plain.write_text("# time,button\n0,0\n0.25,3,0.5\n\n0.5,7\n")
    header = tmp_path / "b.csv"
    header.write_text("button,time,velocity\n0,0,90\n3,0.25,91\n7,0.5,92\n")
    a, b = read_presses(plain, duration=0.3), read_presses(header)
    assert [(p.time, p.button, p.duration) for p in a] == [(0.0, 0, 0.3), (0.25, 3, 0.5), (0.5, 7, 0.3)]
    assert [(p.time, p.button, p.velocity) for p in b] == [(0.0, 0, 90), (0.25, 3, 91), (0.5, 7, 92)]
    out = tmp_path / "out.mid"
    assert decode(plain, "-o", out, "--model", ckpt, "--seed", 0, "--temperature", 0) == 0
    assert len(notes_of(out)) == 3


def test_midi_input_buttons_by_pitch_order_and_velocity(tmp_path, ckpt):
    notes = [(60, 0.0, 0.3, 50), (64, 0.5, 0.6, 60), (62, 1.0, 1.2, 70), (60, 1.5, 1.5, 80)]  # last: zero length
    src = write_midi_input(tmp_path / "ctrl.mid", notes)
    presses = read_presses(src)
    assert [p.button for p in presses] == [0, 2, 1, 0]
    assert [p.velocity for p in presses] == [50, 60, 70, 80]
    out = tmp_path / "out.mid"
    assert decode(src, "-o", out, "--model", ckpt, "--temperature", 0) == 0
    written = notes_of(out)
    assert [n.velocity for n in written] == [50, 60, 70, 80]
    assert all(n.end > n.start for n in written)


def test_more_than_eight_pitches_fold_by_rank_keeping_order(tmp_path, capsys):
    pitches = [48, 50, 52, 53, 55, 57, 59, 60, 62, 64, 65, 67]  # 12 distinct
    src = write_midi_input(tmp_path / "wide.mid", [(p, 0.1 * i, 0.1 * i + 0.05, 64) for i, p in enumerate(pitches)])
    heard: list[str] = []
    buttons = [p.button for p in read_presses(src, warn=heard.append)]
    assert len(heard) == 1 and "12 distinct pitches" in heard[0]
    assert capsys.readouterr().err == ""  # the library tells its caller, and prints nothing itself
    assert buttons[0] == 0 and buttons[-1] == 7 and set(buttons) == set(range(8))
    assert buttons == sorted(buttons)  # ascending pitches -> non-decreasing buttons


def test_restruck_key_cuts_the_sounding_note():
    presses = [Press(0.0, 0, 1.0, 80), Press(0.5, 1, 1.0, 80), Press(0.5, 2, 1.0, 90)]
    midi = performance_midi(presses, [40, 40, 40])
    notes = midi.instruments[0].notes
    assert [(n.start, n.end, n.velocity) for n in notes] == [(0.0, 0.5, 80), (0.5, 1.5, 90)]


def test_contour_with_reference_model(reference_dir, tmp_path, capsys):
    """Temperature 0: moving to a higher (lower) button mostly moves to a higher-or-equal (lower-or-equal) key."""
    rng = np.random.default_rng(0)
    n = 200
    buttons = np.clip(np.cumsum(rng.choice([-2, -1, 1, 2], n)) % 15 - 7, -7, 7)  # a zig-zag walk
    buttons = np.abs(buttons)  # 0..7, rising and falling runs
    times = np.cumsum(rng.uniform(0.08, 0.4, n))
    src = write_json(tmp_path / "perf.json", [[float(t), int(b)] for t, b in zip(times, buttons)])
    out = tmp_path / "out.mid"
    assert decode(src, "-o", out, "--model", reference_dir / "pytorch" / "model.pt", "--temperature", 0) == 0
    notes = notes_of(out)
    assert len(notes) <= n
    keys = decode_performance(read_presses(src), PianoGenie.load(reference_dir / "pytorch" / "model.pt"), 0)
    db, dk = np.diff(buttons), np.diff(keys)
    moves = db != 0
    ok = (np.sign(db[moves]) * dk[moves]) >= 0
    ratio = ok.mean()
    with capsys.disabled():
        print(
            f"\n[contour] reference model, T=0: {ok.sum()}/{moves.sum()} button moves followed in key "
            f"direction (ratio {ratio:.3f})"
        )
    assert ratio >= 0.8


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("range.json", [[0, 0], [1, 8]], "out of range"),
        ("frac.json", [[0, 1.5]], "out of range"),
        ("neg.json", [[-1, 0], [1, 1]], "negative time"),
        ("order.json", [[0, 0], [2, 1], [1, 2]], "non-decreasing"),
        ("empty.json", [], "no button presses"),
        ("nan.csv", "0,1\nnan,2\n", "finite"),
        ("empty.csv", "# nothing\n\n", "no button presses"),
        ("text.csv", "0,1\nzero,2\n", "not a number"),
        ("bad.json", "{not json", "not valid JSON"),
        ("dur.json", [[0, 1, 0]], "duration"),
        ("garbage.mid", b"MThd\x00\x00garbage", "cannot read MIDI"),
        ("binary.bin", b"\xff\xfe\x00\x81" * 10, "neither a MIDI file"),
    ],
)
def test_bad_input_is_a_clear_error_without_output(tmp_path, ckpt, capsys, name, content, message):
    src = tmp_path / name
    if isinstance(content, bytes):
        src.write_bytes(content)
    elif isinstance(content, str):
        src.write_text(content)
    else:
        write_json(src, content)
    out = tmp_path / "out" / "out.mid"
    assert decode(src, "-o", out, "--model", ckpt) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie decode: error:") and message in err and "Traceback" not in err
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no OUT, no temp file


def test_midi_without_notes_and_missing_file(tmp_path, ckpt, capsys):
    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    out = tmp_path / "out.mid"
    previous = b"MThd previous" + midi_text_event("decode")  # an earlier result must survive a failed decode
    out.write_bytes(previous)
    assert decode(empty, "-o", out, "--model", ckpt) == 2
    assert "no notes" in capsys.readouterr().err
    assert decode(tmp_path / "absent.json", "-o", out, "--model", ckpt) == 2
    assert "not found" in capsys.readouterr().err
    assert decode(empty, "-o", out, "--model", tmp_path / "nope.pt") == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert out.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.mid", "out.mid"]


def test_bad_options(tmp_path, ckpt, capsys):
    src = write_json(tmp_path / "p.json", [[0, 1]])
    for opts, msg in [
        (["--temperature", "-1"], "--temperature"),
        (["--duration", "0"], "--duration"),
        (["--velocity", "0"], "--velocity"),
    ]:
        assert decode(src, "-o", tmp_path / "o.mid", "--model", ckpt, *opts) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "o.mid").exists()


def test_without_model_and_none_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(genie_mod, "DEFAULT_MODEL", tmp_path / "pretrained" / "model.pt")
    src = write_json(tmp_path / "p.json", [[0, 1]])
    assert decode(src, "-o", tmp_path / "o.mid") == 2
    err = capsys.readouterr().err
    assert "no shipped model" in err and "--model" in err
    assert not (tmp_path / "o.mid").exists()


def test_output_that_is_the_input_is_refused(tmp_path, ckpt, capsys):
    src = tmp_path / "in.csv"
    src.write_text("0,1\n0.5,2\n")
    link = tmp_path / "link.mid"
    link.symlink_to(src)
    for out in [src, link]:
        assert decode(src, "-o", out, "--model", ckpt) == 2
        err = capsys.readouterr().err
        assert "is also the input" in err and len(err.splitlines()) == 1
    assert src.read_text() == "0,1\n0.5,2\n"
    notes = tmp_path / "notes.txt"
    notes.write_text("my text")  # not a MIDI file: decode did not write it
    assert decode(src, "-o", notes, "--model", ckpt) == 2
    assert "refusing to overwrite" in capsys.readouterr().err and notes.read_text() == "my text"


@pytest.mark.parametrize("rows", [[[0, 1], [1e12, 2]], [[0, 1], [1e308, 2]], [[0, 1, 1e9]], [[0, 1], [3599, 2, 2]]])
def test_times_too_large_for_midi_are_refused(tmp_path, ckpt, capsys, rows):
    src = write_json(tmp_path / "p.json", rows)
    assert decode(src, "-o", tmp_path / "o.mid", "--model", ckpt) == 2
    err = capsys.readouterr().err
    assert "must end within 3600 s" in err and len(err.splitlines()) == 1 and not (tmp_path / "o.mid").exists()


def test_longest_allowed_performance_reads_back(tmp_path, ckpt):
    src = write_json(tmp_path / "p.json", [[0, 1], [3500, 2, 100]])
    assert decode(src, "-o", tmp_path / "o.mid", "--model", ckpt, "--seed", "1") == 0
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "o.mid")).instruments[0].notes
    assert len(notes) == 2 and abs(notes[1].start - 3500) < 1e-3


def test_hostile_midi_inputs_name_the_problem(tmp_path, ckpt, capsys):
    good = tmp_path / "g.mid"
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(80, 60 + i, i * 0.5, i * 0.5 + 0.4) for i in range(4)]
    midi.instruments.append(inst)
    midi.write(str(good))
    raw = good.read_bytes()
    cases = {
        "zero_tpq.mid": (raw[:12] + b"\x00\x00" + raw[14:], "0 ticks per beat"),
        "truncated.mid": (raw[: len(raw) - 20], "truncated"),
    }
    for name, (data, words) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert decode(tmp_path / name, "-o", tmp_path / "o.mid", "--model", ckpt) == 2
        err = capsys.readouterr().err
        assert words in err and str(tmp_path / name) in err and len(err.splitlines()) == 1, err


def test_negative_seed_is_one_line(tmp_path, ckpt, capsys):
    src = write_json(tmp_path / "p.json", [[0, 1]])
    assert decode(src, "-o", tmp_path / "o.mid", "--model", ckpt, "--seed", "-1") == 2
    assert "--seed must be an integer in 0.." in capsys.readouterr().err


def test_model_by_shipped_name_plays_that_genie(tmp_path, capsys, monkeypatch):
    rows = [{"time": 0.3 * i, "button": (3 * i) % 8} for i in range(32)]
    src = write_json(tmp_path / "perf.json", rows)
    pitches = {}
    for name in ("classical", "pop"):
        out = tmp_path / f"{name}.mid"
        assert decode(src, "-o", out, "--model", name, "--temperature", 0) == 0
        pitches[name] = [n.pitch for n in notes_of(out)]
    # each name is that genie's own model.pt: the same keys as loading the file, and the two differ
    for name, path in [("classical", genie_mod.DEFAULT_MODEL), ("pop", genie_mod.SHIPPED_GENIES["pop"] / "model.pt")]:
        keys = decode_performance(read_presses(src), PianoGenie.load(path, seed=0), 0.0)
        assert pitches[name] == (keys + LOWEST_PITCH).tolist(), name
    assert pitches["pop"] != pitches["classical"]
    capsys.readouterr()
    # a file or folder of that name here wins over the shipped genie; an unknown name is one line
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pop").mkdir()
    assert decode(src, "-o", tmp_path / "x.mid", "--model", "pop") == 2
    assert "pop" in capsys.readouterr().err
    assert decode(src, "-o", tmp_path / "x.mid", "--model", "jazz") == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie decode: error:") and len(err.splitlines()) == 1
    monkeypatch.setattr(genie_mod, "SHIPPED_GENIES", {**genie_mod.SHIPPED_GENIES, "pop": tmp_path / "gone"})
    (tmp_path / "pop").rmdir()
    assert decode(src, "-o", tmp_path / "x.mid", "--model", "pop") == 2
    assert "the shipped pop genie is missing" in capsys.readouterr().err
