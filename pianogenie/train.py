"""Training: the loop, the learning-rate schedule, checkpoints, logging and distributed data parallel.

One step, in a fixed order: lr -> eval/checkpoint -> batch -> forward/backward -> clip -> step -> log.
`torchrun --nproc_per_node=N -m pianogenie train ...` runs the same loop under DDP.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pianogenie import distributed, recipes
from pianogenie.config import Config
from pianogenie.evaluate import evaluate, losses
from pianogenie.meters import RunningMeans
from pianogenie.model import CHECKPOINT_FORMAT, Autoencoder, load_checkpoint, load_model
from pianogenie.prefetch import BatchSource
from pianogenie.util import Interrupted, UserError, atomic_path, atomic_write_text, os_reason
from pianogenie.velocity import VelocityBaselines
from pianogenie.windows import Batch, Notes, TrainWindows


# What a resumed run may change: how long it goes on (to extend a run that is still improving) and
# how often it logs. Everything else would make the resumed run a different experiment.
RESUME_MAY_CHANGE = {"max_num_steps", "eval_frequency", "summarize_frequency"}

# Under DDP on an accelerator, the ranks agree on stopping every this many steps (CPU: every step).
STOP_CHECK_STEPS = 8


def lr_at(step: int, cfg: Config) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.lr * cfg.lr_min_ratio at max_num_steps."""
    if step < cfg.lr_warmup_steps:
        return cfg.lr * (step + 1) / cfg.lr_warmup_steps
    progress = min((step - cfg.lr_warmup_steps) / max(cfg.max_num_steps - cfg.lr_warmup_steps, 1), 1.0)
    return cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def contour_final(step: int, cfg: Config) -> bool:
    """Whether the loss at `step` weighs contour by loss_contour_multiplier_final: from
    loss_contour_final_from * max_num_steps on (the one-run form of a second, contour-weighted stage)."""
    return cfg.loss_contour_final_from < 1 and step >= cfg.loss_contour_final_from * cfg.max_num_steps


def default_workers() -> int:
    """Shard threads for one CPU process: every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so the checkpoint written on the way
    out is a consistent state (a resumed run then continues exactly)."""

    def __init__(self):
        self.signum = None
        self.urgent = False  # True while nothing is lost by stopping at once
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.signum is not None or self.urgent:  # a second Ctrl-C, or nothing to save: stop now
            for s in self._old:
                signal.signal(s, signal.SIG_IGN)  # let the cleanup on the way out finish
            raise Interrupted(signum)
        self.signum = signum

    def __exit__(self, *exc):
        for s, old in self._old.items():
            signal.signal(s, old)


