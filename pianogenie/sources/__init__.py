"""Where performances come from: one interface, one module per kind of source.

`open_source(path, options) -> Source` asks each kind in `KINDS`, in order, whether `path` is
one of its own (`detect`) and opens it with the first that says yes; `prepare` only ever sees
the `Source` interface (`pianogenie.sources.base`). A new layout is one new module listed in
KINDS, with `detect(path) -> bool` and `open(path, options) -> Source`.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from pianogenie.sources.base import Limits, Performance, Source, SourceOptions, SplitRule
from pianogenie.util import UserError

# most specific first: a MAESTRO folder is also a folder of MIDI files
KINDS = ("pianogenie.sources.maestro", "pianogenie.sources.collection")

EXPECTED = (
    "a MAESTRO folder or zip (maestro-vX.Y.Z.json/.csv with the MIDI files), or any folder, "
    "zip or tar(.gz) of MIDI files (.mid/.midi)"
)


def open_source(path: str | os.PathLike, options: SourceOptions | None = None) -> Source:
    path = Path(path)
    if not os.path.lexists(path):
        raise UserError(f"{path} does not exist; expected {EXPECTED}")
    options = options or SourceOptions()
    for name in KINDS:
        kind = importlib.import_module(name)
        if kind.detect(path):
            return kind.open(path, options)
    raise UserError(f"{path} is neither a folder nor a zip or tar archive; expected {EXPECTED}")


__all__ = ["KINDS", "Limits", "Performance", "Source", "SourceOptions", "SplitRule", "open_source"]
