"""`pianogenie decode`: a button performance (MIDI, JSON or CSV) -> a piano performance (MIDI).

Each press goes through `PianoGenie.press`, the same single-step session real-time play uses, so a
file decodes exactly as the presses would have sounded live with the same seed.

Input formats (chosen by extension; other names are sniffed from their first bytes):
- MIDI (`.mid`, `.midi`) from any controller: every note of every track is a press. Distinct pitches
  map to buttons by pitch order (lowest pitch -> button 0). With more than 8 (num_buttons) distinct
  pitches they are folded by pitch-order rank: button = rank * num_buttons // num_distinct, which
  keeps the contour (a higher pitch never gets a lower button) and merges neighbouring pitches.
  Velocity and duration come from the notes.
- JSON: a list of rows, each `{"time": s, "button": b, "duration": s, "velocity": v}` (duration and
  velocity optional) or `[time, button]` / `[time, button, duration]`; `{"presses": [...]}` also works.
- CSV: rows `time,button[,duration]`; an optional header naming the columns (`time`, `button`,
  `duration`, `velocity`) in any order; blank lines and `#` comments are skipped.
Times are seconds from any origin, non-decreasing. Missing durations default to 0.25 s (`--duration`).

Velocity: a press's own velocity (a MIDI controller's, or a JSON/CSV velocity column) is kept; a press
without one gets the model's velocity (its velocity head, see velocity.py) or, for a model without a
head, a fixed 80 (a moderate mezzo-forte). `--genie-velocity` takes the model's everywhere, and
`--velocity N` makes every note N.

Output: a standard MIDI file (one acoustic grand piano track), one note per press at the press's
onset and duration. A piano key cannot sound twice at once, so a note is cut short when its key is
struck again, and presses at the same instant that land on the same key sound as one note.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import mido
import numpy as np
import pretty_midi

from pianogenie.bounded import load_json, read_file
from pianogenie.constants import DEFAULT_DURATION, DEFAULT_VELOCITY, LOWEST_PITCH, NUM_BUTTONS
from pianogenie.genie import PianoGenie
from pianogenie.outputs import atomic_path, check_output, mark, written_by
from pianogenie.util import UserError

log = logging.getLogger(__name__)

MIN_DURATION = 0.005  # seconds: shorter MIDI input notes (e.g. zero-length) are lengthened to this
SAME_ONSET = 1e-3  # seconds: same-key presses closer than this are one note
MIDI_SUFFIXES = {".mid", ".midi", ".smf"}
MAX_INPUT_BYTES = 64 << 20  # a performance file: an hour of presses is well under 1 MB
MAX_PRESSES = 200_000  # an hour at 55 presses a second
PRESS_KEYS = {"time", "button", "duration", "velocity"}
# one hour: pretty_midi refuses to read a file whose last tick is past 1e7 (5,208 s at the 960 ticks
# per beat and 120 bpm written here), so a longer performance would be a file that does not read back
MAX_SECONDS = 3600.0


@dataclasses.dataclass(frozen=True)
class Press:
    time: float  # seconds
    button: int  # 0..num_buttons-1
    duration: float  # seconds, > 0
    velocity: int | None  # 1..127, None where the input gives none


# --------------------------------------------------------------------------------------------------
# Reading button performances


def read_presses(
    path: str | Path,
    num_buttons: int = NUM_BUTTONS,
    *,
    duration: float = DEFAULT_DURATION,
    velocity: int | None = None,
    warn: Callable[[str], None] | None = None,
) -> list[Press]:
    """Read and validate a button performance; any problem is a UserError naming the file (and row).
    What is read but changed on the way (a MIDI file's pitches folded onto the buttons) is told to
    `warn` (default: this module's logger)."""
    path = Path(path)
    data = read_file(path, "input file", MAX_INPUT_BYTES)
    kind = _kind(path, data)
    if kind == "midi":
        presses = _read_midi(path, data, num_buttons, warn or log.warning)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise UserError(f"{path} is neither a MIDI file nor UTF-8 text (JSON or CSV)") from None
        rows = _json_rows(path, text) if kind == "json" else _csv_rows(path, text)
        if len(rows) > MAX_PRESSES:
            raise UserError(f"{path} holds {len(rows)} presses; at most {MAX_PRESSES} are decoded")
        presses = [_press(path, where, row, num_buttons, duration, velocity) for where, row in rows]
    if len(presses) > MAX_PRESSES:
        raise UserError(f"{path} holds {len(presses)} presses; at most {MAX_PRESSES} are decoded")
    return _validated(path, presses)


def _kind(path: Path, data: bytes) -> str:
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        return "midi"
    if suffix == ".json":
        return "json"
    if suffix in {".csv", ".txt", ".tsv"}:
        return "csv"
    head = data.lstrip()[:4]
    if data[:4] == b"MThd":
        return "midi"
    return "json" if head[:1] in (b"[", b"{") else "csv"


def _read_midi(path: Path, data: bytes, num_buttons: int, warn: Callable[[str], None]) -> list[Press]:
    # mido rather than pretty_midi: a controller's tap can be a note-on and note-off at the same tick,
    # which pretty_midi drops as a zero-length note but is still a press.
    notes: list[list] = []  # [start, end, pitch, velocity], in onset order
    sounding: dict[tuple[int, int], list[int]] = defaultdict(list)  # (channel, pitch) -> open note indices
    now = 0.0
    try:
        for msg in mido.MidiFile(file=io.BytesIO(data)):  # all tracks merged, msg.time in seconds
            now += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[(msg.channel, msg.note)].append(len(notes))
                notes.append([now, None, msg.note, msg.velocity])
            elif msg.type in ("note_on", "note_off") and sounding[(msg.channel, msg.note)]:
                notes[sounding[(msg.channel, msg.note)].pop(0)][1] = now
    except EOFError:
        raise UserError(f"cannot read MIDI file {path}: it is truncated (it ends inside a track)") from None
    except ZeroDivisionError:
        raise UserError(f"cannot read MIDI file {path}: its header gives 0 ticks per beat") from None
    except Exception as e:  # mido raises many types (OSError, KeyError, ValueError, TypeError...)
        raise UserError(f"cannot read MIDI file {path}: {type(e).__name__}: {' '.join(str(e).split())}") from None
    notes.sort(key=lambda n: (n[0], n[2]))
    if not notes:
        raise UserError(f"MIDI file {path} has no notes to use as button presses")
    pitches = sorted({n[2] for n in notes})
    if len(pitches) > num_buttons:
        warn(f"{path.name} uses {len(pitches)} distinct pitches; folded onto {num_buttons} buttons by pitch order")
    button = {p: r * num_buttons // len(pitches) if len(pitches) > num_buttons else r for r, p in enumerate(pitches)}
    # a note never released lasts to the end of the file
    return [
        Press(start, button[pitch], max((now if end is None else end) - start, MIN_DURATION), velocity)
        for start, end, pitch, velocity in notes
    ]


def _json_rows(path: Path, text: str) -> list[tuple[str, dict | list]]:
    data = load_json(text, str(path), max_depth=3)  # {"presses": [{...}]} at most
    if isinstance(data, dict) and "presses" in data:
        data = data["presses"]
    if not isinstance(data, list):
        raise UserError(f"{path}: expected a JSON list of presses (rows of time, button[, duration])")
    return [(f"row {i}", row) for i, row in enumerate(data)]


def _csv_rows(path: Path, text: str) -> list[tuple[str, dict]]:
    lines = [
        (n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        return []
    dialect = csv.excel_tab if "\t" in lines[0][1] and "," not in lines[0][1] else csv.excel
    try:
        cells = [
            (n, [c.strip() for c in row])
            for (n, _), row in zip(lines, csv.reader([line for _, line in lines], dialect))
        ]
    except csv.Error as e:  # a field past csv's size limit, a NUL byte, ...
        raise UserError(f"{path} is not a CSV of presses ({e})") from None
    names = ["time", "button", "duration"]
    if cells and not _is_number(cells[0][1][0]):  # a header row
        names = [c.lower() for c in cells[0][1]]
        missing = {"time", "button"} - set(names)
        unknown = set(names) - {"time", "button", "duration", "velocity"}
        if missing or unknown:
            raise UserError(
                f"{path} line {cells[0][0]}: header must name columns time, button[, duration, velocity] "
                f"(got {', '.join(cells[0][1])})"
            )
        cells = cells[1:]
    rows = []
    for n, row in cells:
        if len(row) > len(names) or len(row) < 2:
            raise UserError(f"{path} line {n}: expected {', '.join(names)} (got {len(row)} values)")
        try:
            rows.append((f"line {n}", {k: float(v) for k, v in zip(names, row) if v != ""}))
        except ValueError:
            raise UserError(f"{path} line {n}: not a number in {','.join(row)!r}") from None
    return rows


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _press(path: Path, where: str, row, num_buttons: int, duration: float, velocity: int | None) -> Press:
    if isinstance(row, list):
        if not 2 <= len(row) <= 3:
            raise UserError(f"{path} {where}: expected [time, button] or [time, button, duration], got {row!r}")
        row = dict(zip(["time", "button", "duration"], row))
    if not isinstance(row, dict) or "time" not in row or "button" not in row:
        raise UserError(f"{path} {where}: a press needs a time and a button, got {row!r}"[:300])
    unknown = sorted(set(row) - PRESS_KEYS)
    if unknown:  # a misspelt key (velocty) would vanish silently; CSV refuses unknown columns too
        raise UserError(
            f"{path} {where}: unknown key(s) {', '.join(map(repr, unknown))}"[:240]
            + f" (a press has {', '.join(sorted(PRESS_KEYS))})"
        )

    def number(key: str, default=None) -> float:
        v = row.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise UserError(f"{path} {where}: {key} must be a finite number, got {v!r}")
        return float(v)

    t, b, d = number("time"), number("button"), number("duration", duration)
    v = number("velocity") if "velocity" in row else None if velocity is None else float(velocity)
    if not b.is_integer() or not 0 <= b < num_buttons:
        raise UserError(f"{path} {where}: button {row['button']!r} out of range (integers 0..{num_buttons - 1})")
    if d <= 0:
        raise UserError(f"{path} {where}: duration must be > 0, got {row.get('duration')!r}")
    if v is not None and (not v.is_integer() or not 1 <= v <= 127):
        raise UserError(f"{path} {where}: velocity must be an integer 1..127, got {row.get('velocity')!r}")
    return Press(t, int(b), d, None if v is None else int(v))


def _validated(path: Path, presses: list[Press]) -> list[Press]:
    if not presses:
        raise UserError(f"{path} holds no button presses")
    for i, p in enumerate(presses):
        if p.time < 0:
            raise UserError(f"{path}: press {i} has a negative time ({p.time:g} s)")
        if p.time + p.duration > MAX_SECONDS:
            raise UserError(
                f"{path}: press {i} ends at {p.time + p.duration:g} s; a performance must end within {MAX_SECONDS:g} s"
            )
        if i and p.time < presses[i - 1].time:
            raise UserError(
                f"{path}: press {i} at {p.time:g} s comes before the previous one at "
                f"{presses[i - 1].time:g} s (times must be non-decreasing)"
            )
    return presses


# --------------------------------------------------------------------------------------------------
# Decoding


def decode_performance(
    presses: Sequence[Press], genie: PianoGenie, temperature: float = 0.25, keys: Sequence[int] | None = None
) -> np.ndarray:
    """The key (0..87) the decoder plays for each press, in order, from a fresh session: (N,) int.
    `keys`: the allowed key indices (None = all)."""
    return decode_with_velocities(presses, genie, temperature, keys=keys)[0]


def decode_with_velocities(
    presses: Sequence[Press],
    genie: PianoGenie,
    temperature: float = 0.25,
    input_velocity: bool = True,
    keys: Sequence[int] | None = None,
    key=None,
    chords=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keys (N,) and velocities (N,) played for each press from a fresh session: a press's own
    velocity where it has one and `input_velocity`, else the model's (fixed without a head). The
    model's velocity history follows what is played. `keys`: the allowed key indices (None = all).
    A conditioned model's conditions: `key` (a key signature for every press, see
    `PianoGenie.condition_ids`), `chords` ((root, family) harmony.Segments, e.g. from
    `harmony.read_chord_file`: the chord in force at each press's time; none between chords)."""
    genie.reset()
    played, velocities = np.empty(len(presses), np.int64), np.empty(len(presses), np.int64)
    if chords is not None:
        times = np.array([p.time for p in presses], np.float64)
        roots, families = chords[0].at(times), chords[1].at(times)
    for i, p in enumerate(presses):
        chord = None if chords is None else (int(roots[i]), int(families[i]))
        played[i] = genie.press(
            p.time, p.button, temperature, keys, velocity=p.velocity if input_velocity else None, key=key, chord=chord
        )
        velocities[i] = genie.velocity
    return played, velocities


def performance_midi(
    presses: Sequence[Press], keys: Sequence[int] | np.ndarray, velocities: Sequence[int] | np.ndarray | None = None
) -> pretty_midi.PrettyMIDI:
    """A one-track piano MIDI with a note per press (see the module docstring for re-struck keys);
    velocities default to the presses' own (DEFAULT_VELOCITY where they have none)."""
    if velocities is None:
        velocities = [DEFAULT_VELOCITY if p.velocity is None else p.velocity for p in presses]
    midi = pretty_midi.PrettyMIDI(resolution=960, initial_tempo=120.0)  # 1 tick ~ 0.5 ms
    midi.text_events.append(pretty_midi.Text(mark("decode"), 0.0))  # the proof that decode wrote the file
    piano = pretty_midi.Instrument(program=0, name="Piano Genie")
    sounding: dict[int, pretty_midi.Note] = {}  # pitch -> its latest note
    for p, k, v in zip(presses, keys, velocities):
        pitch, v = int(k) + LOWEST_PITCH, int(v)
        prev = sounding.get(pitch)
        if prev is not None and prev.end > p.time:
            if p.time - prev.start < SAME_ONSET:
                prev.end, prev.velocity = max(prev.end, p.time + p.duration), max(prev.velocity, v)
                continue
            prev.end = p.time
        sounding[pitch] = note = pretty_midi.Note(v, pitch, p.time, p.time + p.duration)
        piano.notes.append(note)
    midi.instruments.append(piano)
    return midi


def write_midi(midi: pretty_midi.PrettyMIDI, path: str | Path, *, force: bool = False) -> None:
    """Write `midi` atomically, only once it reads back (pretty_midi) with the same notes."""
    path = check_output(path, flag="-o", ours=written_by("decode"), what="MIDI file", force=force)
    with atomic_path(path) as tmp:
        midi.write(str(tmp))
        try:
            back = pretty_midi.PrettyMIDI(str(tmp))
            ok = sum(len(i.notes) for i in back.instruments) == sum(len(i.notes) for i in midi.instruments)
        except Exception as e:  # whatever pretty_midi raises on a file it cannot read
            ok, why = False, f"{type(e).__name__}: {e}"
        else:
            why = "the notes read back differ"
        if not ok:
            raise UserError(f"the MIDI file for {path} would not read back ({why}); nothing written")
