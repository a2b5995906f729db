"""Time to quality: train a named recipe until validation perplexity falls below targets.

    python benchmarks/time_to_quality.py --recipe gpu [--data NOTES.json.gz] [--targets 3.794 3.50]
        [--eval-every 500] [--device cuda] [--key=value ...]

Trains `pianogenie train --config RECIPE` (with `eval_frequency` set to --eval-every and any
--key=value overrides) and stops at the first evaluation below the last target, or at the
recipe's max_num_steps (with --to-end: always at max_num_steps, so that the recipe's final
quality, contour violation included, is reported too). Prints, for each target, the wall time from the start of training (model
built, data loaded) to the evaluation that first went below it, evaluations and checkpoints
included, and the step. 3.794 is the 2021 tutorial model's validation perplexity on this data,
3.50 the shipped model's. Evaluation scores every 128-note window of the validation split, as
`evaluate` does, so --eval-every trades resolution against time spent evaluating.

Without --data it prepares ../shared/data/maestro-asap into a temporary file first.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time

import torch
from train_speed import benchmark_notes  # benchmarks/ is on sys.path when run as a script

from pianogenie import recipes
from pianogenie.outputs import atomic_write_text
from pianogenie.train import Trainer, default_workers


class _Reached(Exception):
    """Every target reached: stop training."""


class TimedTrainer(Trainer):
    def __init__(self, *args, targets: list[float], to_end: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.targets, self.reached, self.history = sorted(targets, reverse=True), {}, []
        self.to_end = to_end
        self.t0 = None

    def train(self) -> dict:
        self.t0 = time.perf_counter()
        return super().train()

    def _eval_and_checkpoint(self, metrics_file, tb):
        val = super()._eval_and_checkpoint(metrics_file, tb)
        if val is not None:
            wall = time.perf_counter() - self.t0
            self.history.append((self.step, wall, val["perplexity"], val["contour_violation_ratio"]))
            print(
                f"  step {self.step:6d}  {wall:8.1f} s  validation perplexity {val['perplexity']:.3f}  "
                f"contour violation {val['contour_violation_ratio']:.4f}",
                flush=True,
            )
            for target in self.targets:
                if target not in self.reached and val["perplexity"] < target:
                    self.reached[target] = (wall, self.step, val["perplexity"])
            if len(self.reached) == len(self.targets) and not self.to_end:
                raise _Reached
        return val


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="gpu", help=f"named recipe ({', '.join(recipes.names())})")
    parser.add_argument("--data", help="prepared notes file (default: prepare ../shared/data/maestro-asap)")
    parser.add_argument(
        "--targets",
        type=float,
        nargs="+",
        default=[3.794, 3.50],
        help="validation perplexities to reach (default: 3.794 3.50)",
    )
    parser.add_argument("--eval-every", type=int, default=500, help="steps between evaluations (default 500)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--run-dir", help="where the run goes (default: a temporary folder)")
    parser.add_argument(
        "--to-end",
        action="store_true",
        help="train to the recipe's max_num_steps even after the last target, to report its final quality",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    args, overrides = parser.parse_known_args()
    cfg = recipes.recipe(args.recipe).override([*overrides, f"--eval_frequency={args.eval_every}"])
    with tempfile.TemporaryDirectory() as tmp:
        data = benchmark_notes(args.data, tmp)
        if data is None:
            return 0
        torch.set_num_threads(1)  # as `train` does: parallelism from shard threads (CPU) or the GPU
        trainer = TimedTrainer(
            cfg,
            data,
            args.run_dir or os.path.join(tmp, "run"),
            device=args.device,
            workers=default_workers(),
            targets=args.targets,
            to_end=args.to_end,
            progress=False,
        )
        device = trainer.device
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({default_workers()} cores)"
        print(
            f"recipe {args.recipe}: batch {cfg.batch_size}, lr {cfg.lr}, up to {cfg.max_num_steps} steps, "
            f"evaluating every {cfg.eval_frequency}; {name}, torch {torch.__version__}",
            flush=True,
        )
        try:
            trainer.train()
        except _Reached:
            pass
        for target in sorted(args.targets, reverse=True):
            if target in trainer.reached:
                wall, step, ppl = trainer.reached[target]
                print(f"below {target}: {wall:.1f} s wall ({wall / 60:.2f} min), step {step} (perplexity {ppl:.3f})")
            else:
                print(f"below {target}: not reached in {trainer.step} steps")
        if args.json:
            results = {
                "recipe": args.recipe,
                "config": dataclasses.asdict(cfg),
                "device": name,
                "torch": torch.__version__,
                "history": trainer.history,
                "reached": {str(t): trainer.reached.get(t) for t in args.targets},
            }
            atomic_write_text(args.json, json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
