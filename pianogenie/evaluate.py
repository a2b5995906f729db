"""Honest evaluation: losses, perplexity, key accuracy, contour violation and button usage on a split.

The default protocol scores every non-overlapping 128-note window of every performance,
deterministically and without augmentation; `first128` is the 2021 tutorial's protocol.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pianogenie.config import Config
from pianogenie.model import Autoencoder, losses, total_loss
from pianogenie.velocity import MEAN_OF, VelocityBaselines, mean_velocity, velocity_nll
from pianogenie.windows import Batch, Notes, eval_windows


@torch.no_grad()
def evaluate(model: Autoencoder, performances: list[np.ndarray], cfg: Config, protocol: str = "all",
             batch_size: int = 256, device: str | torch.device = "cpu", name: str = "split",
             progress: bool = False, velocity_baselines: VelocityBaselines | None = None,
             step: int | None = None, sample: int = 0, labels: list[np.ndarray] | None = None) -> dict:
    """Score `model` on all evaluation windows of `performances` (one split). With a velocity head,
    also velocity MAE/NLL and the baselines' MAE (constant and per-key need `velocity_baselines`
    built from the train split), on the notes after each performance's 8th.

    `loss` is the training objective (model.total_loss) over the split, with the weights in force at
    training step `step` (None: the config's base weights), so that it and the training loss of that
    step are one quantity. `sample` > 0: a fixed seeded subset of that many windows (validation
    during training), not the full protocol."""
    from tqdm import tqdm

    with_velocity = hasattr(model, "vel")
    notes = Notes(performances, name, velocity=with_velocity, labels=labels)
    vel_sums: dict[str, float] = {}
    starts, lengths = eval_windows(notes, cfg.seq_len, protocol, sample=sample, seed=cfg.seed)
    was_training = model.training
    model.eval()
    sums = dict(ce=0.0, correct=0.0, notes=0.0, margin=0.0, contour=0.0, pairs=0.0, viol_tut=0.0, viol_paper=0.0,
                velocity=0.0)
    hist = torch.zeros(cfg.num_buttons, dtype=torch.float64)
    # disable=None: no bar where stderr is not a terminal (a log file gets the result, not the bar)
    for i in tqdm(range(0, len(starts), batch_size), desc=f"evaluate {name}", unit="batch",
                  disable=None if progress else True, leave=False):
        idx, mask = notes.index(starts[i:i + batch_size], lengths[i:i + batch_size], cfg.seq_len)
        batch = notes.gather(idx, mask, cfg.data_delta_time_max).to(device)
        outputs: dict = {}
        terms, hat_k, e = losses(model, batch, cfg, outputs=outputs)
        if with_velocity:
            _velocity_sums(vel_sums, outputs["hat_v"], batch, velocity_baselines or VelocityBaselines(None))
        m = batch.mask.double()
        n = m.sum().item()
        pair = (batch.mask[:, 1:] & batch.mask[:, :-1]).double()
        p = pair.sum().item()
        sums["notes"] += n
        sums["pairs"] += p
        sums["ce"] += terms["loss_recons"].item() * n
        sums["margin"] += terms["loss_margin"].item() * n
        sums["contour"] += terms["loss_contour"].item() * p
        if "loss_velocity" in terms:
            sums["velocity"] += terms["loss_velocity"].item() * n
        sums["correct"] += ((hat_k.argmax(-1) == batch.k).double() * m).sum().item()
        b = model.quant.real_to_discrete(e)  # (B, T)
        dk, db = torch.diff(batch.k, dim=1), torch.diff(b, dim=1)
        sums["viol_tut"] += ((torch.sign(dk) != torch.sign(db)).double() * pair).sum().item()
        sums["viol_paper"] += (((dk * db) < 0).double() * pair).sum().item()
        hist += torch.bincount(b[batch.mask].cpu(), minlength=cfg.num_buttons).double()
    model.train(was_training)
    ce = sums["ce"] / sums["notes"]
    usage = (hist / hist.sum()).numpy()
    nz = usage[usage > 0]
    pairs = max(sums["pairs"], 1.0)
    terms = {"loss_recons": ce, "loss_margin": sums["margin"] / sums["notes"], "loss_contour": sums["contour"] / pairs}
    if with_velocity:
        terms["loss_velocity"] = sums["velocity"] / sums["notes"]
    return {
        "protocol": protocol,
        "num_performances": len(performances),
        "num_windows": int(len(starts)),
        "num_notes": int(sums["notes"]),
        "loss": total_loss(terms, cfg, step),
        "cross_entropy": ce,
        "perplexity": math.exp(ce),
        "key_accuracy": sums["correct"] / sums["notes"],
        **{k: v for k, v in terms.items() if k != "loss_recons"},  # (= cross_entropy)
        "contour_violation_ratio": sums["viol_tut"] / pairs,  # tutorial: sign(dk) != sign(db)
        "contour_violation_ratio_paper": sums["viol_paper"] / pairs,  # paper: dk * db < 0
        "button_histogram": [int(x) for x in hist.tolist()],
        "button_entropy_bits": float(-(nz * np.log2(nz)).sum()) + 0.0,  # + 0.0: no "-0.0"
        **_velocity_metrics(vel_sums),
    }


def _velocity_sums(sums: dict[str, float], hat_v: torch.Tensor, batch: Batch, baselines: VelocityBaselines) -> None:
    """Accumulate absolute errors (model and baselines) and NLL over the batch's scored notes."""
    scored = batch.mask & (batch.pos >= MEAN_OF)  # (B, T)
    v = batch.v[scored]
    sums["velocity_notes"] = sums.get("velocity_notes", 0.0) + float(scored.sum())
    sums["velocity_nll"] = sums.get("velocity_nll", 0.0) + velocity_nll(hat_v[scored], v).sum().item()
    sums["velocity_mae"] = sums.get("velocity_mae", 0.0) + (mean_velocity(hat_v[scored]) - v).abs().sum().item()
    v_np = v.cpu().numpy()
    for name, pred in baselines.predictions(v_np, batch.k[scored].cpu().numpy(), batch.s[scored].cpu().numpy()).items():
        key = f"velocity_mae_baseline_{name}"
        sums[key] = sums.get(key, 0.0) + float(np.abs(pred - v_np).sum())


def _velocity_metrics(sums: dict[str, float]) -> dict:
    n = sums.pop("velocity_notes", 0.0)
    if not n:
        return {}
    out = {key: value / n for key, value in sums.items()}
    out["velocity_num_notes"] = int(n)
    best = min(v for k, v in out.items() if k.startswith("velocity_mae_baseline_"))
    if best > 0:
        out["velocity_mae_vs_best_baseline"] = out["velocity_mae"] / best
    return out
