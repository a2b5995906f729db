"""Per-note condition labels: what `prepare` stores beside the notes, and what conditioned models read.

Each note carries four int ids in `LABEL_COLUMNS` order, the vocabulary of `pianogenie.harmony`
(0 = none; key signature and chord root 1..12 = C..B, chord family 1..8, style 1 classical, 2 pop):

- `performance_labels`: one performance's (N, 4) int8 labels and where each came from: its
  annotations (`Performance.extras`: ASAP `*_annotations.txt` for key signatures, POP909's
  `chord_midi.txt` and `key_audio.txt`), else harmony's estimators (`--labels estimated`);
- `transpose_labels`: key signature and chord root move with a transposition, none stays none;
- `drop_conditions`: each condition dropped to none at random per window (training);
- `CONDITIONS`: the model-facing condition names (`keysig`, `chord` = root + family, `style`)
  and the label columns and one-hot widths (none slot included) each one feeds the decoder;
- `parse_key` / `parse_chord` / `parse_style`: what a player types (`D`, `Eb`, `Bbm`; `G7`, `Am`,
  `C:maj`, POP909 labels; `pop`) -> ids.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable

import numpy as np

from pianogenie import harmony
from pianogenie.util import UserError

LABEL_COLUMNS = ("keysig", "chord_root", "chord_family", "style")
KEYSIG, CHORD_ROOT, CHORD_FAMILY, STYLE = range(4)
LABEL_MODES = ("annotated", "estimated", "none")
DEFAULT_LABEL_MODE = "annotated"  # estimating keys costs ~1 s of CPU per 2 minutes of music

# condition name -> (label columns, one-hot widths including the none slot), in decoder input order
CONDITIONS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "keysig": ((KEYSIG,), (harmony.NUM_KEYSIGS,)),
    "chord": ((CHORD_ROOT, CHORD_FAMILY), (harmony.NUM_CHORD_ROOTS, harmony.NUM_CHORD_FAMILIES)),
    "style": ((STYLE,), (harmony.NUM_STYLES,)),
}
COLUMN_SIZES = (harmony.NUM_KEYSIGS, harmony.NUM_CHORD_ROOTS, harmony.NUM_CHORD_FAMILIES, harmony.NUM_STYLES)


def parse_conditions(text: str) -> tuple[str, ...]:
    """ "chord,keysig" -> ("keysig", "chord") (canonical order); "" / "none" -> ()."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if names == ["none"]:
        return ()
    for n in names:
        if n not in CONDITIONS:
            raise UserError(
                f"unknown condition {n!r}: expected a comma-separated subset of {', '.join(CONDITIONS)} (or none)"
            )
    if len(set(names)) != len(names):
        raise UserError(f"conditions {text!r} name one twice")
    return tuple(n for n in CONDITIONS if n in names)


