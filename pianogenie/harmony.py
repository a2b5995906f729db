"""Harmony labels: the condition vocabulary, readers of annotated keys and chords, estimators, per-note labels.

Owns everything about *what* a key signature, chord or style label is and where it comes from:

- the condition vocabulary (ids below), encoded as @magenta/music's conditioned PianoGenie classes do;
- readers of annotations into time segments: ASAP `*_annotations.txt` (key signatures, beats),
  POP909 `chord_midi.txt` (chords), `key_audio.txt` (keys), `beat_midi.txt` (beats);
- estimators for files without annotations: key (music21's key finding, Bellman-Budge profiles by
  default) and
  chords (pitch-class-profile template matching over beats or fixed windows);
- `note_labels`: the label in force at each note's onset.

Segments are `Segments(start, end, value)`: half-open [start, end) in seconds with an int id each;
a time outside every segment has id 0 (none).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pianogenie.constants import LOWEST_PITCH
from pianogenie.util import UserError

# ---------------------------------------------------------------------------------------------
# The condition vocabulary
#
# Each condition is an int id with 0 = none (not given). The ids ARE @magenta/music's enum values
# (music/src/piano_genie/model.ts, classes PianoGenieKeysig, PianoGenieChord, PianoGenieKeysigChord,
# PianoGenieKeysigChordFamily), so an id goes unchanged to its setter:
#
# - key signature: `setKeySignature(PitchClass)`, PitchClass = None 0, C 1, C# 2, D 3, Eb 4, E 5, F 6,
#   F# 7, G 8, Ab 9, A 10, Bb 11, B 12. magenta's inputs carry no mode (its demo offers the 12 pitch
#   classes alone), and note_seq's key inference, whose chord kinds are exactly the 8 families below,
#   has 12 keys that are major scales; so the id is the pitch class of the MAJOR key with this
#   signature: 0 sharps -> C (A minor too), -3 -> Eb (C minor too), id = (7 * sharps) % 12 + 1.
# - chord root: `setChordRoot(PitchClass)`, the same 13 ids.
# - chord family: `setChordFamily(ChordFamily)`, ChordFamily = None 0, Maj 1, Min 2, Aug 3, Dim 4,
#   Seven 5, Maj7 6, Min7 7, Min7b5 8 (half-diminished); the same 8 chord kinds as note_seq's chord
#   inference ('', m, +, dim, 7, maj7, m7, m7b5), with those intervals.
# - style (ours; magenta has no such input): which collection the notes come from.
#
# magenta's decoder feature for each is one_hot(id - 1, 12 or 8): "none" is the all-zero vector,
# appended after [button, previous key (89), delta time (33)] in the order key signature, chord
# root, chord family. `magenta_one_hot` builds exactly that.

NONE = 0
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # id = index + 1
NUM_KEYSIGS = 13  # none + 12 pitch classes
NUM_CHORD_ROOTS = 13  # none + 12 pitch classes
CHORD_FAMILIES = (
    "none",
    "major",
    "minor",
    "augmented",
    "diminished",
    "seventh",
    "major seventh",
    "minor seventh",
    "half-diminished",
)  # id = index
NUM_CHORD_FAMILIES = len(CHORD_FAMILIES)  # 9
FAMILY_INTERVALS: dict[int, tuple[int, ...]] = {  # family id -> semitones above the root
    1: (0, 4, 7),
    2: (0, 3, 7),
    3: (0, 4, 8),
    4: (0, 3, 6),
    5: (0, 4, 7, 10),
    6: (0, 4, 7, 11),
    7: (0, 3, 7, 10),
    8: (0, 3, 6, 10),
}
STYLES = ("none", "classical", "pop")  # id = index; classical = MAESTRO/ASAP, pop = POP909
NUM_STYLES = len(STYLES)

# ---------------------------------------------------------------------------------------------
# Bounds on annotation files

MAX_LABEL_FILE_BYTES = 8 << 20  # the largest real file is ~100 KB
MAX_LABEL_LINES = 200_000
MAX_TIME_S = 24 * 3600.0


def keysig_from_sharps(sharps: int) -> int:
    """Key signature id of a signature with `sharps` sharps (negative: flats), -7..7."""
    if not -7 <= sharps <= 7:
        raise ValueError(f"key signature of {sharps} sharps: expected -7..7")
    return (7 * sharps) % 12 + 1


def magenta_one_hot(ids: np.ndarray | int, size: int) -> np.ndarray:
    """magenta-js's conditioning feature: one_hot(id - 1, size) as float32, id 0 (none) -> all zeros."""
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() > size):
        raise ValueError(f"condition ids must be 0..{size}")
    out = np.zeros(ids.shape + (size + 1,), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out[..., 1:]


def chord_pitch_classes(root: int, family: int) -> frozenset[int]:
    """Pitch classes (0 = C) of the chord with ids (root, family); empty if either is none."""
    if root == NONE or family == NONE:
        return frozenset()
    return frozenset((root - 1 + i) % 12 for i in FAMILY_INTERVALS[family])


def keysig_pitch_classes(keysig: int) -> frozenset[int]:
    """Pitch classes of the major scale of key signature id `keysig`; empty if none."""
    if keysig == NONE:
        return frozenset()
    return frozenset((keysig - 1 + i) % 12 for i in (0, 2, 4, 5, 7, 9, 11))


def style_id(name: str) -> int:
    """ "classical" / "pop" / "none" -> style id."""
    try:
        return STYLES.index(name.strip().lower())
    except ValueError:
        raise UserError(f"unknown style {name!r}: expected one of {', '.join(STYLES)}") from None


# ---------------------------------------------------------------------------------------------
# Segments and per-note labels


@dataclass(frozen=True)
class Segments:
    """Labels over time: segment i is [start[i], end[i]) with id value[i]; segments do not overlap."""

    start: np.ndarray  # (M,) float64 s, nondecreasing
    end: np.ndarray  # (M,) float64 s, start <= end <= next start (end may be inf)
    value: np.ndarray  # (M,) int64 ids

    def at(self, times: np.ndarray) -> np.ndarray:
        """The id in force at each time (0 where no segment covers it)."""
        times = np.asarray(times, dtype=np.float64)
        i = np.searchsorted(self.start, times, side="right") - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        if len(self.start) == 0:
            return np.zeros(times.shape, dtype=np.int64)
        ok &= times < self.end[j]
        return np.where(ok, self.value[j], NONE).astype(np.int64)


def _segments(start, end, value) -> Segments:
    return Segments(np.asarray(start, np.float64), np.asarray(end, np.float64), np.asarray(value, np.int64))


def note_labels(
    notes: np.ndarray,
    keysig: Segments | None = None,
    chord_root: Segments | None = None,
    chord_family: Segments | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-note (keysig id, chord root id, chord family id), each (N,) int64: the label in force at
    the note's onset (`notes` is (N, 4): onset s, duration s, key, velocity); a missing track -> 0."""
    notes = np.asarray(notes)
    if notes.ndim != 2 or notes.shape[1] < 1:
        raise ValueError(f"notes must be (N, 4), got shape {notes.shape}")
    onsets = notes[:, 0].astype(np.float64)
    none = np.zeros(len(onsets), dtype=np.int64)
    at = lambda s: s.at(onsets) if s is not None else none.copy()
    return at(keysig), at(chord_root), at(chord_family)


# ---------------------------------------------------------------------------------------------
# Chord and key labels

_ROOT = re.compile(r"([A-G])([#b]*)")
_DEGREE = re.compile(r"(\*?)([#b]*)(\d{1,2})")
_DEGREE_SEMITONES = {1: 0, 2: 2, 3: 4, 4: 5, 5: 7, 6: 9, 7: 11, 9: 14, 11: 17, 13: 21}
# Harte et al. (ISMIR 2005) shorthands, as semitones above the root
_SHORTHANDS: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "aug": (0, 4, 8),
    "maj7": (0, 4, 7, 11),
    "min7": (0, 3, 7, 10),
    "7": (0, 4, 7, 10),
    "dim7": (0, 3, 6, 9),
    "hdim7": (0, 3, 6, 10),
    "minmaj7": (0, 3, 7, 11),
    "maj6": (0, 4, 7, 9),
    "min6": (0, 3, 7, 9),
    "9": (0, 4, 7, 10, 2),
    "maj9": (0, 4, 7, 11, 2),
    "min9": (0, 3, 7, 10, 2),
    "11": (0, 4, 7, 10, 2, 5),
    "min11": (0, 3, 7, 10, 2, 5),
    "13": (0, 4, 7, 10, 2, 9),
    "maj13": (0, 4, 7, 11, 2, 9),
    "min13": (0, 3, 7, 10, 2, 9),
    "sus2": (0, 2, 7),
    "sus4": (0, 5, 7),
    "1": (0,),
    "5": (0, 7),
}
# Largest family first: a chord's family is the largest family whose tones it contains.
_FAMILY_ORDER = sorted(FAMILY_INTERVALS, key=lambda f: (-len(FAMILY_INTERVALS[f]), f))


def _pitch_class(letter: str, accidentals: str) -> int:
    return (
        {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter]
        + accidentals.count("#")
        - accidentals.count("b")
    ) % 12


def _degree(token: str) -> tuple[bool, int]:
    m = _DEGREE.fullmatch(token.strip())
    if not m or int(m.group(3)) not in _DEGREE_SEMITONES:
        raise ValueError(f"bad interval {token!r}")
    omit, acc, deg = m.groups()
    return bool(omit), (_DEGREE_SEMITONES[int(deg)] + acc.count("#") - acc.count("b")) % 12


def family_of(intervals: set[int] | frozenset[int] | tuple[int, ...]) -> int:
    """The family of a chord given as semitones above its root: the largest of the 8 families whose
    tones the chord contains (extensions, added and doubled tones ignored), else none.

    maj6 -> major, min6 / minmaj7 -> minor, dim7 -> diminished, 9 / 11 / 13 -> seventh, maj9 ->
    major seventh, min9 -> minor seventh; sus2, sus4, sus4(b7), power chords -> none (no third).
    """
    tones = {i % 12 for i in intervals}
    for f in _FAMILY_ORDER:
        if tones.issuperset(FAMILY_INTERVALS[f]):
            return f
    return NONE


def parse_chord_label(label: str) -> tuple[int, int]:
    """A Harte chord label (POP909's, e.g. `C:maj`, `A:min7`, `Db:maj/3`, `G:sus4(b7)`, `N`) ->
    (chord root id, chord family id). An inversion (`/bass`) keeps the root; `N` / `X` -> (0, 0);
    a root with a family-less quality (sus2, ...) -> (root id, 0). Raises ValueError if malformed."""
    text = label.strip()
    if text in ("N", "X"):
        return NONE, NONE
    head, _, bass = text.partition("/")
    root_text, colon, quality = head.partition(":")
    m = _ROOT.fullmatch(root_text)
    if not m:
        raise ValueError(f"bad chord root {root_text!r}")
    root = _pitch_class(*m.groups())
    if not colon:
        quality = "maj"
    short, paren, ext = quality.partition("(")
    if short and short not in _SHORTHANDS:
        raise ValueError(f"unknown chord quality {short!r}")
    if not short and not paren:
        raise ValueError("empty chord quality")
    tones = set(_SHORTHANDS[short]) if short else {0}
    if paren:
        if not ext.endswith(")"):
            raise ValueError("unclosed '(' in chord label")
        for token in filter(None, ext[:-1].split(",")):
            omit, semis = _degree(token)
            (tones.discard if omit else tones.add)(semis)
    if bass:
        _degree(bass)  # validated; the bass note does not change root or family
    return root + 1, family_of(tones)


def parse_key_label(label: str) -> int:
    """A key (`Gb:maj`, `A:min`, `C`) -> key signature id (the relative major for minor keys)."""
    text = label.strip()
    root_text, _, mode = text.partition(":")
    m = _ROOT.fullmatch(root_text)
    if not m or mode not in ("", "maj", "min"):
        raise ValueError(f"bad key {text!r}: expected e.g. Gb:maj or A:min")
    pc = _pitch_class(*m.groups())
    return ((pc + 3) % 12 if mode == "min" else pc) + 1


# ---------------------------------------------------------------------------------------------
# Readers of annotation files


def _lines(path: str | Path) -> list[str]:
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_LABEL_FILE_BYTES:
            raise UserError(f"{path}: {size} bytes, more than the {MAX_LABEL_FILE_BYTES} an annotation file may have")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder; expected an annotation file") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e.strerror or e}") from None
    lines = text.splitlines()
    if len(lines) > MAX_LABEL_LINES:
        raise UserError(f"{path}: {len(lines)} lines, more than the {MAX_LABEL_LINES} an annotation file may have")
    return lines


