"""MIDI parsing (pianogenie.midi): notes, keys and drops as pretty_midi reads them, tempo changes, bad files."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from helpers import GOOD_A, assert_same_notes, build_midi, pretty_reference

from pianogenie.midi import parse_midi

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
        [
            (0, "note_on", 0, 60, 80),
            (100, "note_on", 0, 60, 90),
            (200, "note_off", 0, 60, 0),
            (300, "note_off", 0, 60, 0),
        ],
        # overlapping notes ending together
        [
            (0, "note_on", 0, 60, 80),
            (100, "note_on", 0, 60, 90),
            (200, "note_off", 0, 60, 0),
            (200, "note_off", 0, 60, 0),
        ],
        # re-strike on the tick of the note-off, either order
        [
            (0, "note_on", 0, 60, 80),
            (100, "note_on", 0, 60, 90),
            (100, "note_off", 0, 60, 0),
            (200, "note_off", 0, 60, 0),
        ],
        [
            (0, "note_on", 0, 60, 80),
            (100, "note_off", 0, 60, 0),
            (100, "note_on", 0, 60, 90),
            (200, "note_off", 0, 60, 0),
        ],
        # zero-length note, and two note-ons on one tick closed on that tick
        [(0, "note_on", 0, 60, 80), (0, "note_off", 0, 60, 0), (10, "note_on", 0, 62, 80), (20, "note_off", 0, 62, 0)],
        [
            (0, "note_on", 0, 60, 80),
            (0, "note_on", 0, 60, 81),
            (0, "note_off", 0, 60, 0),
            (50, "note_off", 0, 60, 0),
            (60, "note_on", 0, 64, 80),
            (90, "note_off", 0, 64, 0),
        ],
        # the same pitch on two channels is two instruments
        [
            (0, "note_on", 0, 60, 80),
            (50, "note_on", 1, 60, 70),
            (100, "note_off", 0, 60, 0),
            (200, "note_off", 1, 60, 0),
        ],
        # spurious note-off, and a note never switched off
        [(0, "note_off", 0, 61, 0), (10, "note_on", 0, 61, 80), (30, "note_off", 0, 61, 0), (40, "note_on", 0, 70, 80)],
    ],
)
def test_parse_midi_pairs_notes_like_pretty_midi(events):
    midi = build_midi(events=events)
    assert_same_notes(parse_midi(midi).notes, pretty_reference(midi), tol=1e-6)


def test_parse_midi_rejects_non_midi():
    for bad in (b"", b"not a midi file at all", build_midi(GOOD_A)[:30]):
        with pytest.raises((RuntimeError, ValueError)):  # symusic's, or ours
            parse_midi(bad)


REAL_FILES = [
    # overlapping same-pitch notes, zero-length notes, and ordinary files from several sources
    "Liszt/Hungarian_Rhapsodies/6/LiA09M.midi",
    "Chopin/Etudes_op_10/8/Benabdallah02.midi",
    "Chopin/Sonata_3/2nd/SCHU09.midi",
    "Beethoven/Piano_Sonatas/32-1/MORET01.midi",
    "Balakirev/Islamey/Cho05.midi",
]


@pytest.mark.slow
def test_symusic_notes_equal_pretty_midi_on_real_files(maestro_dir):
    with open(maestro_dir / "maestro-v3.0.0.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    names = [n for n in REAL_FILES if (maestro_dir / n).exists()]
    names += [r["midi_filename"] for r in rows[:: max(1, len(rows) // 8)]]  # spread over the dataset
    for name in names:
        midi = (maestro_dir / name).read_bytes()
        parsed = parse_midi(midi)
        # the criterion is 1e-4 s; we match to the microsecond we round to
        assert_same_notes(parsed.notes, pretty_reference(midi), tol=1e-6)
        assert len(parsed.notes) > 100, name
