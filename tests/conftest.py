"""Shared pytest fixtures: where the read-only shared data lives, and skipping cleanly without it.

`../shared` (next to the repository) holds real MAESTRO-layout MIDI and the 2021 tutorial's
reference model. Both are read in place, never copied into the repository; tests that need them
skip with a reason naming the missing path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MAESTRO_DIR = SHARED / "data" / "maestro-asap"
REFERENCE_DIR = SHARED / "reference" / "tutorial-2021"


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Tests never read or fill the user's cache folder (downloads, load_notes' binary copies)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PIANOGENIE_CACHE", str(tmp_path_factory.mktemp("pianogenie-cache")))
    yield
    mp.undo()


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"shared data not available: {path} is absent")
    return path


@pytest.fixture(scope="session")
def maestro_dir() -> Path:
    """The MAESTRO-layout folder of real performances (`../shared/data/maestro-asap`)."""
    return _require(MAESTRO_DIR)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The 2021 tutorial's pretrained Piano Genie (`../shared/reference/tutorial-2021`)."""
    return _require(REFERENCE_DIR)


# ---------------------------------------------------------------------------------------------
# Tiny MIDI files and MAESTRO layouts built in code


def build_midi(
    notes: list[tuple[float, float, int, int]] | None = None,
    *,
    events: list[tuple[int, str, int, int, int]] | None = None,
    ticks_per_beat: int = 480,
    tempos: list[tuple[int, int]] = ((0, 500000),),
    drums: list[tuple[float, float, int, int]] = (),
) -> bytes:
    """A type-1 MIDI file: a tempo track, then one piano track (and one drum track if `drums`).

    `notes` are (onset beats, duration beats, pitch, velocity); `events` are raw
    (tick, "note_on"|"note_off", channel, pitch, velocity) for the piano track, for cases
    that notes cannot express (overlaps, note-on velocity 0, ...).
    """
    import io

    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    tempo_track = mido.MidiTrack()
    last = 0
    for tick, tempo in tempos:
        tempo_track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=tick - last))
        last = tick
    mf.tracks.append(tempo_track)

    def track(evs: list[tuple[int, str, int, int, int]]) -> mido.MidiTrack:
        tr, last = mido.MidiTrack(), 0
        for tick, kind, ch, pitch, vel in sorted(evs, key=lambda e: e[0]):  # stable: keeps given order per tick
            tr.append(mido.Message(kind, channel=ch, note=pitch, velocity=vel, time=tick - last))
            last = tick
        return tr

    def note_events(ns, ch):
        evs = []
        for on, dur, pitch, vel in ns:
            evs.append((round(on * ticks_per_beat), "note_on", ch, pitch, vel))
            evs.append((round((on + dur) * ticks_per_beat), "note_off", ch, pitch, 0))
        return evs

    mf.tracks.append(track((events or []) + note_events(notes or [], 0)))
    if drums:
        mf.tracks.append(track(note_events(drums, 9)))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def write_maestro(
    root: Path,
    files: dict[str, tuple[str, bytes | None]],
    *,
    version: str = "3.0.0",
    formats: tuple[str, ...] = ("json",),
) -> Path:
    """A MAESTRO folder at `root`: {midi_filename: (split, bytes or None = listed but missing)}.

    v3 JSON is column-oriented, v2 JSON a list of records, as the official metadata.
    """
    import csv
    import json

    root.mkdir(parents=True, exist_ok=True)
    rows = [
        {"canonical_composer": "Test", "canonical_title": name, "split": split, "year": 2018,
         "midi_filename": name, "audio_filename": "", "duration": 1.0}
        for name, (split, _) in files.items()
    ]
    for name, (_, data) in files.items():
        if data is not None:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes(data)
    if "json" in formats:
        if version.startswith("2"):
            obj = rows
        else:
            obj = {col: {str(i): r[col] for i, r in enumerate(rows)} for col in rows[0]}
        (root / f"maestro-v{version}.json").write_text(json.dumps(obj))
    if "csv" in formats:
        with open(root / f"maestro-v{version}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    return root


def zip_folder(folder: Path, zip_path: Path, top: str) -> Path:
    """Zip `folder` the way the official MAESTRO zips are laid out: everything under `top/`."""
    import zipfile

    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, f"{top}/{p.relative_to(folder).as_posix()}")
    return zip_path


@pytest.fixture
def make_midi():
    """Factory fixture: `make_midi(notes, events=..., tempos=..., drums=...) -> bytes` (see build_midi)."""
    return build_midi


@pytest.fixture
def make_maestro():
    """Factory fixture: `make_maestro(root, {name: (split, bytes|None)}, version=, formats=) -> root`."""
    return write_maestro
