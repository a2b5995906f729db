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
