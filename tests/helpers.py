"""Helpers the tests share (plain functions and constants; the fixtures built on them are in
conftest.py): tiny MIDI files and MAESTRO layouts, notes files and small models built in code, and
look-alikes of the commands' outputs that no command wrote."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MAESTRO_DIR = SHARED / "data" / "maestro-asap"
REFERENCE_DIR = SHARED / "reference" / "tutorial-2021"

# A small, fast training run (add --max_num_steps=N); TINY_VELOCITY adds a velocity head.
TINY = [
    "--model_rnn_dim=16",
    "--seq_len=16",
    "--batch_size=4",
    "--eval_frequency=5",
    "--summarize_frequency=2",
    "--lr_warmup_steps=2",
]
TINY_VELOCITY = [*TINY, "--velocity_bins=16", "--velocity_hidden=24"]


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
        {
            "canonical_composer": "Test",
            "canonical_title": name,
            "split": split,
            "year": 2018,
            "midi_filename": name,
            "audio_filename": "",
            "duration": 1.0,
        }
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


# Two playable MIDI note lists: (onset beats, duration beats, pitch, velocity)
GOOD_A = [(0.0, 1.0, 60, 80), (0.5, 0.25, 64, 90), (0.5, 0.5, 62, 70), (2.0, 1.0, 108, 127)]
GOOD_B = [(0.0, 0.5, 21, 1), (1.0, 0.5, 55, 100)]


def pretty_reference(midi: bytes) -> np.ndarray:
    """What pretty_midi reads: all non-drum notes, pitch in the piano range, positive duration."""
    import io

    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    rows = [
        (n.start, n.end - n.start, n.pitch - 21, n.velocity)
        for inst in pm.instruments
        if not inst.is_drum
        for n in inst.notes
        if 21 <= n.pitch <= 108 and n.end > n.start
    ]
    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return a[np.lexsort((a[:, 3], a[:, 1], a[:, 2], a[:, 0]))]


def assert_same_notes(ours: np.ndarray, ref: np.ndarray, tol: float) -> None:
    """The issue's criterion: same count, same keys and velocities, onsets and offsets within tol."""
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours[:, 2:], ref[:, 2:])
    np.testing.assert_allclose(ours[:, 0], ref[:, 0], rtol=0, atol=tol)
    np.testing.assert_allclose(ours[:, 0] + ours[:, 1], ref[:, 0] + ref[:, 1], rtol=0, atol=tol)


def tiny_files() -> dict[str, tuple[str, bytes]]:
    """A three-performance MAESTRO layout, one per split."""
    return {
        "2018/a.midi": ("train", build_midi(GOOD_A)),
        "2018/b.midi": ("validation", build_midi(GOOD_B)),
        "2017/c.midi": ("test", build_midi(GOOD_B + [(3.0, 1.0, 30, 30)])),
    }


# ---------------------------------------------------------------------------------------------
# Notes files and models


def performance(
    rng: np.random.Generator, n: int, low: int = 30, high: int = 60, loud: int | None = None
) -> list[list[float]]:
    """A random-walk melody: (onset, duration, key, velocity) rows sorted by onset; velocity 64, or
    drifting around `loud` (so that the history predicts it)."""
    onsets = np.cumsum(rng.uniform(0.05, 0.4, n))
    keys = np.clip(np.cumsum(rng.integers(-3, 4, n)) + (low + high) // 2, low, high)
    v = np.full(n, 64) if loud is None else np.clip(loud + np.cumsum(rng.integers(-2, 3, n)), 1, 127)
    return [[float(t), 0.2, int(k), int(x)] for t, k, x in zip(onsets, keys, v)]


def write_notes(path: Path, data: dict) -> Path:
    """A notes file (the format `pianogenie prepare` writes) holding `data`: {split: [performance]}."""
    path.write_bytes(gzip.compress(json.dumps(data).encode()))
    return path


def random_checkpoint(path, seed: int = 0, **cfg_overrides):
    """A small random-initialised model saved in our checkpoint format."""
    import torch

    from pianogenie.config import Config
    from pianogenie.model import CHECKPOINT_FORMAT, Autoencoder

    torch.manual_seed(seed)
    cfg = Config(**{"model_rnn_dim": 32, **cfg_overrides})
    model = Autoencoder(cfg)
    with torch.no_grad():  # larger weights than the default init, so gates saturate and keys vary
        for p in model.dec.parameters():
            p.mul_(3.0)
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, path)
    return path


def a_performance(n: int, num_buttons: int = 8, seed: int = 1):
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.choice([0.0, 0.01, 0.1, 0.3, 2.0], n)) + 5.0  # includes chords and long gaps
    return times, rng.integers(0, num_buttons, n)


# ---------------------------------------------------------------------------------------------
# Look-alikes: real files of our output formats that no pianogenie command wrote


def foreign_image(fmt: str) -> bytes:
    """A real matplotlib image (PNG, PDF or SVG), carrying matplotlib's own Software/Creator."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    FigureCanvasAgg(fig)
    fig.subplots().plot([1, 2, 3])
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt)
    return buf.getvalue()


def foreign_midi() -> bytes:
    """A real MIDI file written by pretty_midi, with our track name (a name is no proof)."""
    import io

    import pretty_midi

    m = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0, name="Piano Genie")
    piano.notes.append(pretty_midi.Note(80, 60, 0, 1))
    m.instruments.append(piano)
    buf = io.BytesIO()
    m.write(buf)
    return buf.getvalue()


def foreign_tarball() -> bytes:
    """A gzip file that is not a notes file: a one-file tarball."""
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("thesis.tex")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    return buf.getvalue()
