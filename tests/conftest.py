"""Shared pytest fixtures: where the read-only shared data lives (skipping cleanly without it), a
small random checkpoint and tiny notes files. The plain helpers they use are in helpers.py.

`../shared` (next to the repository) holds real MAESTRO-layout MIDI and the 2021 tutorial's
reference model. Both are read in place, never copied into the repository; tests that need them
skip with a reason naming the missing path.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import (
    MAESTRO_DIR,
    REFERENCE_DIR,
    build_midi,
    performance,
    random_checkpoint,
    write_maestro,
    write_notes,
)


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


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory) -> Path:
    """A small random model in our checkpoint format (read-only: tests never change it)."""
    return random_checkpoint(tmp_path_factory.mktemp("model") / "model.pt")


@pytest.fixture
def notes_file(tmp_path) -> Path:
    """A tiny notes file: train (including a short and two edge-of-range performances) and validation."""
    rng = np.random.default_rng(0)
    return write_notes(
        tmp_path / "notes.json.gz",
        {
            "train": [
                performance(rng, 60),
                performance(rng, 9),
                performance(rng, 40, 0, 8),
                performance(rng, 40, 80, 87),
            ],
            "validation": [performance(rng, 40), performance(rng, 10)],
        },
    )


@pytest.fixture
def velocity_notes_file(tmp_path) -> Path:
    """A tiny notes file whose velocities drift around a loudness per performance."""
    rng = np.random.default_rng(0)
    return write_notes(
        tmp_path / "notes.json.gz",
        {
            "train": [performance(rng, 60, loud=40), performance(rng, 50, loud=100), performance(rng, 9, loud=70)],
            "validation": [performance(rng, 40, loud=50), performance(rng, 40, loud=90)],
        },
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """One of each input the commands read (a checkpoint, a notes file, 64 presses, a run folder
    with metrics, a MAESTRO folder, a gold melodies file) and their folder, made once per module."""
    d = tmp_path_factory.mktemp("inputs")
    ckpt = random_checkpoint(d / "model.pt")
    notes = d / "notes.json.gz"
    perf = [[i * 0.2, 0.1, 30 + i % 20, 64] for i in range(40)]
    notes.write_bytes(gzip.compress(json.dumps({"train": [perf], "validation": [perf]}).encode()))
    # 64 presses: enough to pass a press cap a test lowers below it
    (d / "presses.csv").write_text("".join(f"{i * 0.1:.1f},{i % 8}\n" for i in range(64)))
    run = d / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 0, "split": "train", "loss": 1.0}) + "\n")
    maestro = write_maestro(d / "m", {"a.midi": ("train", build_midi([(0, 1, 60, 80)]))})
    gold = d / "gold.json"
    gold.write_text(
        json.dumps({"melodies": [{"name": "m", "midi_pitches": [60, 62, 64], "buttons_1_to_8": [1, 2, 3]}]})
    )
    return {
        "ckpt": ckpt,
        "notes": notes,
        "csv": d / "presses.csv",
        "run": run,
        "maestro": maestro,
        "gold": gold,
        "dir": d,  # the folder they are in: outputs that are refused before writing may name it
    }
