"""Piano Genie: an 8-button interface to an LSTM autoencoder of expert piano performances.

The public API, imported on first use (so that `import pianogenie` stays cheap, and torch is
imported only by what needs it):

    from pianogenie import PianoGenie
    genie = PianoGenie.load()               # the shipped model (or a run folder / checkpoint)
    key = genie.press(time=0.0, button=3)   # the key (0..87) it plays; genie.velocity its loudness

`load_notes` reads a notes file from `pianogenie prepare`; `load_model` a checkpoint as a torch
model and its Config; `parse_scale`, `parse_pitches`, `allowed_keys` and `scale_names` restrict
the keys a genie may play.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {
    "PianoGenie": "pianogenie.genie",
    "Config": "pianogenie.config",
    "load_notes": "pianogenie.data",
    "load_model": "pianogenie.model",
    "allowed_keys": "pianogenie.scales",
    "parse_pitches": "pianogenie.scales",
    "parse_scale": "pianogenie.scales",
    "scale_names": "pianogenie.scales",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'pianogenie' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
