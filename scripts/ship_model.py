"""Package a finished training run as the shipped model, and measure it against the 2021 tutorial.

    .venv/bin/python scripts/ship_model.py RUN --data NOTES.json.gz [--history EARLIER/metrics.jsonl]

Writes pianogenie/pretrained/model.pt (weights + config, no optimizer state: small),
pianogenie/pretrained/tfjs/ (the exported decoder the app plays), docs/training_metrics.jsonl and
docs/training_curves.png (the whole history), and docs/validation_metrics.json: our model and the
tutorial's reference checkpoint scored on the same validation windows (every non-overlapping
128-note window), with, for a model with a velocity head, its velocity MAE/NLL and the four
baselines. --history: the metrics of the run RUN was started from with `train --init`;
RUN's steps and wall time are counted on from where it ended.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import sys
from pathlib import Path

import torch

from pianogenie.cli import main as cli
from pianogenie.evaluate import evaluate
from pianogenie.model import CHECKPOINT_FORMAT, load_checkpoint, load_model
from pianogenie.notes_file import load_notes
from pianogenie.outputs import atomic_path, atomic_write_text
from pianogenie.velocity import VelocityBaselines

REPO = Path(__file__).resolve().parents[1]
PRETRAINED = REPO / "pianogenie" / "pretrained"
REFERENCE = REPO.parent / "shared" / "reference" / "tutorial-2021" / "pytorch" / "model.pt"


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wall_seconds(rows: list[dict]) -> int:
    """Training wall time: the sum of the gaps between consecutive records, leaving out gaps over
    10 minutes (records come every ~minute while training; longer gaps are pauses between stages
    or before a --resume, not training)."""
    times = [r["time"] for r in rows]
    return round(sum(b - a for a, b in itertools.pairwise(times) if 0 < b - a < 600))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", required=True)
    parser.add_argument("--history", type=Path, help="metrics.jsonl of the run RUN was initialised from")
    parser.add_argument(
        "--checkpoint",
        default="best.pt",
        choices=["best.pt", "last.pt"],
        help="which of RUN's checkpoints to ship (default: lowest validation cross-entropy)",
    )
    args = parser.parse_args()

    ckpt = load_checkpoint(args.run / args.checkpoint)
    model, cfg = load_model(args.run / args.checkpoint)
    history = read_rows(args.history) if args.history else []
    run_rows = read_rows(args.run / "metrics.jsonl")
    offset = max((r["step"] for r in history), default=0)
    # counted on from the history; this run's step 0 is the history's last model, already scored there
    rows = [{**r, "step": r["step"] + offset} for r in run_rows if r["step"] > 0] if history else run_rows
    meta = {
        "step": ckpt["step"] + offset,
        "best_val_loss": ckpt["best_val_loss"],
        "trained_steps": max(r["step"] for r in rows),
        "train_wall_seconds": wall_seconds(history) + wall_seconds(run_rows),
    }
    rows = history + rows
    metrics = REPO / "docs" / "training_metrics.jsonl"
    atomic_write_text(metrics, "".join(json.dumps(r) + "\n" for r in rows))
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    with atomic_path(PRETRAINED / "model.pt") as tmp:
        torch.save(
            {"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "cfg": dataclasses.asdict(cfg), **meta}, tmp
        )
    cfg.save(PRETRAINED / "cfg.json")
    steps = [
        (
            "export",
            [str(args.run / args.checkpoint), "--out", str(PRETRAINED / "tfjs"), "--data", args.data, "--force"],
        ),  # the project's own files: those shipped before the marks carry none
        (
            "plot",
            [
                str(metrics),
                "-o",
                str(REPO / "docs" / "training_curves.png"),
                "--title",
                f"shipped model ({meta['trained_steps']:,} steps)",
                "--force",
            ],
        ),
    ]
    for command, argv in steps:
        if cli([command, *argv]) != 0:
            return 1

    data = load_notes(args.data)
    validation = data["validation"]
    baselines = VelocityBaselines(data["train"]) if hasattr(model, "vel") else None
    results = {"ours": {**meta, **evaluate(model, validation, cfg, name="validation", velocity_baselines=baselines)}}
    if REFERENCE.is_file():
        ref_model, ref_cfg = load_model(REFERENCE)
        results["tutorial_2021"] = evaluate(ref_model, validation, ref_cfg, name="validation")
    atomic_write_text(REPO / "docs" / "validation_metrics.json", json.dumps(results, indent=2) + "\n")
    keys = [
        "perplexity",
        "cross_entropy",
        "key_accuracy",
        "contour_violation_ratio",
        "contour_violation_ratio_paper",
        "button_entropy_bits",
    ]
    print(f"{'':28s}" + "".join(f"{name:>16s}" for name in results))
    for key in keys:
        print(f"{key:28s}" + "".join(f"{results[name][key]:16.4f}" for name in results))
    for key, value in results["ours"].items():
        if key.startswith("velocity_"):
            print(f"{key:36s}{value:12.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
