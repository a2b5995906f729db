"""Interrupts: SIGINT or SIGTERM at any moment of a real run ends it promptly, with one line and
exit status 130/143, no traceback, no partial file (output folder and cache), no process left.

Each try runs the real CLI in its own process group and sends one signal at a moment drawn from a
seeded generator, to the whole group (as a terminal's Ctrl-C does) or to the parent only. The
count is bounded (PIANOGENIE_SIGNAL_TRIES, default 4 per case) so the suite stays fast.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import build_midi, write_maestro

from pianogenie.notes_file import load_notes
from pianogenie.prepare import report_path

TRIES = int(os.environ.get("PIANOGENIE_SIGNAL_TRIES", "4"))
DEADLINE = 2.0  # seconds from the signal to the end of every process of the command


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    rng = random.Random(0)
    notes = [(i * 0.1, 0.05, rng.randint(21, 108), rng.randint(1, 127)) for i in range(4000)]
    midi = build_midi(notes)
    return write_maestro(
        tmp_path_factory.mktemp("sig") / "m",
        {f"p{i}.midi": ("train" if i % 5 else "validation", midi) for i in range(200)},
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def interrupt(cmd: list[str], env: dict, delay: float, sig: int, group: bool) -> tuple[int, str, float]:
    """Run `cmd`, send `sig` after `delay` s; -> (exit status, stderr, seconds from signal to the end of
    the whole process group). A group still alive after the deadline is killed and reported."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    time.sleep(delay)
    sent = time.monotonic()
    if proc.poll() is None:
        (os.killpg if group else os.kill)(proc.pid, sig)
    try:
        _, err = proc.communicate(timeout=DEADLINE + 8)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{cmd[3]} hung after {signal.Signals(sig).name} at {delay:.2f} s")
    while _group_alive(proc.pid) and time.monotonic() - sent < DEADLINE + 8:
        time.sleep(0.02)
    took = time.monotonic() - sent
    if _group_alive(proc.pid):
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"worker processes outlived {cmd[3]} after {signal.Signals(sig).name} at {delay:.2f} s")
    return proc.returncode, err.decode(errors="replace"), took