def _time(text: str, path: Path, n: int) -> float:
    try:
        t = float(text)
    except ValueError:
        raise UserError(f"{path}:{n}: bad time {text.strip()!r}: expected seconds") from None
    if not (math.isfinite(t) and 0.0 <= t <= MAX_TIME_S):
        raise UserError(f"{path}:{n}: time {t} outside 0..{MAX_TIME_S:.0f} s")
    return t


@dataclass(frozen=True)
class AsapAnnotations:
    beats: np.ndarray  # (B,) float64 s, every beat (downbeats included), nondecreasing
    downbeats: np.ndarray  # (D,) float64 s
    keysig: Segments  # key signature ids from the first beat's key on (first segment starts at 0)


_ASAP_LABEL = re.compile(r"(db|b|bR)(?:,(\d{1,2}/\d{1,2})?(?:,(-?\d{1,2}))?)?")


def read_asap_annotations(path: str | Path) -> AsapAnnotations:
    """An ASAP `*_annotations.txt` (time, time, `b`|`db`|`bR`[,time sig[,sharps]]) -> beats and key
    signature segments. The first key covers the notes before the first beat (a score's key signature
    holds from its start), the last one runs to the end (end = inf)."""
    path = Path(path)
    beats: list[float] = []
    downbeats: list[float] = []
    key_t: list[float] = []
    key_v: list[int] = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) != 3:
            raise UserError(f"{path}:{n}: expected 3 tab-separated columns (time, time, label), got {len(cols)}")
        t = _time(cols[0], path, n)
        m = _ASAP_LABEL.fullmatch(cols[2].strip())
        if not m:
            raise UserError(
                f"{path}:{n}: bad beat label {cols[2].strip()!r}: expected b, db or bR, "
                "then optionally ,<time signature>,<sharps>"
            )
        if beats and t < beats[-1]:
            raise UserError(f"{path}:{n}: beat at {t} s comes before the previous one ({beats[-1]} s)")
        beats.append(t)
        if m.group(1) == "db":
            downbeats.append(t)
        if m.group(3) is not None:
            sharps = int(m.group(3))
            if not -7 <= sharps <= 7:
                raise UserError(f"{path}:{n}: key signature of {sharps} sharps: expected -7..7")
            key_t.append(t)
            key_v.append(keysig_from_sharps(sharps))
    if not key_t:
        raise UserError(f"{path}: no key signature in the annotations (expected one on the first beat)")
    start = [0.0] + key_t[1:]
    end = key_t[1:] + [math.inf]
    return AsapAnnotations(
        np.asarray(beats, np.float64), np.asarray(downbeats, np.float64), _segments(start, end, key_v)
    )