class Trainer:
    def __init__(self, cfg: Config, data: dict[str, list[np.ndarray]], run_dir: str | os.PathLike,
                 resume: bool = False, device: str | None = None, progress: bool = True, workers: int = 1,
                 init: str | os.PathLike | None = None, fast_path: bool | None = None):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.ddp = distributed.launched_by_torchrun()
        self.rank, self.world_size = 0, 1
        local_rank = int(os.environ.get("LOCAL_RANK", 0)) if self.ddp else 0
        if device is None:
            device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and self.device.index is None:  # --device cuda: this rank's own GPU
            self.device = torch.device("cuda", local_rank)
        if self.ddp:
            distributed.init(self.device)  # a backend for CPU tensors and one for the device's
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.progress = progress and self.is_main
        # The accelerator path never waits for the device between summaries: batches are drawn
        # ahead on a thread, loss terms are summed on the device, and a non-finite loss is caught
        # at the next summary or checkpoint instead of at once. On the CPU waiting costs nothing.
        self.fast_path = self.device.type != "cpu" if fast_path is None else fast_path
        self.batches: BatchSource | None = None

        if "train" not in data or not data["train"]:
            raise UserError("the notes file has no train split (or it is empty)")
        self.windows = TrainWindows(Notes(data["train"], "train", velocity=cfg.velocity_bins > 0), cfg.seq_len)
        self.val = data.get("validation") or None
        self.velocity_baselines = VelocityBaselines(data["train"]) if cfg.velocity_bins else None

        torch.manual_seed(cfg.seed + self.rank)
        self.rng = np.random.default_rng([cfg.seed, self.rank])
        self.model = Autoencoder(cfg).to(self.device)
        # On a GPU, one fused kernel updates every parameter (the same Adam maths; foreach on the CPU).
        self.optimizer = torch.optim.Adam([p for name, p in self.model.named_parameters()
                                           if cfg.train_keys or name.startswith("vel.")], lr=cfg.lr,
                                          fused=True if self.device.type == "cuda" else None)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_at(s, cfg) / cfg.lr)
        self.cfg_contour_final = cfg.replace(loss_contour_multiplier=cfg.loss_contour_multiplier_final)
        self.step = 0
        self.best_val_loss = math.inf
        self.stopped_by = None  # the signal (SIGINT/SIGTERM) that stopped training, if one did
        if init is not None and not resume:  # fine-tune: start from trained weights, fresh optimizer
            pretrained, pretrained_cfg = load_model(init)
            if (pretrained_cfg.model_rnn_dim, pretrained_cfg.model_rnn_num_layers, pretrained_cfg.num_buttons) != (
                    cfg.model_rnn_dim, cfg.model_rnn_num_layers, cfg.num_buttons):
                raise UserError(f"--init {init}: its model ({pretrained_cfg.model_rnn_num_layers} x "
                                f"{pretrained_cfg.model_rnn_dim}, {pretrained_cfg.num_buttons} buttons) differs "
                                "from the config's; pass matching --model_rnn_dim/--model_rnn_num_layers/--num_buttons")
            # A key model without a velocity head may start a run that adds one (fresh vel.* weights).
            try:
                missing, unexpected = self.model.load_state_dict(pretrained.state_dict(), strict=False)
            except RuntimeError as e:  # shapes differ (e.g. another velocity head size)
                raise UserError(f"--init {init}: its weights do not fit this config: "
                                f"{' '.join(str(e).strip().splitlines()[:2])}") from None
            if unexpected or any(not name.startswith("vel.") for name in missing):
                raise UserError(f"--init {init}: its weights do not fit this config (missing {missing}, "
                                f"unexpected {unexpected})")
        if not cfg.train_keys and init is None and not resume:
            raise UserError("train_keys=false trains only the velocity head on frozen key weights: "
                            "pass --init with a trained model")
        if cfg.velocity_bins and not resume and not (init is not None and hasattr(pretrained, "vel")):
            _set_velocity_feature_stats(self.model, self.windows.notes, cfg, self.rng)
        if not cfg.train_keys:  # only the velocity head learns; the key path is exactly --init's
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("vel."))
        if resume:
            self._resume()
        elif self.is_main and (self.run_dir / "last.pt").exists():
            raise UserError(f"{self.run_dir} already holds a run (last.pt); pass --resume to continue it "
                            "or choose another --run-dir")
        self.ddp_model = self.model
        if self.ddp:
            self.ddp_model = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.num_buttons == 1)  # the 1-button baseline skips the encoder
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # Thread shards only where they help: one CPU process (DDP ranks and GPUs parallelise already).
        self.workers = max(1, workers) if not self.ddp and self.device.type == "cpu" else 1
        self.pool = None
        if self.workers > 1:
            self.pool = ThreadPoolExecutor(self.workers, initializer=torch.set_num_threads, initargs=(1,))

    # ---------------------------------------------------------------------------------------------
    # Checkpoints

    def _state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "cfg": dataclasses.asdict(self.cfg),
            "step": self.step,
            "best_val_loss": self.best_val_loss,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "numpy": json.dumps(
                self.batches.rng_state() if self.batches else self.rng.bit_generator.state)},
        }

    def save(self, name: str) -> None:
        if not self.is_main:
            return
        with atomic_path(self.run_dir / name) as tmp:
            torch.save(self._state(), tmp)

    def _resume(self) -> None:
        path = self.run_dir / "last.pt"
        if not path.exists():
            raise UserError(f"--resume: {path} does not exist")
        ckpt = load_checkpoint(path)
        if ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{path} is not a training checkpoint of this tool")
        missing = [k for k in ("model", "cfg", "step", "best_val_loss", "optimizer", "scheduler", "rng")
                   if k not in ckpt]
        if missing:
            raise UserError(f"--resume: {path} has no {', '.join(missing)} state (not a complete training "
                            "checkpoint); start a new run from its weights with --init instead")
        try:
            saved = Config.from_dict(ckpt["cfg"], strict=False)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
        diff = {k: (v, getattr(self.cfg, k)) for k, v in dataclasses.asdict(saved).items() if getattr(self.cfg, k) != v}
        if set(diff) - RESUME_MAY_CHANGE:
            raise UserError(f"--resume: config differs from the run's: {diff} (on resume only "
                            f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change)")
        if diff and self.is_main:
            print(f"resuming with {', '.join(f'{k}={new} (was {old})' for k, (old, new) in diff.items())}; "
                  "the learning-rate schedule follows the new max_num_steps from here", file=sys.stderr)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step, self.best_val_loss = ckpt["step"], ckpt["best_val_loss"]
        torch.set_rng_state(ckpt["rng"]["torch"])
        # Each rank continues its own stream; rank 0's saved state is the reference.
        state = json.loads(ckpt["rng"]["numpy"])
        if self.rank == 0:
            self.rng.bit_generator.state = state
        else:
            self.rng = np.random.default_rng([self.cfg.seed, self.rank, self.step])

    # ---------------------------------------------------------------------------------------------
    # Logging

    def _open_logs(self):
        if not self.is_main:
            return None, None
        from torch.utils.tensorboard import SummaryWriter

        return open(self.run_dir / "metrics.jsonl", "a"), SummaryWriter(str(self.run_dir / "tensorboard"))

    def _log(self, metrics_file, tb, split: str, metrics: dict) -> None:
        if not self.is_main:
            return
        row = {"step": self.step, "split": split, "time": time.time(), **metrics}
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                tb.add_scalar(f"{split}/{key}", value, self.step)

    def validate(self) -> dict | None:
        if not self.val:
            return None
        return evaluate(self.model, self.val, self.cfg, device=self.device, name="validation",
                        velocity_baselines=self.velocity_baselines)

    # ---------------------------------------------------------------------------------------------
    # The loop

    def train(self) -> dict:
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            mark_run_dir(self.run_dir)  # first: from here on the folder is provably a run of train
            cfg.save(self.run_dir / "cfg.json")
        metrics_file, tb = self._open_logs()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.max_num_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        meters, t_last, shown = RunningMeans(self.device), time.perf_counter(), {}
        self.meters, self.finite_at = meters, self.step
        self.batches = BatchSource(self.windows, self.rng, cfg, depth=2 if self.fast_path else 0,
                                   pin=self.device.type == "cuda")
        last_val = None
        try:
            with _StopRequest() as stop:
                while True:
                    lr = self.scheduler.get_last_lr()[0]
                    if self.step % cfg.eval_frequency == 0 or self.step == cfg.max_num_steps:
                        # evaluation can take long and changes no training state: a signal stops it
                        # at once (the previous last.pt stays the run's checkpoint)
                        stop.urgent = True
                        last_val = self._eval_and_checkpoint(metrics_file, tb)
                        stop.urgent = False
                    if self.step >= cfg.max_num_steps or self._stop_requested(stop):
                        break

                    batch = self.batches.next().to(self.device, non_blocking=self.device.type == "cuda")
                    terms, grad_norm = self.train_step(batch)
                    self.step += 1

                    meters.add({**terms, "grad_norm": grad_norm}, terms["loss"] if self.fast_path else None)
                    if bar is not None:
                        bar.update(1)
                        if self.step % 16 == 0:  # shows the last summary: reading this step's loss would sync
                            bar.set_postfix(loss=shown.get("loss", "-"), lr=f"{lr:.2e}",
                                            val=f"{last_val['loss']:.3f}" if last_val else "-")
                    if self.step % cfg.summarize_frequency == 0:
                        n_sum, means = meters.count, meters.read()
                        self._check_finite()
                        now = time.perf_counter()
                        self._log(metrics_file, tb, "train", {
                            **means, "lr": lr, "steps_per_second": n_sum / (now - t_last)})
                        shown, t_last = {"loss": f"{means['loss']:.3f}"}, now
                self._check_finite()
        finally:
            self.batches.close()
            if bar is not None:
                bar.close()
            if metrics_file is not None:
                metrics_file.close()
                tb.close()
        self.stopped_by = stop.signum
        return {"step": self.step, "best_val_loss": self.best_val_loss, "validation": last_val}

    def forward_backward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Loss terms of `batch`, leaving their gradients in the parameters' `.grad`.

        With several workers the batch is cut into shards whose forward/backward passes run on
        parallel threads (one core each): the batch-32 LSTM GEMMs are too small for intra-op
        threads to pay, but two independent shards keep two cores busy. Each shard's loss is
        normalised by the whole batch's note counts, so the summed gradients equal the whole
        batch's (up to float summation order); shards are summed in a fixed order, so runs repeat.
        """
        self.optimizer.zero_grad(set_to_none=True)
        shards = batch.split(self.workers) if self.pool is not None else [batch]
        if len(shards) == 1:
            terms, _, _ = losses(self.ddp_model, batch, self._loss_cfg())
            if self.fast_path or torch.isfinite(terms["loss"]):  # (fast path: checked later, no sync)
                terms["loss"].backward()
            return {k: v.detach() for k, v in terms.items()}
        loss_cfg = self._loss_cfg()
        num_notes = float(batch.mask.sum())
        num_pairs = float((batch.mask[:, 1:] & batch.mask[:, :-1]).sum())

        def shard(b: Batch):
            terms, _, _ = losses(self.model, b, loss_cfg, num_notes, num_pairs)
            return {k: v.detach() for k, v in terms.items()}, torch.autograd.grad(terms["loss"], self.params)

        results = list(self.pool.map(shard, shards))
        for i, p in enumerate(self.params):
            p.grad = sum(grads[i] for _, grads in results[1:]) + results[0][1][i]
        return {k: sum(terms[k] for terms, _ in results) for k in results[0][0]}

    def _loss_cfg(self) -> Config:
        return self.cfg_contour_final if contour_final(self.step, self.cfg) else self.cfg

    def train_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """forward/backward -> clip -> optimizer and lr step; stops on a non-finite loss."""
        terms = self.forward_backward(batch)
        if not self.fast_path and not torch.isfinite(terms["loss"]):
            raise UserError(
                f"loss became {terms['loss'].item()} at step {self.step} "
                f"({', '.join(f'{k}={v.item():.4g}' for k, v in terms.items())}); stopped without "
                f"updating the weights. The last good checkpoint is {self.run_dir / 'last.pt'} "
                "(try a lower --lr or --grad_clip_norm).")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        return terms, grad_norm

    def _check_finite(self) -> None:
        """Fast path: stop if a loss since the last check was non-finite, before anything is saved."""
        if self.fast_path and self.meters.any_nonfinite():
            raise UserError(
                f"loss became non-finite between step {self.finite_at} and step {self.step}; stopped "
                "without saving the weights since. The last good checkpoint is "
                f"{self.run_dir / 'last.pt'} (try a lower --lr or --grad_clip_norm).")
        self.finite_at = self.step

    def _stop_requested(self, stop: _StopRequest) -> bool:
        """All ranks agree to stop (a signal may reach only some of them)."""
        stopping = stop.signum is not None
        if self.ddp and self.fast_path and self.step % STOP_CHECK_STEPS:
            return False  # a collective every step would cost a fast GPU more than a prompt stop is worth
        if self.ddp:
            stopping = distributed.any_rank(stopping)  # a CPU collective: no device sync
        if stopping:
            self._check_finite()
            self.save("last.pt")
            if self.is_main:
                print(f"\nstopped at step {self.step}; resume with --resume (checkpoint "
                      f"{self.run_dir / 'last.pt'})", file=sys.stderr)
            return True
        return False

    def _eval_and_checkpoint(self, metrics_file, tb) -> dict | None:
        self._check_finite()
        val = self.validate() if self.is_main else None
        if val is not None:
            # loss_recons too, so that train and validation curves share their names
            self._log(metrics_file, tb, "validation", {"loss_recons": val["cross_entropy"], **{
                k: v for k, v in val.items() if not isinstance(v, (list, str))}})
            # Best = lowest reconstruction loss: the margin and contour terms pull against each
            # other (contour wants |de| >= 1/|dk|, margin wants |e| <= 1), so their sum drifts up
            # while the model gets better at what it is for, predicting keys.
            # With a velocity head: the joint NLL of key and velocity.
            score = val["cross_entropy"] + val.get("velocity_nll", 0.0)
            if score < self.best_val_loss:
                self.best_val_loss = score
                self.save("best.pt")
        elif self.is_main and not self.val:
            self.save("best.pt")  # no validation split: the latest weights are the best we know
        self.save("last.pt")
        if self.ddp:
            distributed.barrier()
        return val


def _set_velocity_feature_stats(model: Autoencoder, notes: Notes, cfg: Config, rng: np.random.Generator) -> None:
    """Standardise a fresh velocity head's dense inputs with statistics of (up to 200k) training
    notes; button values drawn uniformly (the encoder spreads notes about evenly over the buttons)."""
    i = rng.choice(len(notes.keys), size=min(len(notes.keys), 200_000), replace=False)
    first = notes.pos[i] == 0
    t = np.where(first, cfg.data_delta_time_max,
                 np.clip(notes.onsets[i] - notes.onsets[np.maximum(i - 1, 0)], 0.0, cfg.data_delta_time_max))
    if cfg.num_buttons == 1:  # the language-model baseline's decoder sees b = 0 (no encoder)
        b = np.zeros(len(i))
    else:
        b = rng.integers(0, cfg.num_buttons, len(i)) * (2 / (cfg.num_buttons - 1)) - 1
    model.vel.set_feature_stats(notes.states[i], t, b)


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
    p.add_argument("--force", action="store_true", help="train in RUN even if it holds files train did not "
                   f"write (no {RUN_MARK}): its cfg.json, checkpoints and metrics are replaced or appended to")
    p.set_defaults(func=run, accepts_overrides=True)


def run(args: argparse.Namespace) -> int:
    from pianogenie.data import load_notes

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
    trainer = Trainer(cfg, data, args.run_dir, resume=args.resume, device=args.device, workers=workers,
                      init=args.init)
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
    return 128 + trainer.stopped_by if trainer.stopped_by is not None else 0


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


RUN_MARK = "pianogenie-run.json"  # written into RUN before anything else: the proof RUN is train's
RUN_FILES = ("cfg.json", "metrics.jsonl", "best.pt", "last.pt", "tensorboard")  # what train writes in RUN


def run_dir_marked(run_dir: Path) -> bool:
    from pianogenie.outputs import written_by

    mark = Path(run_dir) / RUN_MARK
    return mark.is_file() and mark.stat().st_size > 0 and written_by("train")(mark)


def mark_run_dir(run_dir: Path) -> None:
    from pianogenie.outputs import stamp

    if not run_dir_marked(run_dir):
        atomic_write_text(run_dir / RUN_MARK, json.dumps(stamp({}, "train")) + "\n")


def check_run_dir(args: argparse.Namespace) -> None:
    """RUN must be a folder train may write in, holding no input, and, where it holds any file train
    writes, train's mark (RUN_MARK) proving an earlier train wrote them (or --force)."""
    from pianogenie.outputs import check_output

    inputs = [args.data, args.config, args.init]
    force = getattr(args, "force", False)
    run_dir = check_output(args.run_dir, flag="--run-dir", inputs=inputs, folder=True)
    for name in ("cfg.json", "metrics.jsonl", "best.pt", "last.pt", RUN_MARK):
        check_output(run_dir / name, flag="--run-dir", inputs=inputs)
    present = [name for name in RUN_FILES if os.path.lexists(run_dir / name)]
    if present and not run_dir_marked(run_dir) and not force:
        raise UserError(f"--run-dir {run_dir} holds {', '.join(present)} but no {RUN_MARK}: not a run this "
                        "command wrote; refusing to write into it (choose another --run-dir, or pass --force)")