@pytest.fixture(scope="module")
def run_seconds(dataset, tmp_path_factory) -> float:
    """How long an uninterrupted run takes here and now: signals are sent within that span."""
    out = tmp_path_factory.mktemp("full") / "notes.json.gz"
    env = {**os.environ, "PIANOGENIE_CACHE": str(out.parent / "cache")}
    start = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "pianogenie", "prepare", str(dataset), "-o", str(out), "--workers", "2"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=120,
    )
    return time.monotonic() - start


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("group", [True, False], ids=["group", "parent"])
def test_prepare_interrupted_at_any_moment(dataset, run_seconds, tmp_path, sig, group):
    rng = random.Random(f"{sig}-{group}")  # seeded: the same moments every run
    cache = tmp_path / "cache"
    env = {**os.environ, "PIANOGENIE_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    outcomes = []
    for i in range(TRIES):
        out_dir = tmp_path / f"out{i}"
        out = out_dir / "notes.json.gz"
        # before 0.25 s the interpreter itself is starting, out of our reach; the run ends at run_seconds
        delay = 0.25 + rng.random() * max(run_seconds - 0.3, 0.1)
        cmd = [sys.executable, "-m", "pianogenie", "prepare", str(dataset), "-o", str(out), "--workers", "2"]
        code, err, took = interrupt(cmd, env, delay, sig, group)
        outcomes.append((round(delay, 2), code))
        if code == -sig and not err and not out_dir.exists():
            continue  # killed while the interpreter itself started, before any of our code ran
        assert "Traceback" not in err and "Error" not in err, (delay, err)
        assert code in (0, 128 + sig), (delay, code, err)
        if code:
            assert took < DEADLINE, (delay, took)
            assert err.strip().splitlines()[-1].startswith("pianogenie prepare: interrupted"), err
            assert len(err.strip().splitlines()) == 1, err
        files = sorted(p.name for p in out_dir.iterdir()) if out_dir.exists() else []
        assert files in ([], ["notes.json.gz", "notes.report.json"]), (delay, files)  # both or neither
        if files:
            assert len(load_notes(out)["train"]) == 160 and report_path(out).stat().st_size > 0
        leftovers = [p.name for p in cache.rglob("*.tmp")] if cache.exists() else []
        assert leftovers == [], (delay, leftovers)
    assert any(code > 0 for _, code in outcomes), f"no try was interrupted: {outcomes}"


@pytest.mark.slow
def test_decode_interrupted_at_any_moment(tmp_path):
    rng = random.Random(1)
    src = tmp_path / "presses.csv"
    src.write_text("".join(f"{i * 0.01:.2f},{i % 8}\n" for i in range(20000)))
    for i in range(TRIES):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        out = tmp_path / f"o{i}" / "out.mid"
        cmd = [sys.executable, "-m", "pianogenie", "decode", str(src), "-o", str(out), "--seed", "1"]
        code, err, took = interrupt(cmd, dict(os.environ), rng.uniform(0.25, 1.5), sig, group=True)
        if code == -sig and not err and not out.parent.exists():
            continue  # killed while the interpreter itself started, before any of our code ran
        assert "Traceback" not in err and code in (0, 128 + sig), err
        if code:
            assert took < DEADLINE and len(err.strip().splitlines()) == 1, (took, err)
            assert not out.parent.exists() or list(out.parent.iterdir()) == []


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(__file__).resolve().parent.parent / "pianogenie" / "web" / "node_modules" / "@audio-samples").is_dir(),
    reason="the piano samples are not installed (npm ci --prefix pianogenie/web)",
)
def test_build_site_replace_interrupted_at_any_moment(tmp_path):
    """A rebuild interrupted anywhere leaves OUT as the previous build or the new one, complete
    (every file as its marker's SHA-256 records), no temporary folder, and one line."""
    import hashlib
    import json

    out = tmp_path / "www"
    cmd = [sys.executable, "-m", "pianogenie", "build-site", str(out)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    seconds = time.monotonic() - start
    rng = random.Random(2)
    for _i in range(TRIES):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        delay = 0.25 + rng.random() * max(seconds - 0.25, 0.1)
        code, err, took = interrupt(cmd, dict(os.environ), delay, sig, group=rng.random() < 0.5)
        if code == -sig and not err:
            continue  # killed while the interpreter itself started, before any of our code ran
        assert "Traceback" not in err and code in (0, 128 + sig), (delay, err)
        if code:
            assert took < DEADLINE and len(err.strip().splitlines()) == 1, (delay, took, err)
        marker = json.loads((out / "pianogenie-site.json").read_text())
        for rel, digest in marker["sha256"].items():
            assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, (delay, rel)
        assert [p.name for p in tmp_path.iterdir()] == ["www"], (delay, list(tmp_path.iterdir()))


@pytest.mark.slow
def test_signal_during_start_up_is_one_line(tmp_path):
    """SIGINT/SIGTERM while the CLI starts (imports, argument parsing): one line and 130/143, from the
    first line of our package on. Earlier, Python itself is starting (in a development install, its
    site processing of the editable install's .pth): those tries are told apart and not counted."""
    start = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    bare = time.monotonic() - start  # the interpreter's own start-up, here and now
    rng = random.Random(3)
    ours = 0
    for _i in range(TRIES * 3):
        sig = rng.choice([signal.SIGINT, signal.SIGTERM])
        delay = bare + rng.random() * 0.06
        cmd = [sys.executable, "-m", "pianogenie", "decode", str(tmp_path / "none.csv"), "-o", str(tmp_path / "o.mid")]
        code, err, _ = interrupt(cmd, dict(os.environ), delay, sig, group=False)
        frames = [line for line in err.splitlines() if line.strip().startswith("File ")]
        ours_spoke = any(line.startswith("pianogenie ") for line in err.splitlines())
        if code in (-sig, 1) and not ours_spoke and not any("/pianogenie/" in f for f in frames):
            continue  # before our package: the interpreter's start-up
        assert not any("/pianogenie/" in f for f in frames), (delay, err)
        assert code in (2, 128 + sig) and len(err.strip().splitlines()) == 1, (delay, code, err)
        ours += 1
    assert ours >= TRIES, f"only {ours} tries reached our code"