def _read_spans(path: Path, what: str) -> list[tuple[int, float, float, str]]:
    """Lines `start end label` (tabs or spaces), in time order without overlap -> (line, s, e, label)."""
    spans: list[tuple[int, float, float, str]] = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 3:
            raise UserError(f"{path}:{n}: expected start, end and {what}, got {len(cols)} fields")
        s, e = _time(cols[0], path, n), _time(cols[1], path, n)
        if e < s:
            raise UserError(f"{path}:{n}: ends ({e} s) before it starts ({s} s)")
        if spans and s < spans[-1][2] - 1e-6:
            raise UserError(f"{path}:{n}: starts at {s} s, before the previous {what} ends ({spans[-1][2]} s)")
        spans.append((n, s, e, cols[2]))
    return spans


def read_chord_file(path: str | Path) -> tuple[Segments, Segments]:
    """POP909's `chord_midi.txt` (start s, end s, Harte label) -> (chord root, chord family) segments.

    Also what `decode --chords FILE` reads. Between and outside the listed spans: none."""
    path = Path(path)
    start, end, roots, fams = [], [], [], []
    for n, s, e, label in _read_spans(path, "chord"):
        try:
            r, f = parse_chord_label(label)
        except ValueError as err:
            raise UserError(f"{path}:{n}: chord {label!r}: {err}") from None
        start.append(s)
        end.append(e)
        roots.append(r)
        fams.append(f)
    return _segments(start, end, roots), _segments(start, end, fams)


