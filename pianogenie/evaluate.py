"""Honest evaluation: losses, perplexity, key accuracy, contour violation and button usage on a split.

The default protocol scores every non-overlapping 128-note window of every performance,
deterministically and without augmentation; `first128` is the 2021 tutorial's protocol.

With per-note condition labels (`pianogenie.notes_file.load_labels`), a conditioned model is scored with
its true conditions and with none, and `harmony_metrics` measures whether decoding follows the
harmony: the decoder, driven by the encoder's buttons of the real windows (and their real delta
times), plays its own keys; the chord-tone rate is the share of played keys whose pitch class is
in the chord in force (over notes with a chord), the in-key rate the share in the key signature's
major scale (over notes with one); the same for the real notes is the human rate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import torch

from pianogenie.config import Config
from pianogenie.model import Autoencoder, losses, total_loss
from pianogenie.velocity import MEAN_OF, VelocityBaselines, mean_velocity, velocity_nll
from pianogenie.windows import Batch, Notes, eval_windows


@torch.no_grad()
def evaluate(
    model: Autoencoder,
    performances: Sequence[np.ndarray],
    cfg: Config,
    protocol: str = "all",
    batch_size: int = 256,
    device: str | torch.device = "cpu",
    name: str = "split",
    progress: bool = False,
    velocity_baselines: VelocityBaselines | None = None,
    step: int | None = None,
    sample: int = 0,
    labels: Sequence[np.ndarray] | None = None,
) -> dict:
    """Score `model` on all evaluation windows of `performances` (one split). With a velocity head,
    also velocity MAE/NLL and the baselines' MAE (constant and per-key need `velocity_baselines`
    built from the train split), on the notes after each performance's 8th.

    `loss` is the training objective (model.total_loss) over the split, with the weights in force at
    training step `step` (None: the config's base weights), so that it and the training loss of that
    step are one quantity. `sample` > 0: a fixed seeded subset of that many windows (validation
    during training), not the full protocol. `labels`: the split's per-note condition ids
    (`load_labels`' list, or a store's StoreLabels, read memory-mapped); with them a conditioned model is scored with the true conditions (`cross_entropy`, `perplexity`) and
    with none (`perplexity_no_conditions`)."""
    from tqdm import tqdm

    with_velocity = hasattr(model, "vel")
    notes = Notes(performances, name, velocity=with_velocity, labels=labels)
    vel_sums: dict[str, float] = {}
    starts, lengths = eval_windows(notes, cfg.seq_len, protocol, sample=sample, seed=cfg.seed)
    was_training = model.training
    model.eval()
    conditioned = bool(cfg.conditions) and notes.labels is not None
    sums = dict(
        ce_none=0.0,
        ce=0.0,
        correct=0.0,
        notes=0.0,
        margin=0.0,
        contour=0.0,
        pairs=0.0,
        viol_tut=0.0,
        viol_paper=0.0,
        velocity=0.0,
    )
    hist = torch.zeros(cfg.num_buttons, dtype=torch.float64)
    # disable=None: no bar where stderr is not a terminal (a log file gets the result, not the bar)
    for i in tqdm(
        range(0, len(starts), batch_size),
        desc=f"evaluate {name}",
        unit="batch",
        disable=None if progress else True,
        leave=False,
    ):
        idx, mask = notes.index(starts[i : i + batch_size], lengths[i : i + batch_size], cfg.seq_len)
        batch = notes.gather(idx, mask, cfg.data_delta_time_max).to(device)
        outputs: dict = {}
        terms, hat_k, e = losses(model, batch, cfg, outputs=outputs)
        if conditioned:
            none_terms, _, _ = losses(model, dataclasses.replace(batch, c=None), cfg)
            sums["ce_none"] += none_terms["loss_recons"].item() * batch.mask.sum().item()
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
    means = {"loss_recons": ce, "loss_margin": sums["margin"] / sums["notes"], "loss_contour": sums["contour"] / pairs}
    if with_velocity:
        means["loss_velocity"] = sums["velocity"] / sums["notes"]
    return {
        "protocol": protocol,
        "num_performances": len(performances),
        "num_windows": len(starts),
        "num_notes": int(sums["notes"]),
        "loss": total_loss(means, cfg, step),
        "cross_entropy": ce,
        "perplexity": math.exp(ce),
        "key_accuracy": sums["correct"] / sums["notes"],
        **{k: v for k, v in means.items() if k != "loss_recons"},  # (= cross_entropy)
        "contour_violation_ratio": sums["viol_tut"] / pairs,  # tutorial: sign(dk) != sign(db)
        "contour_violation_ratio_paper": sums["viol_paper"] / pairs,  # paper: dk * db < 0
        "button_histogram": [int(x) for x in hist.tolist()],
        "button_entropy_bits": float(-(nz * np.log2(nz)).sum()) + 0.0,  # + 0.0: no "-0.0"
        **_velocity_metrics(vel_sums),
        **(
            {
                "conditions": list(cfg.condition_names),
                "cross_entropy_no_conditions": sums["ce_none"] / sums["notes"],
                "perplexity_no_conditions": math.exp(sums["ce_none"] / sums["notes"]),
            }
            if conditioned
            else {}
        ),
    }


DEFAULT_TEMPERATURE = 0.25  # the app's slider, PianoGenie.press's and decode's default


@torch.no_grad()
def harmony_metrics(
    model: Autoencoder,
    performances: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    cfg: Config,
    temperatures: tuple[float, ...] = (0.0, DEFAULT_TEMPERATURE),
    batch_size: int = 256,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict:
    """Chord-tone and in-key rates of the real notes (human) and of the decoder's own keys, driven
    by the encoder's buttons of every evaluation window, at each temperature (0 = argmax), with the
    true conditions (a conditioned model) and with none. Sampling is seeded: the same figures each run."""
    from pianogenie import harmony
    from pianogenie.constants import LOWEST_PITCH, SOS
    from pianogenie.labels import CHORD_FAMILY, CHORD_ROOT, KEYSIG

    notes = Notes(performances, "split", labels=labels)
    starts, lengths = eval_windows(notes, cfg.seq_len)
    # (13, 9, 12) chord membership and (13, 12) key membership by ids and pitch class
    chord_pc = np.zeros((harmony.NUM_CHORD_ROOTS, harmony.NUM_CHORD_FAMILIES, 12), bool)
    for r in range(1, harmony.NUM_CHORD_ROOTS):
        for f in range(1, harmony.NUM_CHORD_FAMILIES):
            chord_pc[r, f, list(harmony.chord_pitch_classes(r, f))] = True
    key_pc = np.zeros((harmony.NUM_KEYSIGS, 12), bool)
    for k in range(1, harmony.NUM_KEYSIGS):
        key_pc[k, list(harmony.keysig_pitch_classes(k))] = True
    settings = [("true_conditions", True)] * bool(cfg.conditions) + [("no_conditions", False)]
    counts: dict = {}

    def tally(name: str, keys: np.ndarray, c: np.ndarray, mask: np.ndarray) -> None:
        pc = (keys + LOWEST_PITCH) % 12
        has_chord = mask & (c[..., CHORD_ROOT] > 0) & (c[..., CHORD_FAMILY] > 0)
        has_key = mask & (c[..., KEYSIG] > 0)
        in_chord = chord_pc[c[..., CHORD_ROOT], c[..., CHORD_FAMILY], pc]
        in_key = key_pc[c[..., KEYSIG], pc]
        n = counts.setdefault(name, np.zeros(4))
        n += [(in_chord & has_chord).sum(), has_chord.sum(), (in_key & has_key).sum(), has_key.sum()]

    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, len(starts), batch_size):
        idx, mask = notes.index(starts[i : i + batch_size], lengths[i : i + batch_size], cfg.seq_len)
        batch = notes.gather(idx, mask, cfg.data_delta_time_max).to(device)
        c_all = batch.c
        assert c_all is not None, "a labelled split"
        c_np = c_all.cpu().numpy()
        tally("human", batch.k.cpu().numpy(), c_np, mask)
        b = model.quant.discrete_to_real(model.buttons(batch.k, batch.t, batch.lengths))  # (B, T)
        for name, given in settings:
            for temp in temperatures:
                state, prev = None, torch.full_like(batch.k[:, 0], SOS)
                played = torch.empty_like(batch.k)
                for j in range(batch.k.shape[1]):
                    logits, state = model.dec.step(
                        prev, batch.t[:, j], b[:, j], state, c=c_all[:, j] if given else None
                    )
                    if temp > 0:
                        u = torch.rand(logits.shape, generator=gen).clamp_(1e-12, 1.0).to(logits.device)
                        logits = logits - temp * torch.log(-torch.log(u))  # Gumbel-max: softmax(logits / T)
                    prev = played[:, j] = logits.argmax(-1)
                tally(f"{name}/{'argmax' if temp == 0 else f'temperature_{temp:g}'}", played.cpu().numpy(), c_np, mask)
    model.train(was_training)
    out: dict = {"conditions": list(cfg.condition_names)}
    for name, (chord_hits, chord_n, key_hits, key_n) in counts.items():
        d = out
        for part in name.split("/")[:-1]:
            d = d.setdefault(part, {})
        d[name.split("/")[-1]] = {
            "chord_tone_rate": chord_hits / chord_n if chord_n else None,
            "in_key_rate": key_hits / key_n if key_n else None,
        }
    out["chord_notes"], out["key_notes"] = int(counts["human"][1]), int(counts["human"][3])
    return out


def _velocity_sums(sums: dict[str, float], hat_v: torch.Tensor, batch: Batch, baselines: VelocityBaselines) -> None:
    """Accumulate absolute errors (model and baselines) and NLL over the batch's scored notes."""
    assert batch.v is not None and batch.s is not None and batch.pos is not None, "a batch with velocities"
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
