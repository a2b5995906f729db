"""Named training recipes shipped with the package: `pianogenie train --config NAME`.

Each `NAME.json` holds an `about` line and the config keys it sets (the rest are `Config`'s
defaults). `--config` takes a config file path first; a name that is no file is looked up here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pianogenie.config import Config
from pianogenie.util import UserError

RECIPES_DIR = Path(__file__).resolve().parent


def names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.json"))


def about(name: str) -> str:
    return json.loads((RECIPES_DIR / f"{name}.json").read_text())["about"]


def recipe(name: str) -> Config:
    """The config of recipe `name`."""
    path = RECIPES_DIR / f"{name}.json"
    if not path.is_file():
        raise UserError(f"no recipe named {name!r} (recipes: {', '.join(names())})")
    keys = json.loads(path.read_text())
    keys.pop("about")
    return Config.from_dict(keys)


def load_config(file_or_name: str | os.PathLike) -> Config:
    """`--config`: a config file if one exists at that path, else a recipe name."""
    if Path(file_or_name).is_file() or os.sep in str(file_or_name) or str(file_or_name).endswith(".json"):
        return Config.load(file_or_name)
    if str(file_or_name) not in names():
        raise UserError(
            f"--config {file_or_name}: no such config file, and no recipe of that name (recipes: {', '.join(names())})"
        )
    return recipe(str(file_or_name))