def read_key_file(path: str | Path) -> Segments:
    """POP909's `key_audio.txt` (start s, end s, key such as `Gb:maj`) -> key signature segments.

    POP909's key spans start at the first beat: the first key is extended back to 0 s so pickup
    notes get it too, and the last one forward to the end."""
    path = Path(path)
    spans = _read_spans(path, "key")
    if not spans:
        raise UserError(f"{path}: no key in the file")
    values = []
    for n, _, _, label in spans:
        try:
            values.append(parse_key_label(label))
        except ValueError as err:
            raise UserError(f"{path}:{n}: {err}") from None
    start = [0.0] + [s for _, s, _, _ in spans[1:]]
    end = [s for _, s, _, _ in spans[1:]] + [math.inf]
    return _segments(start, end, values)


def read_beat_file(path: str | Path) -> np.ndarray:
    """POP909's `beat_midi.txt` (time, beat flag, downbeat flag) -> beat times (s), nondecreasing."""
    path = Path(path)
    beats: list[float] = []
    for n, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        cols = line.split()
        if len(cols) != 3:
            raise UserError(f"{path}:{n}: expected time, beat flag and downbeat flag, got {len(cols)} fields")
        t = _time(cols[0], path, n)
        if beats and t < beats[-1]:
            raise UserError(f"{path}:{n}: beat at {t} s comes before the previous one ({beats[-1]} s)")
        beats.append(t)
    return np.asarray(beats, np.float64)


