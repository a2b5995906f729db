"""Keys and scales: "D minor", "F# blues", a list of MIDI pitches -> the set of keys (0..87) allowed.

Shared by `PianoGenie.press(..., keys=...)` callers and `pianogenie decode --scale/--keys`; the
browser's copy is `web/src/scales.js` (same scale names and intervals; a test checks they agree).

- `parse_scale("D minor")` -> the pitch classes (0 = C .. 11 = B) of that key and scale.
- `parse_pitches("48-72,C6,D#6")` -> MIDI pitches (numbers, note names, inclusive ranges).
- `allowed_keys(pitch_classes, pitches)` -> sorted key indices in both (either may be None = all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pianogenie.constants import LOWEST_PITCH, NUM_KEYS
from pianogenie.util import UserError

# Semitones above the tonic. "minor" is the natural minor (aeolian).
SCALES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "natural minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic minor": (0, 2, 3, 5, 7, 8, 11),
    "major pentatonic": (0, 2, 4, 7, 9),
    "minor pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}
ALIASES = {"minor": "natural minor", "aeolian": "natural minor", "ionian": "major", "pentatonic": "major pentatonic"}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_LETTERS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_TONIC = re.compile(r"([A-Ga-g])([#b♯♭]?)")
_NOTE = re.compile(r"([A-Ga-g])([#b♯♭]?)(-?\d)")


def _pitch_class(letter: str, accidental: str) -> int:
    return (_LETTERS[letter.upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(accidental, 0)) % 12


def scale_names() -> list[str]:
    return list(SCALES) + list(ALIASES)


def parse_scale(text: str) -> frozenset[int]:
    """ "D minor", "c# harmonic minor", "Bb blues", "chromatic" -> pitch classes 0..11."""
    words = text.strip().split()
    if not words:
        raise UserError('empty scale: expected a tonic and a scale name, e.g. "D minor"')
    if " ".join(words).lower() == "chromatic":
        return frozenset(range(12))
    m = _TONIC.fullmatch(words[0])
    name = " ".join(words[1:]).lower()
    name = ALIASES.get(name, name)
    if not m or name not in SCALES:
        raise UserError(
            f"unknown scale {text!r}: expected a tonic (C, C#, Db, ... B) and one of "
            f'{", ".join(scale_names())}, e.g. "D minor"'
        )
    tonic = _pitch_class(*m.groups())
    return frozenset((tonic + i) % 12 for i in SCALES[name])


def parse_pitch(text: str) -> int:
    """A MIDI pitch: "60" or a note name with octave, "C4" (= 60), "F#3", "Bb5"."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        pitch = int(text)
    elif m := _NOTE.fullmatch(text):
        # not via _pitch_class: B#4 is C5 and Cb4 is B3, the accidental crosses the octave boundary
        pitch = _LETTERS[m[1].upper()] + {"#": 1, "♯": 1, "b": -1, "♭": -1}.get(m[2], 0) + 12 * (int(m[3]) + 1)
    else:
        raise UserError(f"not a MIDI pitch: {text!r} (a number 0..127 or a note name like C4, F#3, Bb5)")
    if not 0 <= pitch <= 127:
        raise UserError(f"MIDI pitch {text!r} outside 0..127")
    return pitch


def parse_pitches(text: str) -> frozenset[int]:
    """ "60,62,64" / "48-72" / "C3-C6,D#6": MIDI pitches, comma-separated, ranges inclusive."""
    out: set[int] = set()
    for part in text.split(","):
        if not part.strip():
            continue
        lo, sep, hi = part.strip().partition("-")
        if sep:
            a, b = parse_pitch(lo), parse_pitch(hi)
            if a > b:
                raise UserError(f"pitch range {part.strip()!r} runs downwards")
            out.update(range(a, b + 1))
        else:
            out.add(parse_pitch(part))
    if not out:
        raise UserError(f"no MIDI pitches in {text!r}")
    return frozenset(out)


def allowed_keys(
    pitch_classes: Iterable[int] | None = None,
    pitches: Iterable[int] | None = None,
    lowest_pitch: int = LOWEST_PITCH,
    num_keys: int = NUM_KEYS,
) -> list[int]:
    """Key indices 0..num_keys-1 whose pitch is in `pitch_classes` and in `pitches` (None = any)."""
    pcs = None if pitch_classes is None else {int(p) % 12 for p in pitch_classes}
    ps = None if pitches is None else {int(p) for p in pitches}
    keys = [
        k
        for k in range(num_keys)
        if (pcs is None or (k + lowest_pitch) % 12 in pcs) and (ps is None or k + lowest_pitch in ps)
    ]
    if not keys:
        raise UserError(
            "no piano key is left in the chosen scale and pitches "
            f"(the piano spans MIDI {lowest_pitch}..{lowest_pitch + num_keys - 1})"
        )
    return keys
