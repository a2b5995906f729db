"""The MAESTRO kind of source: a folder or official zip with maestro-vX.Y.Z metadata, which
gives every performance its split (`pianogenie.maestro` reads it)."""

from __future__ import annotations

from pathlib import Path

from pianogenie.sources.base import SourceOptions
from pianogenie.util import UserError


def detect(path: Path) -> bool:
    from pianogenie.maestro import metadata_in

    return metadata_in(path)


def open(path: Path, options: SourceOptions):
    from pianogenie.maestro import find_source

    if options.splits_given:
        raise UserError(
            f"{path} is a MAESTRO dataset: its metadata gives the splits "
            "(--splits, --split-fractions and --group-by are for sources without splits)"
        )
    if options.exclude:
        raise UserError(
            f"{path} is a MAESTRO dataset: its metadata lists the performances (--exclude is for "
            "collections of MIDI files)"
        )
    return find_source(path, options.limits)
