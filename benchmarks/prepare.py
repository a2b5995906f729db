"""`pianogenie prepare` end to end vs plain serial pretty_midi parsing, plus `load_notes` of the result.

Issue 2's goals, on the 2-core development machine: `prepare` (parse + validate + write the
compressed file, run as the CLI in a fresh process) at least 15x faster than parsing the same
files serially with pretty_midi alone, and `load_notes` of the result in at most 1.5 s. The
pretty_midi baseline is measured in the same run (about a minute for the 939 shared files).

    .venv/bin/python benchmarks/prepare.py [--source DIR_OR_ZIP] [--limit N] [--workers N]

`load_notes` is timed as it runs after `prepare` (which leaves a binary copy of the notes in
the cache folder) and with a cold cache (parsing the JSON). Times are wall-clock; the load average is printed because other jobs on the machine slow
both sides (the serial baseline uses one core, prepare all of them). prepare is timed twice,
each in a fresh process: through the `pianogenie` CLI, whose start-up imports every
subcommand's module (torch included), and as `prepare()` called from a bare interpreter.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED_MAESTRO = Path(__file__).resolve().parents[2] / "shared" / "data" / "maestro-asap"
GOAL_RATIO, GOAL_LOAD_S = 15.0, 1.5
STDLIB_JSON_LOAD_S = 4.8  # the standard library read the same notes back in 4.8 s on this machine


def pretty_midi_serial(source, limit: int | None) -> tuple[float, int]:
    """Seconds to parse the files with pretty_midi, one after another, and the notes it found."""
    import io

    import pretty_midi

    perfs = source.performances[:limit] if limit else source.performances
    t0 = time.perf_counter()
    n = 0
    for p in perfs:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(source.read(p.midi_filename)))
        n += sum(len(inst.notes) for inst in pm.instruments if not inst.is_drum)
    return time.perf_counter() - t0, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SHARED_MAESTRO, help="MAESTRO folder or zip (default: ../shared)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N performances (quick runs)")
    ap.add_argument("--workers", type=int, default=None, help="prepare's --workers (default: all cores)")
    ap.add_argument("--skip-baseline", action="store_true", help="do not run the (slow) pretty_midi baseline")
    args = ap.parse_args()

    from pianogenie.maestro import find_source
    from pianogenie.notes_file import load_notes

    source = find_source(args.source)
    count = min(args.limit or len(source.performances), len(source.performances))
    print(
        f"source: {args.source} ({count} performances), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}"
    )

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "maestro.json.gz"
        os.environ["PIANOGENIE_CACHE"] = str(Path(tmp) / "cache")  # a cold cache, for this run only
        cmd = [sys.executable, "-m", "pianogenie", "prepare", str(args.source), "-o", str(out)]
        cmd += ["--limit", str(args.limit)] if args.limit else []
        cmd += ["--workers", str(args.workers)] if args.workers else []
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        t_cli = time.perf_counter() - t0

        code = (
            "from pianogenie.maestro import find_source; from pianogenie.prepare import prepare; "
            f"prepare(find_source({str(args.source)!r}), {str(out)!r}, workers={args.workers}, limit={args.limit})"
        )
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        t_prepare = time.perf_counter() - t0
        size_mb = out.stat().st_size / 1e6

        t0 = time.perf_counter()
        notes = load_notes(out)  # prepare left a binary copy in the cache folder
        t_load = time.perf_counter() - t0
        n_notes = sum(len(a) for perfs in notes.values() for a in perfs)
        del notes
        shutil.rmtree(Path(tmp) / "cache")
        t0 = time.perf_counter()
        load_notes(out)  # parsing the JSON itself
        t_load_json = time.perf_counter() - t0

        t_json = None
        if not args.skip_baseline:  # the reading baseline: standard library gzip + json
            import gzip
            import json

            t0 = time.perf_counter()
            with gzip.open(out, "rt") as f:
                json.load(f)
            t_json = time.perf_counter() - t0

    print(f"prepare (CLI, end to end):   {t_cli:7.2f} s")
    print(f"prepare() in a fresh process:{t_prepare:7.2f} s  -> {n_notes} notes, {size_mb:.1f} MB gzip")
    print(
        f"load_notes after prepare:    {t_load:7.2f} s  (goal <= {GOAL_LOAD_S} s: {'met' if t_load <= GOAL_LOAD_S else 'NOT met'})"
    )
    print(f"load_notes, cold cache:      {t_load_json:7.2f} s  (parsing the JSON)")
    if t_json is not None:
        print(
            f"stdlib gzip + json.load:     {t_json:7.2f} s  ({t_json / t_load_json:.1f}x the cold load_notes; "
            f"measured before at {STDLIB_JSON_LOAD_S} s)"
        )
    if not args.skip_baseline:
        t_pm, n_pm = pretty_midi_serial(source, args.limit)
        print(f"pretty_midi serial parse:    {t_pm:7.2f} s  -> {n_pm} notes (before dropping unplayable ones)")
        for name, t in (("prepare()", t_prepare), ("CLI", t_cli)):
            ratio = t_pm / t
            print(
                f"speed-up {name} vs pretty_midi: {ratio:.1f}x (goal >= {GOAL_RATIO:.0f}x: {'met' if ratio >= GOAL_RATIO else 'NOT met'})"
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
