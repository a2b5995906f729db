"""Training: the loop, the learning-rate schedule, checkpoints, logging and distributed data parallel.

One step, in a fixed order: lr -> eval/checkpoint -> batch -> forward/backward -> clip -> step -> log.
`torchrun --nproc_per_node=N -m pianogenie train ...` runs the same loop under DDP.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from pianogenie import distributed
from pianogenie.config import Config
from pianogenie.evaluate import evaluate
from pianogenie.inputs import button_value
from pianogenie.meters import RunningMeans
from pianogenie.model import CHECKPOINT_FORMAT, Autoencoder, load_checkpoint, load_model, losses
from pianogenie.outputs import atomic_path, mark_folder
from pianogenie.prefetch import BatchSource
from pianogenie.util import Interrupted, UserError
from pianogenie.velocity import VelocityBaselines
from pianogenie.windows import Batch, Notes, TrainWindows

log = logging.getLogger(__name__)

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


def default_workers() -> int:
    """Shard threads for one CPU process: every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


RUN_MARK = "pianogenie-run.json"  # written into RUN before anything else: the proof RUN is train's
RUN_FILES = ("cfg.json", "metrics.jsonl", "best.pt", "last.pt", "tensorboard")  # what train writes in RUN


def _check_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """A loaded optimizer state whose moments fit their parameters (load_state_dict does not check)."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape != p.shape:
                    raise ValueError(f"optimizer {key} has shape {tuple(value.shape)}, its parameter {tuple(p.shape)}")
                if (
                    isinstance(value, torch.Tensor)
                    and value.is_floating_point()
                    and not bool(torch.isfinite(value).all())
                ):
                    raise ValueError(f"optimizer {key} holds NaN or Inf")


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
    """One training run: built in named steps (device, data, model and optimizer, starting weights,
    resume, parallelism), each setting its own part of the state; `train()` runs the loop."""

    def __init__(
        self,
        cfg: Config,
        data: Mapping[str, Sequence[np.ndarray]],
        run_dir: str | os.PathLike,
        resume: bool = False,
        device: str | None = None,
        progress: bool = True,
        workers: int = 1,
        init: str | os.PathLike | None = None,
        fast_path: bool | None = None,
        report: Callable[[str], None] | None = None,
        labels: Mapping[str, Sequence[np.ndarray]] | None = None,
    ):
        """`report` hears what the run tells its user on the way (a resume's changed config, where a
        stopped run's checkpoint is); default: this module's logger. `labels`: the notes' condition
        labels ({split: [(N, 4) ids]}, `pianogenie.notes_file.load_labels`; a store's are read from
        its memory-mapped label columns, never built in memory), needed by a conditioned config."""
        self.cfg = cfg
        self.report = report or log.warning
        self.run_dir = Path(run_dir)
        self._choose_device(device)
        self.progress = progress and self.is_main
        # The accelerator path never waits for the device between summaries: batches are drawn
        # ahead on a thread, loss terms are summed on the device, and a non-finite loss is caught
        # at the next summary or checkpoint instead of at once. On the CPU waiting costs nothing.
        self.fast_path = self.device.type != "cpu" if fast_path is None else fast_path
        self._take_data(data, labels)
        torch.manual_seed(cfg.seed + self.rank)
        self.rng = np.random.default_rng([cfg.seed, self.rank])
        self._build_model()
        # the run's progress: set here, restored by a resume, advanced by train()
        self.step = 0
        self.best_val_loss = math.inf
        self.stopped_by = None  # the signal (SIGINT/SIGTERM) that stopped training, if one did
        self.batches: BatchSource | None = None  # train() opens it
        self.meters = RunningMeans(self.device)  # loss terms since the last summary
        self.finite_at = 0  # the step up to which every loss is known to be finite
        self._starting_weights(init, resume)
        if resume:
            self._resume()
            self.finite_at = self.step
        elif self.is_main and (self.run_dir / "last.pt").exists():
            raise UserError(
                f"{self.run_dir} already holds a run (last.pt); pass --resume to continue it "
                "or choose another --run-dir"
            )
        self._parallelise(workers)

    def _choose_device(self, device: str | None) -> None:
        """This process's device, and under torchrun its rank in the process group."""
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

    def _take_data(
        self, data: Mapping[str, Sequence[np.ndarray]], labels: Mapping[str, Sequence[np.ndarray]] | None = None
    ) -> None:
        """Training windows, the validation split and the velocity baselines."""
        cfg = self.cfg
        if "train" not in data or not data["train"]:
            raise UserError("the notes file has no train split (or it is empty)")
        if cfg.conditions and labels is None:
            raise UserError(
                f"conditions={cfg.conditions} needs notes with labels: prepare them with --labels "
                "annotated or estimated"
            )
        self.labels = labels if cfg.conditions else None
        self.windows = TrainWindows(
            Notes(
                data["train"],
                "train",
                velocity=cfg.velocity_bins > 0,
                labels=self.labels["train"] if self.labels else None,
            ),
            cfg.seq_len,
        )
        val = data.get("validation")
        self.val = val if val is not None and len(val) else None
        self.val_labels = self.labels.get("validation") if self.labels and self.val else None
        self.velocity_baselines = VelocityBaselines(data["train"]) if cfg.velocity_bins else None

    def _build_model(self) -> None:
        """A fresh model, its optimizer and learning-rate schedule."""
        cfg = self.cfg
        self.model = Autoencoder(cfg).to(self.device)
        # On a GPU, one fused kernel updates every parameter (the same Adam maths; foreach on the CPU).
        self.optimizer = torch.optim.Adam(
            [p for name, p in self.model.named_parameters() if cfg.train_keys or name.startswith("vel.")],
            lr=cfg.lr,
            fused=True if self.device.type == "cuda" else None,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_at(s, cfg) / cfg.lr)

    def _starting_weights(self, init: str | os.PathLike | None, resume: bool) -> None:
        """--init's weights (a fine-tune), the velocity head's input statistics, frozen key weights."""
        cfg = self.cfg
        pretrained = None
        if init is not None and not resume:  # fine-tune: start from trained weights, fresh optimizer
            pretrained = self._load_init(init)
        if not cfg.train_keys and init is None and not resume:
            raise UserError(
                "train_keys=false trains only the velocity head on frozen key weights: pass --init with a trained model"
            )
        if cfg.velocity_bins and not resume and not (pretrained is not None and hasattr(pretrained, "vel")):
            _set_velocity_feature_stats(self.model, self.windows.notes, cfg, self.rng)
        if not cfg.train_keys:  # only the velocity head learns; the key path is exactly --init's
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("vel."))

    def _load_init(self, init: str | os.PathLike) -> Autoencoder:
        cfg = self.cfg
        pretrained, pretrained_cfg = load_model(init)
        if (pretrained_cfg.model_rnn_dim, pretrained_cfg.model_rnn_num_layers, pretrained_cfg.num_buttons) != (
            cfg.model_rnn_dim,
            cfg.model_rnn_num_layers,
            cfg.num_buttons,
        ):
            raise UserError(
                f"--init {init}: its model ({pretrained_cfg.model_rnn_num_layers} x "
                f"{pretrained_cfg.model_rnn_dim}, {pretrained_cfg.num_buttons} buttons) differs "
                "from the config's; pass matching --model_rnn_dim/--model_rnn_num_layers/--num_buttons"
            )
        if pretrained_cfg.conditions and pretrained_cfg.conditions != cfg.conditions:
            raise UserError(
                f"--init {init}: it is conditioned on {pretrained_cfg.conditions}, this config on "
                f"{cfg.conditions or 'nothing'}"
            )
        from pianogenie.model import extend_to_conditions

        # A key model without a velocity head may start a run that adds one (fresh vel.* weights);
        # an unconditioned one, a conditioned run (zero condition weights).
        try:
            missing, unexpected = self.model.load_state_dict(
                extend_to_conditions(pretrained.state_dict(), self.model), strict=False
            )
        except RuntimeError as e:  # shapes differ (e.g. another velocity head size)
            raise UserError(
                f"--init {init}: its weights do not fit this config: {' '.join(str(e).strip().splitlines()[:2])}"
            ) from None
        if unexpected or any(not name.startswith("vel.") for name in missing):
            raise UserError(
                f"--init {init}: its weights do not fit this config (missing {missing}, unexpected {unexpected})"
            )
        return pretrained

    def _parallelise(self, workers: int) -> None:
        """The DDP wrapper under torchrun; on one CPU process, the shard threads."""
        self.ddp_model: torch.nn.Module = self.model
        if self.ddp:
            self.ddp_model = DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=self.cfg.num_buttons == 1,
            )  # the 1-button baseline skips the encoder
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # Thread shards only where they help: one CPU process (DDP ranks and GPUs parallelise already).
        self.workers = max(1, workers) if not self.ddp and self.device.type == "cpu" else 1
        self.pool: ThreadPoolExecutor | None = None
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
            "rng": {
                "torch": torch.get_rng_state(),
                "numpy": json.dumps(self.batches.rng_state() if self.batches else self.rng.bit_generator.state),
            },
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
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise UserError(f"{path} is not a training checkpoint of this tool")
        missing = [
            k for k in ("model", "cfg", "step", "best_val_loss", "optimizer", "scheduler", "rng") if k not in ckpt
        ]
        if missing:
            raise UserError(
                f"--resume: {path} has no {', '.join(missing)} state (not a complete training "
                "checkpoint); start a new run from its weights with --init instead"
            )
        step, best = ckpt["step"], ckpt["best_val_loss"]
        if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= 1 << 40:
            raise UserError(f"--resume: {path} is damaged: step {step!r} is not a step count (an integer >= 0)"[:300])
        if not isinstance(best, (int, float)) or isinstance(best, bool) or math.isnan(best) or best < 0:
            raise UserError(
                f"--resume: {path} is damaged: best_val_loss {best!r} is not a loss (a number >= 0, "
                "or inf before the first validation)"[:300]
            )
        if (
            not isinstance(ckpt["cfg"], dict)
            or not isinstance(ckpt["rng"], dict)
            or not isinstance(ckpt["model"], dict)
        ):
            raise UserError(f"--resume: {path} is damaged: its cfg, rng or model entry is not a mapping")
        try:
            saved = Config.from_dict(ckpt["cfg"], strict=False)
        except UserError as e:
            raise UserError(f"{path}: {e}") from None
        diff = {k: (v, getattr(self.cfg, k)) for k, v in dataclasses.asdict(saved).items() if getattr(self.cfg, k) != v}
        if set(diff) - RESUME_MAY_CHANGE:
            raise UserError(
                f"--resume: config differs from the run's: {diff} (on resume only "
                f"{', '.join(sorted(RESUME_MAY_CHANGE))} may change)"
            )
        from pianogenie.model import check_finite

        check_finite(ckpt["model"], path)
        part = "model"
        try:  # each state as torch/numpy check it; any of them damaged: one line naming it
            self.model.load_state_dict(ckpt["model"])
            part = "optimizer"
            self.optimizer.load_state_dict(ckpt["optimizer"])
            part = "scheduler"
            self.scheduler.load_state_dict(ckpt["scheduler"])
            part = "rng"
            torch.set_rng_state(ckpt["rng"]["torch"])
            # Each rank continues its own stream; rank 0's saved state is the reference.
            state = json.loads(ckpt["rng"]["numpy"])
            if self.rank == 0:
                self.rng.bit_generator.state = state
            else:
                self.rng = np.random.default_rng([self.cfg.seed, self.rank, step])
            _check_optimizer(self.optimizer)
        except (RuntimeError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            raise UserError(
                f"--resume: {path} is damaged: its {part} state does not load ({first}); start a new "
                "run from its weights with --init instead"
            ) from None
        self.step, self.best_val_loss = step, float(best)
        if diff and self.is_main:  # said once the checkpoint has loaded: a damaged one is one line alone
            self.report(
                f"resuming with {', '.join(f'{k}={new} (was {old})' for k, (old, new) in diff.items())}; "
                "the learning-rate schedule follows the new max_num_steps from here"
            )

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
        return evaluate(
            self.model,
            self.val,
            self.cfg,
            device=self.device,
            name="validation",
            velocity_baselines=self.velocity_baselines,
            step=self.step,
            sample=self.cfg.eval_windows,
            labels=self.val_labels,
        )

    # ---------------------------------------------------------------------------------------------
    # The loop

    def train(self) -> dict:
        cfg = self.cfg
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            mark_folder(self.run_dir, RUN_MARK, "train")  # first: from here on RUN is provably train's
            cfg.save(self.run_dir / "cfg.json")
        metrics_file, tb = self._open_logs()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=cfg.max_num_steps, initial=self.step, desc="train", unit="step", dynamic_ncols=True)
        shown: dict[str, str] = {}  # the progress bar's postfix
        meters, t_last = RunningMeans(self.device), time.perf_counter()
        self.meters, self.finite_at = meters, self.step
        self.batches = BatchSource(
            self.windows, self.rng, cfg, depth=2 if self.fast_path else 0, pin=self.device.type == "cuda"
        )
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
                            bar.set_postfix(
                                loss=shown.get("loss", "-"),
                                lr=f"{lr:.2e}",
                                val=f"{last_val['loss']:.3f}" if last_val else "-",
                            )
                    if self.step % cfg.summarize_frequency == 0:
                        n_sum, means = meters.count, meters.read()
                        self._check_finite()
                        now = time.perf_counter()
                        self._log(
                            metrics_file, tb, "train", {**means, "lr": lr, "steps_per_second": n_sum / (now - t_last)}
                        )
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
            terms, _, _ = losses(self.ddp_model, batch, self.cfg, self.step)
            if self.fast_path or torch.isfinite(terms["loss"]):  # (fast path: checked later, no sync)
                terms["loss"].backward()
            return {k: v.detach() for k, v in terms.items()}
        num_notes = float(batch.mask.sum())
        num_pairs = float((batch.mask[:, 1:] & batch.mask[:, :-1]).sum())

        def shard(b: Batch):
            terms, _, _ = losses(self.model, b, self.cfg, self.step, num_notes, num_pairs)
            return {k: v.detach() for k, v in terms.items()}, torch.autograd.grad(terms["loss"], self.params)

        assert self.pool is not None, "more than one shard: the pool runs them"
        results = list(self.pool.map(shard, shards))
        for i, p in enumerate(self.params):
            p.grad = sum(grads[i] for _, grads in results[1:]) + results[0][1][i]
        return {k: sum(terms[k] for terms, _ in results) for k in results[0][0]}

    def train_step(self, batch: Batch) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """forward/backward -> clip -> optimizer and lr step; stops on a non-finite loss."""
        terms = self.forward_backward(batch)
        if not self.fast_path and not torch.isfinite(terms["loss"]):
            raise UserError(
                f"loss became {terms['loss'].item()} at step {self.step} "
                f"({', '.join(f'{k}={v.item():.4g}' for k, v in terms.items())}); stopped without "
                f"updating the weights. The last good checkpoint is {self.run_dir / 'last.pt'} "
                "(try a lower --lr or --grad_clip_norm)."
            )
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
                f"{self.run_dir / 'last.pt'} (try a lower --lr or --grad_clip_norm)."
            )
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
                self.report(
                    f"\nstopped at step {self.step}; resume with --resume (checkpoint {self.run_dir / 'last.pt'})"
                )
            return True
        return False

    def _eval_and_checkpoint(self, metrics_file, tb) -> dict | None:
        self._check_finite()
        val = self.validate() if self.is_main else None
        if val is not None:
            # loss_recons too, so that train and validation curves share their names
            self._log(
                metrics_file,
                tb,
                "validation",
                {
                    "loss_recons": val["cross_entropy"],
                    **{k: v for k, v in val.items() if not isinstance(v, (list, str))},
                },
            )
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
    gap = notes.onsets[i] - notes.onsets[np.maximum(i - 1, 0)]
    t = np.where(first, cfg.data_delta_time_max, np.clip(gap, 0.0, cfg.data_delta_time_max))  # inputs.delta_times
    if cfg.num_buttons == 1:  # the language-model baseline's decoder sees b = 0 (no encoder)
        b = np.zeros(len(i))
    else:
        b = button_value(rng.integers(0, cfg.num_buttons, len(i)), cfg.num_buttons)
    model.vel.set_feature_stats(notes.states[i], t, b)
