"""The `pianogenie` command itself: its version, and help that imports only what it shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pianogenie
from pianogenie.cli import SUBCOMMANDS, main

REPO = Path(__file__).resolve().parents[1]

# Runs the CLI in-process in a fresh interpreter, then reports which heavy modules got imported.
PROBE = """
import json, sys
from pianogenie.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "matplotlib", "pretty_midi", "tensorboard")
                                                if m in sys.modules)}), file=sys.stderr)
"""


def probe(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60, env=env)
    return json.loads(r.stderr.strip().splitlines()[-1])


def test_version_has_one_source(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"pianogenie {pianogenie.__version__}"
    assert 'dynamic = ["version"]' in (REPO / "pyproject.toml").read_text()


@pytest.mark.parametrize("argv", [["--help"], *[[name, "--help"] for name in SUBCOMMANDS]], ids=" ".join)
def test_help_imports_no_torch(argv):
    result = probe(*argv)
    assert result == {"code": 0, "heavy": []}


@pytest.mark.slow
def test_import_pianogenie_is_cheap_and_the_api_loads_on_use():
    code = (
        "import sys, pianogenie; assert 'torch' not in sys.modules and 'numpy' not in sys.modules; "
        "from pianogenie import PianoGenie, load_model, load_notes, parse_scale, allowed_keys; "
        "assert PianoGenie.__module__ == 'pianogenie.genie'; "
        "assert sorted(allowed_keys(parse_scale('C major')))[:3] == [0, 2, 3]; "
        "import pianogenie.model; assert load_model is pianogenie.model.load_model; "
        "print(set(pianogenie.__all__) <= set(dir(pianogenie)))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "True"
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        pianogenie.nothing_here  # noqa: B018
