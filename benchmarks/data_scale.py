"""`prepare` and training start at 1x, 4x, 16x and 64x the shared set: time and memory against size.

Issue goals, on the 2-core development machine: peak RSS of `prepare` and of `train`'s start at
most 1.5 GB at 64x (~60,000 files, ~190 M notes), prepare time per file at 64x within 1.2x of
1x's, and training start (command to first step done) at most 10 s at 64x.

    nice .venv/bin/python benchmarks/data_scale.py [--source DIR] [--copies 1,4,16,64] [--workers N]

Each size is a folder of symlinks (new names: copyJ/<original path>) under a temporary folder with
a MAESTRO metadata CSV listing every copy with its original split, so the copies are distinct
performances (a plain collection would count byte-identical files once). For each, in fresh
processes timed by /usr/bin/time (wall and peak RSS; the RSS of a command with worker processes
is its largest process's, parent or worker):
- `pianogenie prepare COPIES -o STORE` (a notes store folder: notes go out as they are parsed);
- the store's size on disk;
- training start: a fresh interpreter that does what `pianogenie train --data STORE` does up to
  its first step (import torch and pianogenie, open the store memory-mapped, build the Trainer
  with the default config, draw the first batch and take one optimizer step), timed from the
  command's start, plus, separately, one validation on the fixed sample of eval_windows windows.
Ratios are to 1x of the same run.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "maestro-asap"
GOAL_RSS_GB, GOAL_PER_FILE_RATIO, GOAL_TRAIN_START_S = 1.5, 1.2, 10.0


TRAIN_START = """
import json, sys, time
t = [time.perf_counter()]
import torch
from pianogenie.config import Config
from pianogenie.notes_file import load_notes
from pianogenie.prefetch import BatchSource
from pianogenie.train import Trainer
torch.set_num_threads(1)
t.append(time.perf_counter())
cfg = Config()
data = load_notes(sys.argv[1])
t.append(time.perf_counter())
trainer = Trainer(cfg, data, sys.argv[2], workers=1, progress=False)
t.append(time.perf_counter())
batches = BatchSource(trainer.windows, trainer.rng, cfg)
trainer.train_step(batches.next())
t.append(time.perf_counter())
trainer.validate()
t.append(time.perf_counter())
phases = dict(zip(["imports", "open", "trainer", "first_step", "validation"], [b - a for a, b in zip(t, t[1:])]))
open(sys.argv[3], "w").write(json.dumps(phases))
"""


def build_copies(source: Path, copies: int, root: Path) -> int:
    from pianogenie.maestro import find_source

    src = find_source(source)
    root.mkdir(parents=True)
    rows = []
    for j in range(copies):
        for p in src.performances:
            name = f"copy{j}/{p.midi_filename}"
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(Path(src.root) / p.midi_filename, root / name)
            rows.append({"split": p.split, "midi_filename": name})
    with open(root / "maestro-v3.0.0.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["split", "midi_filename"])
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def timed(cmd: list[str], env: dict) -> tuple[float, float]:
    """(wall s, peak RSS GB) of a command, by /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        proc = subprocess.run(
            ["/usr/bin/time", "-o", t.name, "-f", "%e %M", *cmd],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if proc.returncode:
            sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
        wall, kb = t.read().split()[-2:]
    return float(wall), int(kb) / 2**20


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=SHARED, help="MAESTRO folder (default: ../shared)")
    ap.add_argument("--copies", default="1,4,16,64", help="sizes to measure (default: 1,4,16,64)")
    ap.add_argument("--workers", type=int, default=None, help="prepare's --workers (default: all cores)")
    ap.add_argument("--keep", type=Path, default=None, help="work here and keep it (default: a temporary folder)")
    args = ap.parse_args()
    if not args.source.is_dir():
        print(f"skipped: {args.source} is absent; pass --source", file=sys.stderr)
        return 0
    sizes = [int(x) for x in args.copies.split(",")]
    work = args.keep or Path(tempfile.mkdtemp(prefix="data-scale-"))
    env = {
        **os.environ,
        "PIANOGENIE_CACHE": str(work / "cache"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    py = [sys.executable, "-m", "pianogenie"]
    print(f"source: {args.source}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, work folder {work}")
    rows = []
    try:
        for k in sizes:
            copies = work / f"x{k}"
            files = build_copies(args.source, k, copies)
            store = work / f"x{k}.store"
            cmd = [*py, "prepare", str(copies), "-o", str(store)] + (
                ["--workers", str(args.workers)] if args.workers else []
            )
            p_wall, p_rss = timed(cmd, env)
            import orjson

            manifest = orjson.loads((store / "manifest.json").read_bytes())
            notes = sum(s["notes"] for s in manifest["splits"].values())
            size = folder_bytes(store)
            run = work / f"run{k}"
            t_wall, t_rss = timed([sys.executable, "-c", TRAIN_START, str(store), str(run), str(work / f"val{k}")], env)
            phases = orjson.loads((work / f"val{k}").read_text())
            t_val = phases["validation"]
            t_wall -= t_val  # the command's start to its first step done; the validation is printed apart
            rows.append((k, files, notes, p_wall, p_rss, size, t_wall, t_rss))
            print(
                f"{k:3d}x: {files:6d} files, {notes / 1e6:6.1f} M notes | prepare {p_wall:7.1f} s, "
                f"{1e3 * p_wall / files:5.2f} ms/file, peak RSS {p_rss:5.2f} GB | store {size / 2**30:5.2f} GB | "
                f"train start {t_wall:5.1f} s (imports {phases['imports']:.1f}, open {phases['open']:.2f}, Trainer "
                f"{phases['trainer']:.1f}, first step {phases['first_step']:.2f}), peak RSS {t_rss:5.2f} GB "
                f"(then a validation: {t_val:4.1f} s) | load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            shutil.rmtree(copies)
            shutil.rmtree(run, ignore_errors=True)
            if k != sizes[-1]:
                shutil.rmtree(store)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    base = rows[0]
    print(
        "\n| copies | files | M notes | prepare s | ms/file (ratio) | prepare peak RSS GB (ratio) | store GB | "
        "train start s (ratio) | train peak RSS GB (ratio) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for k, files, notes, p_wall, p_rss, size, t_wall, t_rss in rows:
        per = 1e3 * p_wall / files
        per0 = 1e3 * base[3] / base[1]
        print(
            f"| {k}x | {files} | {notes / 1e6:.1f} | {p_wall:.1f} | {per:.2f} ({per / per0:.2f}x) | "
            f"{p_rss:.2f} ({p_rss / base[4]:.2f}x) | {size / 2**30:.2f} | {t_wall:.1f} ({t_wall / base[6]:.2f}x) | "
            f"{t_rss:.2f} ({t_rss / base[7]:.2f}x) |"
        )
    last = rows[-1]
    per_ratio = (last[3] / last[1]) / (base[3] / base[1])
    print(
        f"\nat {last[0]}x: prepare peak RSS {last[4]:.2f} GB (goal <= {GOAL_RSS_GB}: "
        f"{'met' if last[4] <= GOAL_RSS_GB else 'NOT met'}), train start peak RSS {last[7]:.2f} GB (goal <= "
        f"{GOAL_RSS_GB}: {'met' if last[7] <= GOAL_RSS_GB else 'NOT met'}), prepare time per file "
        f"{per_ratio:.2f}x 1x's (goal <= {GOAL_PER_FILE_RATIO}: {'met' if per_ratio <= GOAL_PER_FILE_RATIO else 'NOT met'}), "
        f"train start {last[6]:.1f} s (goal <= {GOAL_TRAIN_START_S:g}: {'met' if last[6] <= GOAL_TRAIN_START_S else 'NOT met'})"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
