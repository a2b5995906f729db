"""Parsing a MIDI file into notes: `parse_midi(data, tracks) -> ParsedMidi`, and which tracks count.

A performance is an `(N, 4)` array of notes `(t, d, k, v)`: onset and duration in seconds, key
`k = pitch - 21` in 0..87 and velocity 1..127, sorted by (onset, key). They are the notes
pretty_midi gives (all non-drum instruments merged, or those a `TrackSelection` takes), obtained
much faster with symusic: see `parse_midi` for how its note pairing is made to agree with pretty_midi's.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import symusic

from pianogenie.constants import HIGHEST_PITCH, LOWEST_PITCH, NUM_KEYS

# General MIDI program families (programs numbered 0..127, as pretty_midi and symusic number them)
GM_FAMILIES = (
    "piano",
    "chromatic-percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth-lead",
    "synth-pad",
    "synth-effects",
    "ethnic",
    "percussive",
    "sound-effects",
)


@dataclass(frozen=True)
class TrackSelection:
    """Which tracks of a file are the performance: drum tracks never; with neither names nor
    programs given every other track (merged); else those whose name (case-insensitive) or
    General MIDI program is listed."""

    names: frozenset = frozenset()  # upper-case track names
    programs: frozenset = frozenset()  # 0..127

    @classmethod
    def parse(cls, names: str | None = None, programs: str | None = None) -> TrackSelection:
        """From `--tracks PIANO,MELODY` and `--programs piano,40-47,73`; ValueError says what is wrong."""
        picked_names = frozenset(n.strip().upper() for n in (names or "").split(",") if n.strip())
        if names is not None and not picked_names:
            raise ValueError("--tracks needs at least one track name (comma-separated)")
        picked: set[int] = set()
        for token in (programs or "").split(","):
            token = token.strip().lower()
            if not token:
                continue
            if token in GM_FAMILIES:
                first = 8 * GM_FAMILIES.index(token)
                picked.update(range(first, first + 8))
                continue
            lo, _, hi = token.partition("-")
            try:
                lo_i, hi_i = int(lo), int(hi or lo)
            except ValueError:
                raise ValueError(
                    f"--programs: {token!r} is neither a program number 0..127, a range like 0-7, "
                    f"nor a family ({', '.join(GM_FAMILIES)})"
                ) from None
            if not 0 <= lo_i <= hi_i <= 127:
                raise ValueError(f"--programs: {token!r} is outside 0..127")
            picked.update(range(lo_i, hi_i + 1))
        if programs is not None and not picked:
            raise ValueError("--programs needs at least one program or family")
        return cls(picked_names, frozenset(picked))

    @property
    def everything(self) -> bool:
        return not self.names and not self.programs

    def takes(self, name: str, program: int, is_drum: bool) -> bool:
        if is_drum:
            return False
        return self.everything or name.strip().upper() in self.names or program in self.programs

    def describe(self) -> str:
        if self.everything:
            return "all non-drum tracks"
        parts = [f"tracks named {','.join(sorted(self.names))}"] if self.names else []
        parts += [f"programs {_ranges(sorted(self.programs))}"] if self.programs else []
        return " or ".join(parts) + " (never drums)"


def _ranges(xs: list[int]) -> str:
    out, i = [], 0
    while i < len(xs):
        j = i
        while j + 1 < len(xs) and xs[j + 1] == xs[j] + 1:
            j += 1
        out.append(str(xs[i]) if i == j else f"{xs[i]}-{xs[j]}")
        i = j + 1
    return ",".join(out)


ALL_TRACKS = TrackSelection()


@dataclass
class ParsedMidi:
    notes: np.ndarray  # (N, 4) float64: onset s, duration s, key 0..87, velocity 1..127
    dropped_out_of_range: int = 0  # pitch outside 21..108
    dropped_non_positive: int = 0  # duration <= 0 (after rounding to the microsecond)
    used_pretty_midi: bool = False  # symusic's note pairing could differ here: pretty_midi parsed it
    tracks: list = field(default_factory=list)  # the tracks taken: "NAME (program P, N notes)"
    ignored: list = field(default_factory=list)  # tracks with notes not taken, same form ("drums" marked)


def _tick_to_seconds(ticks: np.ndarray, tempo_ticks: np.ndarray, mspq: np.ndarray, tpq: int) -> np.ndarray:
    """pretty_midi's tick -> seconds map: piecewise linear in ticks, 120 bpm until a tempo says otherwise.

    Computed in float64 (symusic's own "second" mode is float32: 0.1 ms off after half an hour).
    """
    start = np.concatenate([[0], tempo_ticks]).astype(np.int64)
    # seconds per tick in each segment, in pretty_midi's own arithmetic (same float rounding)
    scale = 60.0 / ((6e7 / np.concatenate([[500000.0], mspq])) * tpq)
    order = np.argsort(start, kind="stable")  # a later tempo at the same tick wins
    start, scale = start[order], scale[order]
    seg_seconds = np.concatenate([[0.0], np.cumsum(np.diff(start) * scale[:-1])])
    i = np.searchsorted(start, ticks, side="right") - 1
    return seg_seconds[i] + (ticks - start[i]) * scale[i]


def _pretty_midi_notes(data: bytes, tracks: TrackSelection) -> np.ndarray:
    import pretty_midi  # slow; only for the rare files whose same-pitch notes overlap

    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    rows = [
        (n.start, n.end, n.pitch, n.velocity)
        for inst in pm.instruments
        if tracks.takes(inst.name, inst.program, inst.is_drum)
        for n in inst.notes
    ]
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _track_label(t, n: int) -> str:
    name = " ".join(t.name.split()) or "(unnamed)"
    return f"{name} (drums, {n} notes)" if t.is_drum else f"{name} (program {t.program}, {n} notes)"


def parse_midi(data: bytes, tracks: TrackSelection = ALL_TRACKS) -> ParsedMidi:
    """The notes of a MIDI file's tracks that `tracks` takes (default: every non-drum one), exactly
    as pretty_midi reads them, dropping unplayable ones.

    symusic pairs note-ons and note-offs of one pitch first-in first-out, while pretty_midi
    lets one note-off end every open note of its pitch and never yields zero-length notes.
    The two agree unless notes of one pitch overlap on a track and end apart, or start on one
    tick: where symusic's output shows that, the file is re-read with pretty_midi itself
    (in the 939 shared files, 6 have overlapping notes, all ending together: none needs it). Zero-length
    notes, which pretty_midi never yields, are dropped like all non-positive durations and
    counted. Two differences remain, both absent from MAESTRO: a note-on never switched off
    while an earlier note of its pitch is (symusic drops it, pretty_midi ends it with that
    note), and tempo changes outside the first track (pretty_midi ignores them).

    Raises ValueError (or RuntimeError from symusic) for data that is not a readable MIDI file.
    """
    # ticks: exact integers (symusic types its factory as the bare generic Score; it returns a ScoreTick)
    score: symusic.core.ScoreTick = symusic.Score.from_midi(data)  # type: ignore[assignment]
    if score.ticks_per_quarter <= 0:  # SMPTE time division, or 0: no tick length pretty_midi can use
        raise ValueError(f"its header gives {score.ticks_per_quarter} ticks per quarter note")
    if len(score.tempos) and (score.tempos.numpy()["mspq"] <= 0).any():
        raise ValueError("it has a tempo of 0 microseconds per quarter note")
    parts, taken, ignored = [], [], []
    for i, track in enumerate(score.tracks):
        if not len(track.notes):
            continue
        if tracks.takes(track.name, track.program, track.is_drum):
            parts.append((i, track.notes.numpy()))
            taken.append(_track_label(track, len(track.notes)))
        else:
            ignored.append(_track_label(track, len(track.notes)))
    if not parts:
        return ParsedMidi(np.zeros((0, 4)), tracks=taken, ignored=ignored)
    cat = lambda col: np.concatenate([a[col] for _, a in parts]).astype(np.int64)
    on, dur, pitch, vel = cat("time"), cat("duration"), cat("pitch"), cat("velocity")
    track_i = np.concatenate([np.full(len(a["time"]), i, dtype=np.int64) for i, a in parts])

    # notes grouped by (track, pitch) in onset order: one int64 key, one sort
    order = np.argsort(((track_i * 128 + pitch) << 32) + on, kind="stable")
    g_key, g_on, g_off = (track_i * 128 + pitch)[order], on[order], (on + dur)[order]
    same = g_key[1:] == g_key[:-1]
    # FIFO keeps offsets in onset order, so comparing neighbours finds every overlap; overlapping
    # notes that end together (two note-offs at one tick) come out the same from both readers
    differ = same & (g_on[1:] < g_off[:-1]) & (g_off[1:] != g_off[:-1])
    # two note-ons at one tick: pretty_midi drops both if a note-off follows at that very tick
    differ |= same & (g_on[1:] == g_on[:-1])
    if differ.any():
        notes = _pretty_midi_notes(data, tracks)
        t, off, p, v = notes[:, 0], notes[:, 1], notes[:, 2].astype(np.int64), notes[:, 3].astype(np.int64)
        used_pretty = True
    else:
        tempos = score.tempos.numpy()
        to_s = lambda ticks: _tick_to_seconds(ticks, tempos["time"], tempos["mspq"], score.ticks_per_quarter)
        t, off, p, v = to_s(on), to_s(on + dur), pitch, vel
        used_pretty = False
    parsed = _validated(t, off, p, v, used_pretty)
    parsed.tracks, parsed.ignored = taken, ignored
    return parsed


def _validated(t: np.ndarray, off: np.ndarray, pitch: np.ndarray, v: np.ndarray, used_pretty: bool) -> ParsedMidi:
    # round onset and offset (not the duration) so a zero-length note stays exactly zero long
    t, off = np.round(t, 6), np.round(off, 6)
    d = np.round(off - t, 6)
    in_range = (pitch >= LOWEST_PITCH) & (pitch <= HIGHEST_PITCH)
    positive = d > 0
    keep = in_range & positive & (v >= 1) & (v <= 127) & np.isfinite(t) & np.isfinite(d)
    t, d, k, v = t[keep], d[keep], pitch[keep] - LOWEST_PITCH, v[keep]
    # sort by (onset, key, velocity) with one stable int64 sort (input is nearly sorted already)
    order = np.argsort((np.rint(t * 1e6).astype(np.int64) * NUM_KEYS + k) * 128 + v, kind="stable")
    notes = np.empty((len(order), 4))
    for j, col in enumerate((t, d, k, v)):
        notes[:, j] = col[order]
    return ParsedMidi(
        notes,
        dropped_out_of_range=int((~in_range).sum()),
        dropped_non_positive=int((in_range & ~positive).sum()),
        used_pretty_midi=used_pretty,
    )