# ---------------------------------------------------------------------------------------------
# Estimators


def _check_notes(notes: np.ndarray) -> np.ndarray:
    notes = np.asarray(notes, dtype=np.float64)
    if notes.ndim != 2 or notes.shape[1] != 4:
        raise ValueError(f"notes must be (N, 4): onset s, duration s, key, velocity; got shape {notes.shape}")
    return notes


def pitch_class_profiles(notes: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """(len(edges) - 1, 12): seconds each pitch class sounds within each window [edges[i], edges[i+1])."""
    notes = _check_notes(notes)
    edges = np.asarray(edges, dtype=np.float64)
    m = max(len(edges) - 1, 0)
    out = np.zeros((m, 12))
    if m == 0 or len(notes) == 0:
        return out
    on, off = notes[:, 0], notes[:, 0] + np.maximum(notes[:, 1], 0.0)
    pc = (notes[:, 2].astype(np.int64) + LOWEST_PITCH) % 12
    first = np.clip(np.searchsorted(edges, on, side="right") - 1, 0, m - 1)
    last = np.clip(np.searchsorted(edges, off, side="left") - 1, 0, m - 1)
    # Each note adds its overlap to the windows it spans; most notes span one or two windows.
    span = last - first + 1
    idx = np.repeat(np.arange(len(notes)), span)
    win = first[idx] + (np.arange(len(idx)) - np.repeat(np.cumsum(span) - span, span))
    overlap = np.minimum(off[idx], edges[win + 1]) - np.maximum(on[idx], edges[win])
    np.add.at(out, (win, pc[idx]), np.clip(overlap, 0.0, None))
    return out


def _chord_templates() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    roots, fams, rows = [], [], []
    for f, intervals in FAMILY_INTERVALS.items():
        for r in range(12):
            v = np.zeros(12)
            v[[(r + i) % 12 for i in intervals]] = 1.0
            rows.append(v / np.linalg.norm(v))
            roots.append(r + 1)
            fams.append(f)
    return np.asarray(rows), np.asarray(roots, np.int64), np.asarray(fams, np.int64)


_TEMPLATES, _TEMPLATE_ROOTS, _TEMPLATE_FAMILIES = _chord_templates()


def estimate_chords(
    notes: np.ndarray,
    beats: np.ndarray | None = None,
    window_s: float = 0.5,
) -> tuple[Segments, Segments]:
    """Chord (root, family) segments of a performance: one chord per beat when `beats` are given,
    else per fixed window of `window_s` seconds from 0 s.

    Each window's duration-weighted pitch-class profile is matched to the 96 chord templates (12 roots
    x 8 families, the tones of each family, unit length) by cosine similarity (Fujishima 1999; the
    templates and score of note_seq's chord inference, which labelled magenta's chord-conditioned
    genies, without its key/chord HMM). A window where nothing sounds is none."""
    notes = _check_notes(notes)
    end = float((notes[:, 0] + notes[:, 1]).max()) if len(notes) else 0.0
    if beats is not None:
        b = np.asarray(beats, dtype=np.float64)
        b = b[(b > 0.0) & (b < end)]
        edges = np.unique(np.concatenate([[0.0], b, [max(end, b[-1] if len(b) else 0.0)]]))
    else:
        if not window_s > 0:
            raise ValueError("window_s must be positive")
        edges = np.arange(0.0, end + window_s, window_s)
    if len(edges) < 2:
        empty = _segments([], [], [])
        return empty, empty
    x = pitch_class_profiles(notes, edges)
    norm = np.linalg.norm(x, axis=1)
    best = np.argmax(x @ _TEMPLATES.T, axis=1)
    sounding = norm > 1e-9
    roots = np.where(sounding, _TEMPLATE_ROOTS[best], NONE)
    fams = np.where(sounding, _TEMPLATE_FAMILIES[best], NONE)
    return _segments(edges[:-1], edges[1:], roots), _segments(edges[:-1], edges[1:], fams)


KEY_METHODS = ("krumhansl", "aarden", "temperley", "bellman", "simple", "kessler")


def _key_analyzer(method: str):
    from music21.analysis import discrete

    classes = {
        "krumhansl": discrete.KrumhanslSchmuckler,
        "kessler": discrete.KrumhanslKessler,
        "aarden": discrete.AardenEssen,
        "temperley": discrete.TemperleyKostkaPayne,
        "bellman": discrete.BellmanBudge,
        "simple": discrete.SimpleWeights,
    }
    if method not in classes:
        raise ValueError(f"unknown key method {method!r}: expected one of {', '.join(KEY_METHODS)}")
    return classes[method]()


def key_from_profile(profile: np.ndarray, method: str = "krumhansl") -> int:
    """Key signature id of the key music21 finds for a 12-bin pitch-class weight profile; 0 if empty.

    music21's key finders weight each pitch class by its duration in the stream; a stream of one note
    per pitch class, as long as the profile's weight, gives them exactly this profile."""
    from music21 import note, stream

    profile = np.asarray(profile, dtype=np.float64)
    if profile.shape != (12,) or not np.all(np.isfinite(profile)) or profile.min() < 0:
        raise ValueError("profile must be 12 finite non-negative weights")
    if profile.max() <= 0:
        return NONE
    weights = profile / profile.max() * 64.0  # a musical range of quarter lengths
    s: stream.Stream = stream.Stream()
    for pc in range(12):
        if weights[pc] > 1e-3:
            n = note.Note(pc + 60)
            n.quarterLength = round(float(weights[pc]), 3)
            s.append(n)
    key = _key_analyzer(method).getSolution(s)
    return keysig_from_sharps(int(key.sharps))


KEY_WEIGHTINGS = ("duration", "count")


def _key_profiles(notes: np.ndarray, edges: np.ndarray, weighting: str) -> np.ndarray:
    """Per window: seconds sounding ("duration") or onsets ("count") of each pitch class."""
    if weighting == "duration":
        return pitch_class_profiles(notes, edges)
    if weighting != "count":
        raise ValueError(f"unknown weighting {weighting!r}: expected one of {', '.join(KEY_WEIGHTINGS)}")
    out = np.zeros((max(len(edges) - 1, 0), 12))
    if len(out):
        win = np.clip(np.searchsorted(edges, notes[:, 0], side="right") - 1, 0, len(out) - 1)
        np.add.at(out, (win, (notes[:, 2].astype(np.int64) + LOWEST_PITCH) % 12), 1.0)
    return out


def estimate_key(notes: np.ndarray, method: str = "bellman", weighting: str = "count") -> int:
    """Key signature id of a whole performance: music21's `method` key finder on the pitch-class
    profile of all its notes (weighted by "duration" or onset "count"); 0 if it has no notes. The
    defaults agreed best with ASAP's annotated key signatures (benchmarks/label_agreement.py)."""
    notes = _check_notes(notes)
    if len(notes) == 0:
        return NONE
    end = float((notes[:, 0] + notes[:, 1]).max())
    return key_from_profile(_key_profiles(notes, np.array([0.0, end + 1e-9]), weighting)[0], method)


def estimate_keys(
    notes: np.ndarray,
    window_s: float = 30.0,
    method: str = "bellman",
    weighting: str = "count",
) -> Segments:
    """Key signature segments: one key per step of `window_s / 3` seconds, found from the `window_s`
    seconds centred on it (the step and one step each side), so that a modulation moves the key
    within a step or two; the last segment runs to the end (inf)."""
    notes = _check_notes(notes)
    if not window_s > 0:
        raise ValueError("window_s must be positive")
    if len(notes) == 0:
        return _segments([], [], [])
    end = float((notes[:, 0] + notes[:, 1]).max())
    step = window_s / 3
    edges = np.arange(0.0, end + step, step)
    if len(edges) < 2:
        edges = np.array([0.0, end + 1e-9])
    x = _key_profiles(notes, edges, weighting)
    m = len(x)
    cum = np.vstack([np.zeros(12), np.cumsum(x, axis=0)])
    values = [key_from_profile(cum[min(i + 2, m)] - cum[max(i - 1, 0)], method) for i in range(m)]
    stop = edges[1:].copy()
    stop[-1] = math.inf
    return _segments(edges[:-1], stop, values)
