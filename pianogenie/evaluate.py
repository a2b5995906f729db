"""Honest evaluation: losses, perplexity, key accuracy, contour violation and button usage on a split.

The default protocol scores every non-overlapping 128-note window of every performance,
deterministically and without augmentation; `first128` is the 2021 tutorial's protocol.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch
import torch.nn.functional as F

from pianogenie.config import Config
from pianogenie.model import Autoencoder
from pianogenie.outputs import add_force
from pianogenie.util import UserError, atomic_write_text
from pianogenie.velocity import MEAN_OF, VelocityBaselines, mean_velocity, velocity_nll
from pianogenie.windows import Batch, Notes, eval_windows


def losses(model: Autoencoder, batch: Batch, cfg: Config, num_notes: float | None = None,
           num_pairs: float | None = None, outputs: dict | None = None
           ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The training objective on a batch: reconstruction CE + margin + contour, masked to real notes.

    Terms are sums over real notes (real consecutive pairs for contour) divided by `num_notes`
    (`num_pairs`), by default this batch's own counts; a shard of a larger batch passes the whole
    batch's counts, so that the shards' losses (and gradients) add up to the whole batch's.
    With a velocity head and a batch carrying velocities, adds the velocity NLL (`loss_velocity`)
    and puts the velocity logits (B, T, bins) in `outputs["hat_v"]` if `outputs` is given. Returns the loss terms, the logits (B, T, 88) and e (B, T).
    """
    k, t, mask = batch.k, batch.t, batch.mask
    out = model(k, t, batch.lengths, batch.s)  # (B, T, 88), (B, T)[, (B, T, bins)]
    hat_k, e = out[0], out[1]
    m = mask.to(e.dtype)
    pair = m[:, 1:] * m[:, :-1]  # (B, T-1) both notes real
    num_notes = m.sum() if num_notes is None else num_notes
    num_pairs = pair.sum().clamp(min=1) if num_pairs is None else max(num_pairs, 1)
    ce = F.cross_entropy(hat_k.transpose(1, 2), k, reduction="none")  # (B, T)
    recons = (ce * m).sum() / num_notes
    margin = (torch.square(torch.clamp(e.abs() - 1, min=0)) * m).sum() / num_notes
    dk = torch.diff(k, dim=1).to(e.dtype)
    de = torch.diff(e, dim=1)
    contour = (torch.square(torch.clamp(1 - dk * de, min=0)) * pair).sum() / num_pairs
    total = recons + cfg.loss_margin_multiplier * margin + cfg.loss_contour_multiplier * contour
    terms = {"loss": total, "loss_recons": recons, "loss_margin": margin, "loss_contour": contour}
    if len(out) == 3:
        terms["loss_velocity"] = (velocity_nll(out[2], batch.v) * m).sum() / num_notes
        terms["loss"] = total + cfg.loss_velocity_multiplier * terms["loss_velocity"]
        if outputs is not None:
            outputs["hat_v"] = out[2].detach()
    return terms, hat_k, e


