"""Does the GPU fast path train the same model? Same seed, same batches, same device, twice:

  plain: host sync every step (loss checked at once), batches drawn on the training thread,
         Adam's foreach kernels: the training loop as it was before the fast path;
  fast:  what `train` does on a GPU: no host sync between summaries, batches drawn ahead into
         pinned memory, fused Adam.

    python benchmarks/fast_path_equal.py [--data NOTES.json.gz] [--device cuda] [--steps 300] [--key=value ...]

Prints the runs' validation metrics and their differences, and the fast run's model scored again
on the CPU from its saved checkpoint (which must load there). Fused Adam rounds differently from
the foreach kernels, and training amplifies any rounding difference; the noise reference is a
third plain run whose initial weights are nudged by one float32 ulp (`torch.nextafter`): a
difference between plain and fast of that size is floating-point noise, not changed maths.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile

import torch
from train_speed import benchmark_notes  # benchmarks/ is on sys.path when run as a script

from pianogenie.config import Config
from pianogenie.evaluate import evaluate
from pianogenie.model import load_model
from pianogenie.train import Trainer, lr_at

KEYS = ("perplexity", "key_accuracy", "loss_contour", "contour_violation_ratio")


def run(
    cfg: Config, data: dict, run_dir: str, device: str | None, fast: bool, nudge: bool = False
) -> tuple[Trainer, dict]:
    trainer = Trainer(cfg, data, run_dir, device=device, progress=False, fast_path=fast)
    if nudge:
        with torch.no_grad():
            for p in trainer.params:
                p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    if not fast:  # the optimizer as it was: foreach kernels (a fresh one holds no state yet)
        trainer.optimizer = torch.optim.Adam(trainer.params, lr=cfg.lr, foreach=True)
        trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda s: lr_at(s, cfg) / cfg.lr)
    result = trainer.train()
    return trainer, result["validation"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared notes file (default: prepare ../shared/data/maestro-asap)")
    parser.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--steps", type=int, default=300)
    args, overrides = parser.parse_known_args()
    cfg = Config(batch_size=256, lr=2e-3, lr_warmup_steps=100).override(
        [f"--max_num_steps={args.steps}", f"--eval_frequency={args.steps}", "--summarize_frequency=50", *overrides]
    )
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        data = benchmark_notes(args.data, tmp)
        if data is None:
            return 0
        data = {"train": data["train"], "validation": data["validation"]}
        results = {}
        for name, fast, nudge in (
            ("plain", False, False),
            ("plain again", False, False),
            ("plain nudged", False, True),
            ("fast", True, False),
        ):
            trainer, results[name] = run(cfg, data, f"{tmp}/{name.replace(' ', '_')}", args.device, fast, nudge)
        print(f"{trainer.device}, torch {torch.__version__}: {args.steps} steps at batch {cfg.batch_size}, validation:")
        for name, val in results.items():
            print(f"  {name:12s} " + "  ".join(f"{k} {val[k]:.6f}" for k in KEYS))
        model, saved_cfg = load_model(f"{tmp}/fast/last.pt")  # a checkpoint saved on the device, on the CPU
        cpu = evaluate(model, data["validation"], saved_cfg, device="cpu")
        print(f"  {'fast on cpu':12s} " + "  ".join(f"{k} {cpu[k]:.6f}" for k in KEYS))
        for a, b in (("plain again", "plain"), ("plain nudged", "plain"), ("fast", "plain"), ("fast on cpu", "fast")):
            va, vb = (cpu if a == "fast on cpu" else results[a]), results[b]
            print(f"  |{a} - {b}|:".ljust(30) + " " + "  ".join(f"{k} {abs(va[k] - vb[k]):.2e}" for k in KEYS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
