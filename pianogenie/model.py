"""The Piano Genie autoencoder (encoder -> integer quantizer -> decoder), its training objective
(`losses`, `total_loss`: the one definition that training and validation both report) and checkpoint loading.

Parameter names and layouts are the 2021 tutorial's (`enc.input.weight`, `dec.lstm.weight_ih_l0`,
..., `dec.output.bias`), so its `model.pt` loads here unchanged and ours loads into its code.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.export_check import MAX_ABS_WEIGHT
from pianogenie.inputs import button_value
from pianogenie.util import UserError
from pianogenie.velocity import VelocityHead, velocity_nll

if typing.TYPE_CHECKING:
    from pianogenie.windows import Batch

CHECKPOINT_FORMAT = "pianogenie-checkpoint-v1"


class Encoder(nn.Module):
    """Whole performance (key one-hot + delta time) -> one real value e_i per note."""

    def __init__(self, rnn_dim: int = 128, rnn_num_layers: int = 2):
        super().__init__()
        self.input = nn.Linear(NUM_KEYS + 1, rnn_dim)
        self.lstm = nn.LSTM(rnn_dim, rnn_dim, rnn_num_layers, batch_first=True, bidirectional=True)
        self.output = nn.Linear(rnn_dim * 2, 1)

    def forward(self, k: torch.Tensor, t: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        # k: (B, T) long, t: (B, T) float, lengths: (B,) valid notes per row (None = all T)
        x = torch.cat([F.one_hot(k, NUM_KEYS).to(t.dtype), t.unsqueeze(-1)], dim=-1)  # (B, T, 89)
        x = self.input(x)  # (B, T, H)
        if lengths is not None and bool((lengths < k.shape[1]).any()):
            # Padding must not leak into the backward direction of the real notes.
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = self.lstm(packed)
            x, _ = nn.utils.rnn.pad_packed_sequence(x, batch_first=True, total_length=k.shape[1])
        else:
            x, _ = self.lstm(x)  # (B, T, 2H)
        return self.output(x)[..., 0]  # (B, T)


class IntegerQuantizer(nn.Module):
    """Real value in [-1, 1] -> one of `num_bins` evenly spaced centres, straight-through gradient."""

    def __init__(self, num_bins: int = 8):
        super().__init__()
        self.num_bins = num_bins

    def real_to_discrete(self, e: torch.Tensor) -> torch.Tensor:
        x = torch.clamp((e + 1) / 2, 0, 1) * (self.num_bins - 1)
        return torch.round(x).long()  # (...) buttons 0..num_bins-1

    def discrete_to_real(self, b: torch.Tensor) -> torch.Tensor:
        return button_value(b.float(), self.num_bins)  # bin centres (inputs.py)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            delta = self.discrete_to_real(self.real_to_discrete(e)) - e
        return e + delta  # value = bin centre, gradient = identity


class Decoder(nn.Module):
    """P(k_i | k_<i, t_<=i, b_<=i[, c_i]): previous key one-hot (89 with SOS) + delta time + button
    [+ one one-hot per condition column, "none" = id 0 included] -> key logits.

    `conditions` (pianogenie.labels.CONDITIONS names) appends the one-hots of their label columns
    after the button, in `condition_columns` order: the input layer's first NUM_KEYS + 3 columns
    are the unconditioned decoder's, so an unconditioned model's weights extend to a conditioned one
    by zero columns (it then plays exactly as before, whatever the conditions)."""

    def __init__(self, rnn_dim: int = 128, rnn_num_layers: int = 2, conditions: tuple[str, ...] = ()):
        from pianogenie.labels import condition_columns

        super().__init__()
        self.rnn_dim = rnn_dim
        self.rnn_num_layers = rnn_num_layers
        self.conditions = tuple(conditions)
        self.cond_columns, self.cond_sizes = condition_columns(self.conditions)
        self.input = nn.Linear(NUM_KEYS + 3 + sum(self.cond_sizes), rnn_dim)
        self.lstm = nn.LSTM(rnn_dim, rnn_dim, rnn_num_layers, batch_first=True)
        self.output = nn.Linear(rnn_dim, NUM_KEYS)

    def init_hidden(self, batch_size: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        h_0 = torch.zeros(self.rnn_num_layers, batch_size, self.rnn_dim, device=device)
        return h_0, torch.zeros_like(h_0)  # (L, B, H) each

    def condition_features(self, c: torch.Tensor | None, like: torch.Tensor) -> list[torch.Tensor]:
        """c: (B, T, 4) label ids (LABEL_COLUMNS) or None (= all none) -> this decoder's one-hots."""
        if not self.cond_sizes:
            return []
        if c is None:
            c = torch.zeros(*like.shape, 4, dtype=torch.long, device=like.device)
        return [
            F.one_hot(c[..., col].long(), size).to(like.dtype) for col, size in zip(self.cond_columns, self.cond_sizes)
        ]

    def forward(
        self,
        k_m1: torch.Tensor,
        t: torch.Tensor,
        b: torch.Tensor,
        h_0=None,
        return_hidden: bool = False,
        c: torch.Tensor | None = None,
    ):
        # k_m1: (B, T) long previous keys (SOS first), t: (B, T) delta times, b: (B, T) real button values;
        # return_hidden: also the top layer's states (B, T, H), which the velocity head reads;
        # c: (B, T, 4) condition ids (pianogenie.labels.LABEL_COLUMNS), None = none (ignored if unconditioned)
        x = torch.cat(
            [
                F.one_hot(k_m1, NUM_KEYS + 1).to(t.dtype),
                t.unsqueeze(-1),
                b.unsqueeze(-1),
                *self.condition_features(c, t),
            ],
            dim=-1,
        )
        x = self.input(x)  # (B, T, H)
        if h_0 is None:
            h_0 = self.init_hidden(k_m1.shape[0], device=k_m1.device)
        x, h_n = self.lstm(x, h_0)  # (B, T, H)
        if return_hidden:
            return self.output(x), h_n, x
        return self.output(x), h_n  # (B, T, 88), state

    @torch.no_grad()
    def step(self, k_m1: torch.Tensor, t: torch.Tensor, b: torch.Tensor, state=None, c: torch.Tensor | None = None):
        """One note for real-time play: (B,) previous key, delta time, real button [, (B, 4) condition
        ids] -> (B, 88) logits, state."""
        hat_k, state = self.forward(k_m1[:, None], t[:, None], b[:, None], state, c=None if c is None else c[:, None])
        return hat_k[:, 0], state


