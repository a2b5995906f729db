"""`pianogenie train`: the command over pianogenie.train's Trainer, and its checks of the device and
the run folder. Imports torch only to run (its --help stays fast)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from pathlib import Path

from pianogenie import recipes
from pianogenie.config import Config
from pianogenie.util import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    fields = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(Config))
    p = sub.add_parser(
        "train",
        description="Train Piano Genie end to end (teacher forcing) on the train split of a notes file, "
        "evaluating on its validation split every eval_frequency steps. Writes RUN/cfg.json, best.pt "
        "(lowest validation reconstruction loss), last.pt, metrics.jsonl and TensorBoard events. Ctrl-C stops cleanly "
        "(resume with --resume). Under torchrun it trains with DistributedDataParallel.",
        epilog=f"Config keys (override with --key=value): {fields}",
    )
    p.add_argument("--data", required=True, metavar="NOTES.json.gz", help="notes file from `pianogenie prepare`")
    p.add_argument("--run-dir", required=True, metavar="RUN", help="folder for checkpoints and logs")
    p.add_argument("--config", metavar="cfg.json|RECIPE", help="start from this config file, or from a named "
                   f"recipe shipped with the package ({', '.join(recipes.names())}: see the README), else the "
                   "defaults; --key=value overrides apply on top")
    p.add_argument("--resume", action="store_true", help="continue RUN/last.pt (with --max_num_steps=N to "
                   "extend a run that is still improving)")
    p.add_argument("--init", metavar="CHECKPOINT", help="fine-tune: start from these weights (a run, our "
                   "checkpoint, the shipped pianogenie/pretrained/model.pt or the tutorial's model.pt)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--workers", type=int, default=None, help="CPU only: threads, one core each, that "
                   "share each batch (default: all cores; 1 under torchrun, where each process is one)")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from pianogenie.data import load_notes
    from pianogenie.train import Trainer, default_workers

    check_device(args.device)
    check_run_dir(args)
    cfg = recipes.load_config(args.config) if args.config else Config()
    if args.resume and not args.config and (Path(args.run_dir) / "cfg.json").exists():
        cfg = Config.load(Path(args.run_dir) / "cfg.json")
    cfg = cfg.override(args.overrides)
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be >= 1")
    torch.set_num_threads(1)  # parallelism comes from shard threads or processes, see forward_backward
    data = load_notes(args.data)
    workers = args.workers or (1 if "WORLD_SIZE" in os.environ else default_workers())
    labels = None
    if cfg.conditions:
        from pianogenie.data import load_labels

        labels = load_labels(args.data)
    trainer = Trainer(cfg, data, args.run_dir, resume=args.resume, device=args.device, workers=workers,
                      init=args.init, report=_report, labels=labels)
    result = trainer.train()
    if dist.is_initialized():
        dist.destroy_process_group()
    if trainer.is_main:
        print(json.dumps(_finite({"run_dir": str(args.run_dir), **result}), indent=2))
    # stopped by Ctrl-C or SIGTERM: last.pt is saved, but the run did not finish (130 / 143)
    return 128 + trainer.stopped_by if trainer.stopped_by is not None else 0


def _finite(obj):
    """JSON has no Infinity or NaN: such values (no validation loss yet) print as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def check_device(device: str | None) -> None:
    """A device string torch knows and this machine has (UserError otherwise)."""
    if device is None:
        return
    import torch

    try:
        d = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise UserError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1): "
                        f"{str(e).splitlines()[0]}") from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: this torch has no CUDA device available "
                            f"(torch {torch.__version__}); use --device cpu")
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif d.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError(f"--device {device}: MPS is not available here; use --device cpu")
    elif d.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: unsupported device type {d.type!r}; use cpu or cuda")


def check_run_dir(args: argparse.Namespace) -> None:
    """RUN must be a folder train may write in, holding no input and nothing train did not write."""
    from pianogenie.outputs import check_output, is_json_object_with

    inputs = [args.data, args.config, args.init]
    run_dir = check_output(args.run_dir, flag="--run-dir", inputs=inputs, folder=True)
    for name in ("cfg.json", "metrics.jsonl", "best.pt", "last.pt"):
        check_output(run_dir / name, flag="--run-dir", inputs=inputs)
    cfg_file = run_dir / "cfg.json"
    if cfg_file.is_file() and not args.resume and not is_json_object_with(*Config.field_names()[:3])(cfg_file):
        raise UserError(f"--run-dir {run_dir}: its cfg.json is not a config this command wrote; refusing to "
                        "overwrite it (choose another --run-dir)")


def _report(message: str) -> None:
    print(message, file=sys.stderr)