@torch.no_grad()
def evaluate(model: Autoencoder, performances: list[np.ndarray], cfg: Config, protocol: str = "all",
             batch_size: int = 256, device: str | torch.device = "cpu", name: str = "split",
             progress: bool = False, velocity_baselines: VelocityBaselines | None = None) -> dict:
    """Score `model` on all evaluation windows of `performances` (one split). With a velocity head,
    also velocity MAE/NLL and the baselines' MAE (constant and per-key need `velocity_baselines`
    built from the train split), on the notes after each performance's 8th."""
    from tqdm import tqdm

    with_velocity = hasattr(model, "vel")
    notes = Notes(performances, name, velocity=with_velocity)
    vel_sums: dict[str, float] = {}
    starts, lengths = eval_windows(notes, cfg.seq_len, protocol)
    was_training = model.training
    model.eval()
    sums = dict(ce=0.0, correct=0.0, notes=0.0, margin=0.0, contour=0.0, pairs=0.0, viol_tut=0.0, viol_paper=0.0)
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
    return {
        "protocol": protocol,
        "num_performances": len(performances),
        "num_windows": int(len(starts)),
        "num_notes": int(sums["notes"]),
        "loss": ce + cfg.loss_margin_multiplier * sums["margin"] / sums["notes"]
        + cfg.loss_contour_multiplier * sums["contour"] / pairs,
        "cross_entropy": ce,
        "perplexity": math.exp(ce),
        "key_accuracy": sums["correct"] / sums["notes"],
        "loss_margin": sums["margin"] / sums["notes"],
        "loss_contour": sums["contour"] / pairs,
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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        description="Score a model on a split of a prepared notes file: reconstruction cross-entropy "
        "(nats/note), perplexity, key accuracy, contour violation ratios (tutorial: sign(dk) != sign(db); "
        "paper: dk*db < 0) and button usage; for a model with a velocity head also velocity_mae, velocity_nll "
        "(nats per note) and the MAE of four baselines (train median, previous note, per-key train mean, mean of "
        "the previous 8), all on the notes after each performance's 8th. Prints JSON.",
    )
    p.add_argument("model", metavar="RUN_OR_CHECKPOINT", help="run directory (uses best.pt), our checkpoint, "
                   "or the tutorial's model.pt (with its cfg.json beside it)")
    p.add_argument("--data", metavar="NOTES.json.gz", help="notes file from `pianogenie prepare` (required "
                   "unless --gold alone is asked for)")
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument("--protocol", choices=["all", "first128"], default="all",
                   help="all: every non-overlapping 128-note window (default); first128: each performance's "
                   "first window only (the tutorial's protocol)")
    p.add_argument("--gold", metavar="MELODIES.json", help="also run the paper's Gold checks on these melodies "
                   "(e.g. ../shared/data/gold_melodies.json): gold (encoder buttons vs people's, mean squared "
                   "difference over transpositions -6..+6), gold_sweep (gold at other delta times) and "
                   "gold_playback (people's buttons through the decoder: interval-equal and direction-agree rates)")
    p.add_argument("--gold-delta-time", type=float, default=None, metavar="SECONDS",
                   help="fixed delta time between the melodies' notes (default: 0.256, the paper's code's)")
    p.add_argument("--out", metavar="FILE", help="also write the JSON here")
    add_force(p, "result files")
    p.set_defaults(func=run)


def finite_json(obj):
    """`obj` with every non-finite float (NaN, Infinity) as None: what JSON can hold."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def run(args: argparse.Namespace) -> int:
    from pianogenie.data import load_notes
    from pianogenie.model import load_model
    from pianogenie.outputs import check_output, stamp, written_by

    if args.data is None and args.gold is None:
        raise UserError("pass --data NOTES.json.gz (and/or --gold MELODIES.json)")
    if args.out:  # before the work: an output that cannot be written, or would clobber, fails now
        check_output(args.out, flag="--out", inputs=[args.model, args.data, args.gold],
                     what="evaluate result (JSON)", ours=written_by("evaluate"), force=args.force)
    model, cfg = load_model(args.model)
    metrics = {"model": str(args.model)}
    if args.data is not None:
        data = load_notes(args.data)
        if args.split not in data:
            raise UserError(f"{args.data} has no {args.split!r} split (it has: {', '.join(data) or 'none'})")
        if not data[args.split]:
            raise UserError(f"the {args.split!r} split of {args.data} is empty")
        baselines = VelocityBaselines(data.get("train")) if hasattr(model, "vel") else None
        metrics.update({"data": str(args.data), "split": args.split,
                        **evaluate(model, data[args.split], cfg, args.protocol, name=args.split, progress=True,
                                   velocity_baselines=baselines)})
    if args.gold is not None:
        from pianogenie import gold

        delta_time = gold.DELTA_TIME if args.gold_delta_time is None else args.gold_delta_time
        if not delta_time >= 0:
            raise UserError(f"--gold-delta-time must be >= 0, got {delta_time}")
        metrics.update(gold.report(model, cfg, args.gold, delta_time))
    metrics = finite_json(metrics)  # JSON has no NaN or Infinity (e.g. a metric of an empty set): null
    print(json.dumps(metrics, indent=2, allow_nan=False))
    if args.out:
        atomic_write_text(args.out, json.dumps(stamp(metrics, "evaluate"), indent=2, allow_nan=False) + "\n")
    return 0