class Autoencoder(nn.Module):
    """Decoder ∘ IntegerQuantizer ∘ Encoder, and optionally the velocity head (`vel.*`, see velocity.py)."""

    def __init__(self, cfg: Config = Config()):
        super().__init__()
        self.enc = Encoder(cfg.model_rnn_dim, cfg.model_rnn_num_layers)
        self.quant = IntegerQuantizer(cfg.num_buttons)
        self.dec = Decoder(cfg.model_rnn_dim, cfg.model_rnn_num_layers, cfg.condition_names)
        if cfg.velocity_bins:
            self.vel = VelocityHead(cfg.model_rnn_dim, cfg.velocity_hidden, cfg.velocity_bins)

    def forward(
        self,
        k: torch.Tensor,
        t: torch.Tensor,
        lengths: torch.Tensor | None = None,
        s: torch.Tensor | None = None,
        c: torch.Tensor | None = None,
    ):
        # k: (B, T) keys, t: (B, T) delta times -> key logits (B, T, 88), encoder outputs e (B, T);
        # with velocity history states s (B, T, S) and a velocity head, also velocity logits (B, T, bins);
        # c (B, T, 4): condition ids for a conditioned decoder (None = none)
        if self.quant.num_bins == 1:
            # Language-model baseline (num_buttons=1): the decoder gets no button information, so
            # the encoder is skipped (e = 0, its parameters stay untrained) rather than run for nothing.
            e = torch.zeros_like(t)
        else:
            e = self.enc(k, t, lengths)
        b = self.quant(e)
        k_m1 = torch.cat([torch.full_like(k[:, :1], SOS), k[:, :-1]], dim=1)
        if s is None or not hasattr(self, "vel"):
            hat_k, _ = self.dec(k_m1, t, b, c=c)
            return hat_k, e
        hat_k, _, h = self.dec(k_m1, t, b, return_hidden=True, c=c)
        return hat_k, e, self.vel(h, k, s, t, b)

    @torch.no_grad()
    def buttons(self, k: torch.Tensor, t: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The button (0..num_buttons-1) the encoder assigns to each note: (B, T) long."""
        return self.quant.real_to_discrete(self.enc(k, t, lengths))


# --------------------------------------------------------------------------------------------------
# The objective


def contour_final(step: int, cfg: Config) -> bool:
    """Whether the loss at `step` weighs contour by loss_contour_multiplier_final: from
    loss_contour_final_from * max_num_steps on (the one-run form of a second, contour-weighted stage)."""
    return cfg.loss_contour_final_from < 1 and step >= cfg.loss_contour_final_from * cfg.max_num_steps


def contour_weight(cfg: Config, step: int | None = None) -> float:
    """The contour term's weight in force at training step `step` (None: the config's base weight)."""
    if step is not None and contour_final(step, cfg):
        return cfg.loss_contour_multiplier_final
    return cfg.loss_contour_multiplier


def total_loss(terms: dict, cfg: Config, step: int | None = None):
    """The objective from its terms (tensors or floats): reconstruction + margin + contour at the
    weight in force at `step`, + velocity NLL where the terms hold one."""
    total = (
        terms["loss_recons"]
        + cfg.loss_margin_multiplier * terms["loss_margin"]
        + contour_weight(cfg, step) * terms["loss_contour"]
    )
    if "loss_velocity" in terms:
        total = total + cfg.loss_velocity_multiplier * terms["loss_velocity"]
    return total


def losses(
    model: nn.Module,
    batch: Batch,
    cfg: Config,
    step: int | None = None,
    num_notes: torch.Tensor | float | None = None,
    num_pairs: torch.Tensor | float | None = None,
    outputs: dict | None = None,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """The training objective on a batch: reconstruction CE + margin + contour, masked to real notes.

    `model` is an Autoencoder or a wrapper that calls one (DistributedDataParallel). Terms are sums
    over real notes (real consecutive pairs for contour) divided by `num_notes` (`num_pairs`), by
    default this batch's own counts; a shard of a larger batch passes the whole batch's counts, so
    that the shards' losses (and gradients) add up to the whole batch's. With a velocity head and a
    batch carrying velocities, adds the velocity NLL (`loss_velocity`) and puts the velocity logits
    (B, T, bins) in `outputs["hat_v"]` if `outputs` is given. `terms["loss"]` is `total_loss` at
    `step`. Returns the loss terms, the logits (B, T, 88) and e (B, T).
    """
    k, mask = batch.k, batch.mask
    out = model(k, batch.t, batch.lengths, batch.s, batch.c)  # (B, T, 88), (B, T)[, (B, T, bins)]
    hat_k, e = out[0], out[1]
    m = mask.to(e.dtype)
    pair = m[:, 1:] * m[:, :-1]  # (B, T-1) both notes real
    num_notes = m.sum() if num_notes is None else num_notes
    num_pairs = pair.sum().clamp(min=1) if num_pairs is None else max(num_pairs, 1)
    ce = F.cross_entropy(hat_k.transpose(1, 2), k, reduction="none")  # (B, T)
    terms = {
        "loss_recons": (ce * m).sum() / num_notes,
        "loss_margin": (torch.square(torch.clamp(e.abs() - 1, min=0)) * m).sum() / num_notes,
    }
    dk = torch.diff(k, dim=1).to(e.dtype)
    de = torch.diff(e, dim=1)
    terms["loss_contour"] = (torch.square(torch.clamp(1 - dk * de, min=0)) * pair).sum() / num_pairs
    if len(out) == 3:
        assert batch.v is not None, "the velocity head is given history states only with velocities"
        terms["loss_velocity"] = (velocity_nll(out[2], batch.v) * m).sum() / num_notes
        if outputs is not None:
            outputs["hat_v"] = out[2].detach()
    return {"loss": total_loss(terms, cfg, step), **terms}, hat_k, e


# --------------------------------------------------------------------------------------------------
# Checkpoints


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run directory means its best checkpoint (else last); a file means itself."""
    path = Path(path)
    if path.is_dir():
        for name in ("best.pt", "last.pt", "model.pt"):
            if (path / name).is_file():
                return path / name
        raise UserError(f"{path} holds no checkpoint (expected best.pt, last.pt or model.pt)")
    if not path.exists():
        raise UserError(f"checkpoint not found: {path}")
    if not path.is_file():  # a device or FIFO would block or read forever, and "not found" would be untrue
        raise UserError(f"{path} is not a regular file; expected a checkpoint file or a run directory")
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint file safely (`weights_only=True`), with a clear error for anything else."""
    import warnings

    path = resolve_checkpoint(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols; the error below says it once
            warnings.filterwarnings("ignore", message=".*pickle protocol", category=UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and weights-only errors all mean "not a checkpoint of ours"
        # torch's own text runs to many lines and suggests weights_only=False: unsafe advice for a
        # file that may be hostile. One line, our words.
        text = str(e).strip()
        protocol = _pickle_protocol(path)
        if protocol is not None and protocol > 2 and ("weights_only" in text or "Weights only" in text):
            reason = (
                f"it was saved with pickle protocol {protocol}, which torch's safe loader cannot read; "
                "save it again with torch.save's default protocol (2)"
            )
        elif "weights_only" in text or "Weights only" in text:
            reason = "it holds objects other than tensors and plain values, which are never loaded"
        else:
            reason = (text.splitlines() or [""])[0][:200]
        raise UserError(
            f"{path} is not a PyTorch checkpoint this tool can read safely "
            f"({type(e).__name__}{': ' + reason if reason else ''})"
        ) from None


def _pickle_protocol(path: Path) -> int | None:
    """The pickle protocol of a checkpoint's data (zip or legacy format), None if it cannot tell."""
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                name = next((n for n in z.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
                head = z.open(name).read(2) if name else b""
        else:
            with open(path, "rb") as f:
                head = f.read(2)
    except (OSError, zipfile.BadZipFile, ValueError):
        return None
    return head[1] if len(head) == 2 and head[0] == 0x80 else None


def check_finite(state_dict: dict, file: Path) -> None:
    """Refuse weights that are not tensors, or hold NaN or Inf (a model that cannot play)."""
    for name, w in state_dict.items():
        if not isinstance(w, torch.Tensor):
            raise UserError(f"{file}: weight {name} is not a tensor")
        if w.is_floating_point() and w.numel() and not bool(torch.isfinite(w).all()):
            raise UserError(f"{file}: weight {name} holds NaN or Inf values (a diverged or damaged model)")
        if (
            name.startswith(("dec.", "vel."))
            and w.is_floating_point()
            and w.numel()
            and float(w.abs().max()) > MAX_ABS_WEIGHT
        ):
            raise UserError(
                f"{file}: weight {name} holds values up to {float(w.abs().max()):.3g} in magnitude "
                f"(at most {MAX_ABS_WEIGHT:g} plays without overflowing float32 maths)"
            )


def load_model(path: str | os.PathLike) -> tuple[Autoencoder, Config]:
    """Load our checkpoint (run dir or file) or the tutorial's plain state dict, in eval mode on CPU."""
    file = resolve_checkpoint(path)
    ckpt = load_checkpoint(file)
    if isinstance(ckpt, dict) and "model" in ckpt and "cfg" in ckpt:
        if not isinstance(ckpt["cfg"], dict):
            raise UserError(f"{file}: its config is not a mapping of config keys")
        try:
            cfg = Config.from_dict(ckpt["cfg"], strict=False)
        except UserError as e:
            raise UserError(f"{file}: {e}") from None
        state_dict = ckpt["model"]
        if not isinstance(state_dict, dict):
            raise UserError(f"{file}: its model entry is not a mapping of weights")
    elif isinstance(ckpt, dict) and all(isinstance(v, torch.Tensor) for v in ckpt.values()) and ckpt:
        state_dict = ckpt  # the tutorial's model.pt: a bare state dict, cfg.json beside it
        cfg_file = file.parent / "cfg.json"
        cfg = Config.load(cfg_file, strict=False) if cfg_file.is_file() else _infer_config(state_dict, file)
    else:
        raise UserError(f"{file} is not a Piano Genie checkpoint (no model weights found)")
    check_finite(state_dict, file)
    cfg = _velocity_config(state_dict, cfg, file)
    cfg = _condition_config(state_dict, cfg, file)
    model = Autoencoder(cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise UserError(
            f"{file} does not fit a Piano Genie model with {cfg.model_rnn_num_layers} layers x "
            f"{cfg.model_rnn_dim} units and {cfg.num_buttons} buttons: {' '.join(first[:3])}"
        ) from None
    return model.eval(), cfg


def _velocity_config(state_dict: dict, cfg: Config, file: Path) -> Config:
    """A checkpoint without velocity weights loads without the head (it plays at a fixed velocity);
    velocity weights that do not match the config's head are refused."""
    vel = {k: v for k, v in state_dict.items() if k.startswith("vel.")}
    if not vel:
        return cfg.replace(velocity_bins=0) if cfg.velocity_bins else cfg
    if not cfg.velocity_bins:
        raise UserError(f"{file} holds velocity weights (vel.*) but its config has velocity_bins=0")
    expected = VelocityHead(cfg.model_rnn_dim, cfg.velocity_hidden, cfg.velocity_bins).state_dict()
    for name, w in expected.items():
        got = vel.get("vel." + name)
        if got is None or tuple(got.shape) != tuple(w.shape):
            raise UserError(
                f"{file}: velocity weight vel.{name} has shape "
                f"{None if got is None else tuple(got.shape)}, expected {tuple(w.shape)} for "
                f"velocity_bins={cfg.velocity_bins}, velocity_hidden={cfg.velocity_hidden}"
            )
    return cfg


def _condition_config(state_dict: dict, cfg: Config, file: Path) -> Config:
    """The decoder's input width must be its conditions': a one-line refusal otherwise."""
    from pianogenie.labels import condition_columns

    w = state_dict.get("dec.input.weight")
    if w is None:
        return cfg
    expected = NUM_KEYS + 3 + sum(condition_columns(cfg.condition_names)[1])
    if w.shape[-1] != expected:
        raise UserError(
            f"{file}: its decoder reads {w.shape[-1]} inputs, but its config's conditions "
            f"({cfg.conditions or 'none'}) make {expected}"
        )
    return cfg


def extend_to_conditions(state_dict: dict, model: Autoencoder) -> dict:
    """An unconditioned model's weights for a conditioned `model`: the decoder input layer's new
    condition columns are zero, so it starts by playing exactly as the unconditioned one."""
    w = state_dict.get("dec.input.weight")
    target = model.dec.input.weight
    if w is None or w.shape == target.shape or w.shape[1] != NUM_KEYS + 3:
        return state_dict
    out = dict(state_dict)
    out["dec.input.weight"] = torch.cat([w, torch.zeros(w.shape[0], target.shape[1] - w.shape[1], dtype=w.dtype)], 1)
    return out


def _infer_config(state_dict: dict, file: Path) -> Config:
    try:
        rnn_dim = state_dict["dec.input.weight"].shape[0]
        num_layers = sum(1 for k in state_dict if k.startswith("dec.lstm.weight_ih_l"))
    except KeyError:
        raise UserError(f"{file} is not a Piano Genie checkpoint (no dec.input.weight)") from None
    return Config(model_rnn_dim=rnn_dim, model_rnn_num_layers=num_layers)