def condition_columns(conditions: tuple[str, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The label columns a model with `conditions` reads, and their one-hot widths, in input order."""
    cols: list[int] = []
    sizes: list[int] = []
    for name in conditions:
        c, s = CONDITIONS[name]
        cols += c
        sizes += s
    return tuple(cols), tuple(sizes)


def transpose_labels(labels: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(B, T, 4) ids with key signature and chord root moved `shift[b]` semitones; none stays none."""
    out = labels.astype(np.int64, copy=True)
    s = np.asarray(shift, np.int64).reshape(-1, *([1] * (labels.ndim - 1)))
    for col in (KEYSIG, CHORD_ROOT):
        v = out[..., col]
        out[..., col] = np.where(v > 0, (v - 1 + s[..., 0]) % 12 + 1, 0)
    return out


def drop_conditions(labels: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """(B, T, 4) ids with each condition (key signature; chord root and family together; style)
    set to none for a whole window with probability p, independently per window and condition.
    Draws from `rng` whatever p is, so runs with other dropouts draw the same windows."""
    drop = rng.random((labels.shape[0], 3)) < p  # (B, [keysig, chord, style])
    out = labels.copy()
    for j, cols in enumerate(((KEYSIG,), (CHORD_ROOT, CHORD_FAMILY), (STYLE,))):
        for c in cols:
            out[drop[:, j], :, c] = 0
    return out


# ---------------------------------------------------------------------------------------------
# Labelling a performance at prepare time


def default_style(source) -> int:
    """The style id of the source's own default style (`Source.default_style`: classical for
    MAESTRO, pop for other collections)."""
    return harmony.style_id(source.default_style)


def _read_extra(read: Callable[[str], bytes], name: str, parse):
    """Parse an extra file of the source with one of harmony's path readers (a zip's member is
    read into a private temporary file first)."""
    data = read(name)
    fd, tmp = tempfile.mkstemp(prefix="pianogenie-label-", suffix=".txt")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            return parse(tmp)
        except UserError as e:  # say the source's name, not the temporary file's
            raise UserError(str(e).replace(tmp, name)) from None
    finally:
        os.unlink(tmp)


def performance_labels(
    notes: np.ndarray, extras: tuple, read: Callable[[str], bytes], mode: str, style: int
) -> tuple[np.ndarray, dict]:
    """(N, 4) int8 labels of one performance and {"keysig": ..., "chord": ..., "style": ...} saying
    where each came from ("annotated: NAME", "estimated: METHOD", "none", or "error: ..." when an
    annotation file is unreadable, which then counts as absent).

    mode "annotated": annotations only (none where the source has none); "estimated": annotations
    where the source has them, harmony's estimators for the rest; "none": all none."""
    n = len(notes)
    out = np.zeros((n, 4), np.int8)
    where = {"keysig": "none", "chord": "none", "style": "none"}
    if mode == "none":
        return out, where
    ex = dict(extras)
    keysig = root = family = None
    beats = None
    if "annotations" in ex:  # ASAP: key signatures and beats
        try:
            asap = _read_extra(read, ex["annotations"], harmony.read_asap_annotations)
            keysig, beats = asap.keysig, asap.beats
            where["keysig"] = f"annotated: {ex['annotations']}"
        except (UserError, OSError) as e:
            where["keysig"] = f"error: {e}"
    if "key_audio" in ex:  # POP909
        try:
            keysig = _read_extra(read, ex["key_audio"], harmony.read_key_file)
            where["keysig"] = f"annotated: {ex['key_audio']}"
        except (UserError, OSError) as e:
            where["keysig"] = f"error: {e}"
    if "chord_midi" in ex:
        try:
            root, family = _read_extra(read, ex["chord_midi"], harmony.read_chord_file)
            where["chord"] = f"annotated: {ex['chord_midi']}"
        except (UserError, OSError) as e:
            where["chord"] = f"error: {e}"
    if beats is None and "beat_midi" in ex:
        try:
            beats = _read_extra(read, ex["beat_midi"], harmony.read_beat_file)
        except (UserError, OSError):
            beats = None
    if mode == "estimated" and n:
        notes64 = np.asarray(notes, np.float64)
        if keysig is None:
            # one key per performance: it agreed with ASAP's signatures far better than 30 s windows
            ks = harmony.estimate_key(notes64)
            keysig = harmony.Segments(np.array([0.0]), np.array([np.inf]), np.array([ks], dtype=np.int64))
            where["keysig"] = "estimated: music21 Bellman-Budge key finder, note counts, whole performance"
        if root is None:
            root, family = harmony.estimate_chords(notes64, beats)
            where["chord"] = "estimated: chord templates per " + ("beat" if beats is not None else "0.5 s")
    out[:, KEYSIG], out[:, CHORD_ROOT], out[:, CHORD_FAMILY] = harmony.note_labels(notes, keysig, root, family)
    out[:, STYLE] = style
    where["style"] = harmony.STYLES[style]
    return out, where


# ---------------------------------------------------------------------------------------------
# What a player types

_SYMBOL = re.compile(r"([A-G][#b]?)(.*)")
# chord-symbol suffixes -> Harte shorthands (parse_chord_label reads those)
_SUFFIXES = {
    "": "maj",
    "M": "maj",
    "maj": "maj",
    "m": "min",
    "min": "min",
    "-": "min",
    "dim": "dim",
    "o": "dim",
    "aug": "aug",
    "+": "aug",
    "7": "7",
    "dom7": "7",
    "maj7": "maj7",
    "M7": "maj7",
    "Δ": "maj7",
    "m7": "min7",
    "min7": "min7",
    "-7": "min7",
    "m7b5": "hdim7",
    "ø": "hdim7",
    "hdim7": "hdim7",
    "dim7": "dim7",
    "o7": "dim7",
    "6": "maj6",
    "m6": "min6",
    "9": "9",
    "maj9": "maj9",
    "m9": "min9",
    "11": "11",
    "13": "13",
    "sus2": "sus2",
    "sus4": "sus4",
    "sus": "sus4",
    "5": "5",
    "mmaj7": "minmaj7",
}


def parse_chord(text) -> tuple[int, int]:
    """A chord: ids (root, family) as a pair, a chord symbol (`G7`, `Am`, `Bbmaj7`, `F#m7b5`, `C/E`),
    a Harte / POP909 label (`C:maj`, `A:min7`, `N`), or "none" -> (root id, family id)."""
    if isinstance(text, tuple) and len(text) == 2:
        r, f = (int(x) for x in text)
        if not (0 <= r < harmony.NUM_CHORD_ROOTS and 0 <= f < harmony.NUM_CHORD_FAMILIES):
            raise ValueError(f"chord ids must be (0..12, 0..8), got {text!r}")
        return r, f
    if not isinstance(text, str) or not text.strip() or len(text) > 40:
        raise ValueError(f"chord must be a label like G7, Am, C:maj or N, got {text!r}")
    s = text.strip()
    if s.lower() == "none":
        return 0, 0
    if ":" in s or s in ("N", "X"):
        return harmony.parse_chord_label(s)
    head = s.split("/", 1)[0]
    m = _SYMBOL.fullmatch(head)
    if not m or m.group(2) not in _SUFFIXES:
        raise ValueError(f"chord {text!r}: expected a symbol like C, Am, G7, Bbmaj7, F#m7b5 or a label like C:maj")
    return harmony.parse_chord_label(f"{m.group(1)}:{_SUFFIXES[m.group(2)]}")


def parse_key(text) -> int:
    """A key signature: an id 0..12, a major key (`D`, `Eb`, `F#`, `Gb:maj`), a minor key (`Bm`,
    `A:min`: its relative major's signature) or "none" -> key signature id."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if not 0 <= int(text) < harmony.NUM_KEYSIGS:
            raise ValueError(f"key signature id must be 0..12, got {text}")
        return int(text)
    if not isinstance(text, str) or not text.strip() or len(text) > 20:
        raise ValueError(f"key must be like D, Eb, Bm or A:min, got {text!r}")
    s = text.strip()
    if s.lower() == "none":
        return 0
    if s.endswith("m") and ":" not in s:
        s = s[:-1] + ":min"
    elif s.endswith("min") and ":" not in s:
        s = s[:-3] + ":min"
    try:
        return harmony.parse_key_label(s)
    except ValueError:
        raise ValueError(f"key {text!r}: expected e.g. D, Eb, Bm or A:min") from None


def parse_style(text) -> int:
    """A style: an id 0..2 or a name (none, classical, pop) -> style id."""
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if not 0 <= int(text) < harmony.NUM_STYLES:
            raise ValueError(f"style id must be 0..{harmony.NUM_STYLES - 1}, got {text}")
        return int(text)
    if not isinstance(text, str) or text.strip().lower() not in harmony.STYLES:
        raise ValueError(f"style must be one of {', '.join(harmony.STYLES)}, got {text!r}")
    return harmony.STYLES.index(text.strip().lower())
