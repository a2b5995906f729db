"""pianogenie.harmony: the condition vocabulary, annotation readers, per-note labels, estimators."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from helpers import MAESTRO_DIR, SHARED

from pianogenie import harmony as h
from pianogenie.util import UserError

POP909_DIR = SHARED / "data" / "pop909" / "POP909"


def notes_of(chords: list[tuple[float, float, list[int]]]) -> np.ndarray:
    """(onset, duration, MIDI pitches) blocks -> (N, 4) notes sorted by (onset, key)."""
    rows = [(t, d, p - 21, 80) for t, d, ps in chords for p in ps]
    return np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)


# --- vocabulary -------------------------------------------------------------------------------


def test_ids_follow_magenta_enums():
    # magenta-js PitchClass: None 0, C 1, ..., D 3 ("setKeySignature(e.g. D=3)"), B 12
    assert h.PITCH_CLASS_NAMES.index("D") + 1 == 3 and len(h.PITCH_CLASS_NAMES) == 12
    # ChordFamily: None 0, Maj 1, Min 2, Aug 3 ("e.g. Aug=3"), Dim 4, Seven 5, Maj7 6, Min7 7, Min7b5 8
    assert h.CHORD_FAMILIES.index("augmented") == 3 and h.CHORD_FAMILIES.index("half-diminished") == 8
    assert h.FAMILY_INTERVALS[8] == (0, 3, 6, 10) and h.FAMILY_INTERVALS[5] == (0, 4, 7, 10)
    assert (h.NUM_KEYSIGS, h.NUM_CHORD_ROOTS, h.NUM_CHORD_FAMILIES, h.NUM_STYLES) == (13, 13, 9, 3)
    assert h.style_id("Pop") == 2 and h.style_id("classical") == 1 and h.style_id("none") == 0
    with pytest.raises(UserError, match="unknown style"):
        h.style_id("jazz")


def test_magenta_one_hot_none_is_zeros():
    x = h.magenta_one_hot(np.array([0, 1, 3, 12]), 12)
    assert x.shape == (4, 12) and x.dtype == np.float32
    assert x[0].sum() == 0 and x[1, 0] == 1 and x[2, 2] == 1 and x[3, 11] == 1 and x.sum() == 3
    with pytest.raises(ValueError):
        h.magenta_one_hot(9, 8)


def test_keysig_from_sharps_is_the_major_key():
    assert h.keysig_from_sharps(0) == 1  # C major / A minor
    assert h.keysig_from_sharps(1) == 8  # G
    assert h.keysig_from_sharps(-3) == 4  # Eb major / C minor
    assert h.keysig_from_sharps(6) == h.keysig_from_sharps(-6) == 7  # F# = Gb
    assert h.keysig_from_sharps(7) == h.keysig_from_sharps(-5) == 2  # C# = Db
    with pytest.raises(ValueError):
        h.keysig_from_sharps(8)
    assert h.keysig_pitch_classes(8) == {7, 9, 11, 0, 2, 4, 6}
    assert h.chord_pitch_classes(10, 7) == {9, 0, 4, 7}  # A minor seventh
    assert h.chord_pitch_classes(0, 1) == frozenset()


# --- labels -----------------------------------------------------------------------------------

# Every chord quality in POP909's chord_midi.txt files, with its family (inversions keep the root).
POP909_QUALITIES = {
    "maj": 1,
    "maj/3": 1,
    "maj/5": 1,
    "min": 2,
    "min/b3": 2,
    "min/5": 2,
    "aug": 3,
    "dim": 4,
    "7": 5,
    "7/3": 5,
    "7/5": 5,
    "7/b7": 5,
    "maj7": 6,
    "maj7/3": 6,
    "maj7/5": 6,
    "maj7/7": 6,
    "min7": 7,
    "min7/5": 7,
    "min7/b7": 7,
    "hdim7": 8,
    "maj6": 1,
    "min6": 2,
    "minmaj7": 2,
    "dim7": 4,  # a family's tones plus one: that family
    "sus2": 0,
    "sus4": 0,
    "sus4(b7)": 0,  # no third: no family (the root is kept)
}


@pytest.mark.parametrize("quality,family", sorted(POP909_QUALITIES.items()))
def test_pop909_qualities(quality, family):
    assert h.parse_chord_label(f"Eb:{quality}") == (4, family)


def test_chord_labels():
    assert h.parse_chord_label("N") == (0, 0) and h.parse_chord_label("X") == (0, 0)
    assert h.parse_chord_label("C#:min7") == h.parse_chord_label("Db:min7") == (2, 7)
    assert h.parse_chord_label("B") == (12, 1)  # Harte: a bare root is major
    assert h.parse_chord_label("G:9") == (8, 5) and h.parse_chord_label("F:maj9") == (6, 6)
    assert h.parse_chord_label("A:min9") == (10, 7) and h.parse_chord_label("C:(1,3,5)") == (1, 1)
    assert h.parse_chord_label("C:maj(*3)") == (1, 0)  # third omitted: no family
    assert h.parse_chord_label("C:sus4(3)") == (1, 1)
    for bad in ("H:maj", "C:foo", "C:maj(9", "C:maj/x", "C:", ""):
        with pytest.raises(ValueError):
            h.parse_chord_label(bad)


def test_key_labels():
    assert h.parse_key_label("Gb:maj") == h.parse_key_label("F#:maj") == 7
    assert h.parse_key_label("A:min") == h.parse_key_label("C:maj") == 1  # relative major
    assert h.parse_key_label("Ab:min") == 12  # B major's signature
    with pytest.raises(ValueError):
        h.parse_key_label("C:dorian")


# --- readers ----------------------------------------------------------------------------------


def test_read_asap(tmp_path):
    p = tmp_path / "x_annotations.txt"
    p.write_text("0.5\t0.5\tb,,-3\n1.0\t1.0\tdb,3/4\n1.5\t1.5\tbR\n2.0\t2.0\tdb,,2\n2.5\t2.5\tb\n")
    a = h.read_asap_annotations(p)
    assert a.beats.tolist() == [0.5, 1.0, 1.5, 2.0, 2.5] and a.downbeats.tolist() == [1.0, 2.0]
    assert a.keysig.value.tolist() == [4, 3]  # Eb, then D
    assert a.keysig.start.tolist() == [0.0, 2.0] and a.keysig.end.tolist() == [2.0, math.inf]
    assert a.keysig.at(np.array([0.0, 1.99, 2.0, 1e4])).tolist() == [4, 4, 3, 3]


@pytest.mark.parametrize(
    "text,message",
    [
        ("0.5\t0.5\tb\n", "no key signature"),
        ("0.5\t0.5\tdb,4/4,9\n", r":1: key signature of 9 sharps"),
        ("0.5\t0.5\tdb,4/4,0\n1.0 1.0 b\n", r":2: expected 3 tab-separated"),
        ("0.5\t0.5\tdb,4/4,0\nx\t1\tb\n", r":2: bad time 'x'"),
        ("0.5\t0.5\tdb,4/4,0\n0.2\t0.2\tb\n", r":2: beat at 0.2 s comes before"),
        ("0.5\t0.5\tdb,4/4,0\nnan\tnan\tb\n", r":2: time nan outside"),
        ("0.5\t0.5\tq,4/4,0\n", r":1: bad beat label 'q,4/4,0'"),
    ],
)
def test_read_asap_errors(tmp_path, text, message):
    p = tmp_path / "a_annotations.txt"
    p.write_text(text)
    with pytest.raises(UserError, match=message) as e:
        h.read_asap_annotations(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_read_chords_keys_beats(tmp_path):
    (tmp_path / "chord_midi.txt").write_text("0.1\t1.0\tN\n1.0\t2.0\tA:min7\n2.5\t3.0\tC:maj/3\n")
    root, fam = h.read_chord_file(tmp_path / "chord_midi.txt")
    assert root.value.tolist() == [0, 10, 1] and fam.value.tolist() == [0, 7, 1]
    t = np.array([0.0, 0.5, 1.0, 2.2, 2.5, 3.0])
    assert root.at(t).tolist() == [0, 0, 10, 0, 1, 0]  # gaps and the end: none
    (tmp_path / "key_audio.txt").write_text("1.0\t10.0\tGb:maj\n10.0\t20.0\tE:min\n")
    keys = h.read_key_file(tmp_path / "key_audio.txt")
    assert keys.at(np.array([0.0, 9.9, 10.0, 99.0])).tolist() == [7, 7, 8, 8]
    (tmp_path / "beat_midi.txt").write_text("0.05 1.0 1.0\n0.72 0.0 0.0\n")
    assert h.read_beat_file(tmp_path / "beat_midi.txt").tolist() == [0.05, 0.72]


@pytest.mark.parametrize(
    "text,message",
    [
        ("0\t1\tC:maj\n2\t1\tC:maj\n", r":2: ends \(1.0 s\) before it starts"),
        ("0\t2\tC:maj\n1\t3\tG:maj\n", r":2: starts at 1.0 s, before the previous chord ends"),
        ("0\t1\tC:wobbly\n", r":1: chord 'C:wobbly': unknown chord quality"),
        ("0\t1\n", r":1: expected start, end and chord"),
    ],
)
def test_read_chord_errors(tmp_path, text, message):
    p = tmp_path / "chord_midi.txt"
    p.write_text(text)
    with pytest.raises(UserError, match=message):
        h.read_chord_file(p)


def test_reader_bounds(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="annotation file not found"):
        h.read_key_file(tmp_path / "missing.txt")
    with pytest.raises(UserError, match="is a folder"):
        h.read_key_file(tmp_path)
    p = tmp_path / "key_audio.txt"
    p.write_bytes(b"\xff\xfe0\t1\tC:maj\n")
    with pytest.raises(UserError, match="not UTF-8"):
        h.read_key_file(p)
    p.write_text("0\t1\tC:maj\n" * 20)
    monkeypatch.setattr(h, "MAX_LABEL_LINES", 10)
    with pytest.raises(UserError, match="20 lines, more than the 10"):
        h.read_chord_file(p)
    monkeypatch.setattr(h, "MAX_LABEL_FILE_BYTES", 100)
    with pytest.raises(UserError, match="more than the 100"):
        h.read_chord_file(p)


# --- per-note labels ----------------------------------------------------------------------------


def test_note_labels_at_onset():
    notes = notes_of([(0.0, 0.9, [60]), (0.99, 0.5, [64]), (1.0, 3.0, [67]), (5.0, 1.0, [72])])
    root = h.Segments(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([1, 8]))
    fam = h.Segments(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([1, 5]))
    keys = h.Segments(np.array([0.0]), np.array([math.inf]), np.array([1]))
    k, r, f = h.note_labels(notes, keys, root, fam)
    # the note that starts at 0.99 s takes the first chord even though it sounds into the second
    assert k.tolist() == [1, 1, 1, 1] and r.tolist() == [1, 1, 8, 0] and f.tolist() == [1, 1, 5, 0]
    k, r, f = h.note_labels(notes)
    assert k.tolist() == r.tolist() == f.tolist() == [0, 0, 0, 0] and k.dtype == np.int64
    assert h.note_labels(np.zeros((0, 4)), keys)[0].shape == (0,)


# --- estimators ---------------------------------------------------------------------------------


def test_pitch_class_profiles_split_notes_over_windows():
    notes = notes_of([(0.25, 1.0, [60]), (1.0, 0.5, [61, 73])])
    x = h.pitch_class_profiles(notes, np.array([0.0, 0.5, 1.0, 2.0]))
    assert np.allclose(x[:, 0], [0.25, 0.5, 0.25]) and np.allclose(x[:, 1], [0, 0, 1.0])
    assert x.sum() == pytest.approx(2.0)


def test_estimate_chords_per_window_and_beat():
    # C major, A minor 7, G7, F major seventh, B half-diminished; one second each, then silence
    blocks = [[48, 60, 64, 67], [45, 57, 60, 64, 67], [43, 55, 59, 62, 65], [41, 57, 60, 64], [47, 50, 53, 57]]
    notes = notes_of([(float(i), 0.95, ps) for i, ps in enumerate(blocks)] + [(7.0, 0.5, [60, 64, 68])])
    root, fam = h.estimate_chords(notes, window_s=1.0)
    assert root.value.tolist()[:8] == [1, 10, 8, 6, 12, 0, 0, 1]
    assert fam.value.tolist()[:8] == [1, 7, 5, 6, 8, 0, 0, 3]  # the last: C augmented
    root_b, fam_b = h.estimate_chords(notes, beats=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert root_b.value.tolist() == [1, 10, 8, 6, 12, 1] and fam_b.value[-1] == 3
    assert root_b.start[0] == 0.0 and root_b.end[-1] == pytest.approx(7.5)
    r, f = h.estimate_chords(np.zeros((0, 4)))
    assert len(r.value) == len(f.value) == 0


def scale_run(tonic_midi: int, mode: str, repeats: int = 4) -> np.ndarray:
    steps = {"major": (0, 2, 4, 5, 7, 9, 11, 12), "minor": (0, 2, 3, 5, 7, 8, 11, 12)}[mode]
    triad = (0, 4, 7) if mode == "major" else (0, 3, 7)
    blocks, t = [], 0.0
    for _ in range(repeats):
        blocks.append((t, 1.0, [tonic_midi + i for i in triad]))
        t += 1.0
        for s in steps:
            blocks.append((t, 0.25, [tonic_midi + s]))
            t += 0.25
        blocks.append((t, 0.5, [tonic_midi + 7, tonic_midi + 11]))
        t += 0.5
        blocks.append((t, 1.0, [tonic_midi + i for i in triad]))
        t += 1.0
    return notes_of(blocks)


@pytest.mark.parametrize("method", h.KEY_METHODS)
def test_estimate_key_finds_the_key_signature(method):
    assert h.estimate_key(scale_run(62, "major"), method) == 3  # D major: D
    assert h.estimate_key(scale_run(57, "minor"), method) == 1  # A (harmonic) minor: C's signature
    assert h.estimate_key(scale_run(63, "major"), method, weighting="count") == 4  # Eb
    assert h.estimate_key(np.zeros((0, 4)), method) == 0


def test_estimate_keys_follows_a_modulation():
    c = scale_run(60, "major", repeats=8)
    e = scale_run(64, "major", repeats=8)
    e[:, 0] += c[:, 0].max() + 1.0
    notes = np.concatenate([c, e])
    segs = h.estimate_keys(notes, window_s=12.0)
    labels, _, _ = h.note_labels(notes, segs)
    assert labels[0] == 1 and labels[-1] == 5  # C, then E
    assert np.mean(labels == np.where(np.arange(len(notes)) < len(c), 1, 5)) >= 0.9
    assert segs.end[-1] == math.inf
    with pytest.raises(ValueError):
        h.estimate_keys(notes, window_s=0)
    with pytest.raises(ValueError, match="unknown key method"):
        h.estimate_key(notes, "nope")


# --- real data (skips without ../shared) ----------------------------------------------------------


def _need(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared data not available: {path} is absent")
    return path


@pytest.mark.slow
def test_every_asap_annotation_reads():
    root = _need(MAESTRO_DIR)
    files = sorted(root.rglob("*_annotations.txt"))
    assert len(files) == 939
    for f in files:
        a = h.read_asap_annotations(f)
        assert len(a.beats) > 0 and a.keysig.value.min() >= 1 and a.keysig.value.max() <= 12


@pytest.mark.slow
def test_every_pop909_label_reads():
    root = _need(POP909_DIR)
    songs = sorted(p for p in root.iterdir() if p.is_dir())
    assert len(songs) == 818
    qualities = set()
    for song in songs:
        r, f = h.read_chord_file(song / "chord_midi.txt")
        assert len(r.value) > 0 and r.value.max() <= 12 and f.value.max() <= 8
        assert h.read_key_file(song / "key_audio.txt").value.min() >= 1
        assert len(h.read_beat_file(song / "beat_midi.txt")) > 0
        for line in (song / "chord_midi.txt").read_text().splitlines():
            label = line.split("\t")[2]
            if ":" in label:
                qualities.add(label.split(":", 1)[1])
    assert qualities == set(POP909_QUALITIES)  # the table above covers every quality there
