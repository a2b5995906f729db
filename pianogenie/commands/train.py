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
from pianogenie.util import UserError, os_reason


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
    p.add_argument(
        "--config",
        metavar="cfg.json|RECIPE",
        help="start from this config file, or from a named "
        f"recipe shipped with the package ({', '.join(recipes.names())}: see the README), else the "
        "defaults; --key=value overrides apply on top",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue RUN/last.pt (with --max_num_steps=N to extend a run that is still improving)",
    )
    p.add_argument(
        "--init",
        metavar="CHECKPOINT",
        help="fine-tune: start from these weights (a run, our "
        "checkpoint, the shipped pianogenie/pretrained/model.pt or the tutorial's model.pt)",
    )
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="CPU only: threads, one core each, that "
        "share each batch (default: all cores; 1 under torchrun, where each process is one)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="train in RUN even if it holds files train did not "
        "write (no pianogenie-run.json mark): its cfg.json, checkpoints and metrics are replaced or "
        "appended to",
    )
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    import torch
    import torch.distributed as dist

    from pianogenie import distributed
    from pianogenie.notes_file import load_notes
    from pianogenie.train import Trainer, default_workers

    check_device(args.device)
    check_run_dir(args)
    if args.config is not None and not args.config.strip():
        raise UserError(
            "--config is empty: pass a config file or a recipe name, or leave --config out for the defaults"
        )
    cfg = recipes.load_config(args.config) if args.config is not None else Config()
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
        from pianogenie.notes_file import load_labels

        labels = load_labels(args.data)
    trainer = Trainer(
        cfg,
        data,
        args.run_dir,
        resume=args.resume,
        device=args.device,
        workers=workers,
        init=args.init,
        report=_report,
        labels=labels,
    )
    try:
        result = trainer.train()
    except OSError as e:  # e.g. the disk filled up writing metrics.jsonl or the TensorBoard events
        raise UserError(f"cannot write in {args.run_dir}: {os_reason(e)}; {_run_state(Path(args.run_dir))}") from None
    except UserError as e:
        if str(e).startswith("cannot write"):  # a checkpoint (atomic: the previous one is intact)
            raise UserError(f"{e}; {_run_state(Path(args.run_dir))}") from None
        raise
    if dist.is_initialized():
        dist.destroy_process_group()
    if trainer.is_main:
        print(json.dumps(_finite({"run_dir": str(args.run_dir), **result}), indent=2))
    # stopped by Ctrl-C or SIGTERM: last.pt is saved, but the run did not finish (130 / 143)
    status = 128 + trainer.stopped_by if trainer.stopped_by is not None else 0
    if trainer.ddp:
        distributed.exit_worker(status)
    return status


def _run_state(run_dir: Path) -> str:
    """What a run that stopped on a write error is good for (one clause of the error line)."""
    if (run_dir / "last.pt").is_file():
        return f"{run_dir / 'last.pt'} is intact: free space and continue with --resume"
    return "it holds no checkpoint yet: free space and run the same command again (it starts the run afresh)"


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
        raise UserError(
            f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1): {str(e).splitlines()[0]}"
        ) from None
    if d.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(
                f"--device {device}: this torch has no CUDA device available "
                f"(torch {torch.__version__}); use --device cpu"
            )
        if d.index is not None and d.index >= torch.cuda.device_count():
            raise UserError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif d.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise UserError(f"--device {device}: MPS is not available here; use --device cpu")
    elif d.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"--device {device}: unsupported device type {d.type!r}; use cpu or cuda")


def check_run_dir(args: argparse.Namespace) -> None:
    """RUN must be a folder train may write in, holding no input, and, where it holds any file train
    writes, train's mark (RUN_MARK) proving an earlier train wrote them (or --force)."""
    from pianogenie.outputs import check_output, folder_marked
    from pianogenie.train import RUN_FILES, RUN_MARK

    inputs = [args.data, args.config, args.init]
    run_dir = check_output(args.run_dir, flag="--run-dir", inputs=inputs, folder=True)
    for name in ("cfg.json", "metrics.jsonl", "best.pt", "last.pt", RUN_MARK):
        check_output(run_dir / name, flag="--run-dir", inputs=inputs)
    present = [name for name in RUN_FILES if os.path.lexists(run_dir / name)]
    if present and not getattr(args, "force", False) and not folder_marked(run_dir, RUN_MARK, "train"):
        raise UserError(
            f"--run-dir {run_dir} holds {', '.join(present)} but no {RUN_MARK}: not a run this "
            "command wrote; refusing to write into it (choose another --run-dir, or pass --force)"
        )


def _report(message: str) -> None:
    print(message, file=sys.stderr)
