"""The velocity model: how hard the note just chosen is played, as a distribution over velocity bins.

The key path never sees velocities, so the head gets them from a *history state* s_i: a fixed
linear recurrence over the previous notes of the performance, s_{i+1} = A s_i + B u_i with
u_i = [v_i/127, (v_i/127)^2, k_i/88, 1]. Its columns are the last 8 velocities, moving averages of
velocity (1/16, 1/64) and of its square (1/8, 1/32: loudness spread), the previous key and two
moving averages of the key (register), and a moving average of 1 (how much history there is).
A and B are saved with the weights (`vel.state_transition`, `vel.state_input`), so the browser runs
the same recurrence from the export alone.

For note i the head reads the decoder's top hidden state h_i (it saw k_<i, t_<=i, b_<=i), the key
k_i just chosen (one-hot), and dense features [s_i, dt_i, dt_i < 10 ms (chord), log(dt_i + 1e-3),
b_i], standardised by `vel.feature_mean`/`vel.feature_std` (set from the training data):

    z = relu(W_h h_i + W_k onehot(k_i) + W_d (dense_i - mean) / std + b),   logits = W_o z + b_o

(`vel.hidden`, `vel.output`). Bin j of `velocity_bins` holds velocities jw .. jw + w - 1 with
w = 128 / bins. The velocity played (and scored by `evaluate`) is the distribution's mean over the
bin centres jw + (w - 1)/2, rounded to 1..127: about as close as the median or the most likely bin,
and cheaper for the numpy press (two small calls, where the median needs a cumulative sum and a
search). The inputs were chosen by measurement; the figures, and those of the shipped head, are in
docs/model.md and docs/model_card.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pianogenie.constants import DEFAULT_VELOCITY, NUM_KEYS  # noqa: F401 (DEFAULT_VELOCITY: re-exported)

MEAN_OF = 8  # the "mean of the previous 8" baseline; velocity metrics skip each performance's first 8 notes
# The history state's columns: (input, kind, parameter). Inputs index u = [v, v^2, k, 1].
STATE_SPEC = [(0, "lag", j) for j in range(1, 9)] + [
    (0, "ema", 1 / 16),
    (0, "ema", 1 / 64),
    (1, "ema", 1 / 8),
    (1, "ema", 1 / 32),
    (2, "lag", 1),
    (2, "ema", 1 / 4),
    (2, "ema", 1 / 16),
    (3, "ema", 1 / 8),
]
NUM_STATE = len(STATE_SPEC)
NUM_INPUTS = 4  # u = [v/127, (v/127)^2, k/88, 1]
NUM_DENSE = NUM_STATE + 4  # [s, dt, chord, log dt, b]
CHORD_DT = 0.01  # seconds: a delta time below this is a note of the same chord


def state_matrices() -> tuple[np.ndarray, np.ndarray]:
    """A (S, S) and B (S, 4) of the history recurrence s' = A s + B u."""
    A, B = np.zeros((NUM_STATE, NUM_STATE)), np.zeros((NUM_STATE, NUM_INPUTS))
    lag_col = {}  # (input, lag) -> column
    for j, (src, kind, p) in enumerate(STATE_SPEC):
        if kind == "lag":
            lag_col[(src, p)] = j
    for j, (src, kind, p) in enumerate(STATE_SPEC):
        if kind == "ema":  # s <- (1 - a) s + a u
            A[j, j], B[j, src] = 1 - p, p
        elif p == 1:
            B[j, src] = 1.0
        else:
            A[j, lag_col[(src, p - 1)]] = 1.0
    return A, B


def state_inputs(v: np.ndarray, k: np.ndarray) -> np.ndarray:
    """u (N, 4) for notes of velocity v (1..127) and key k (0..87)."""
    v = np.asarray(v, np.float64) / 127
    return np.column_stack([v, v * v, np.asarray(k, np.float64) / NUM_KEYS, np.ones_like(v)])


def history_states(lengths: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The state s_i before each note of concatenated performances: (N, S) float32, s = 0 at each
    performance's start. Vectorised over performances: step i updates every performance longer than i."""
    A, B = state_matrices()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    order = np.argsort(-lengths, kind="stable")
    starts, lens = starts[order], lengths[order]
    out = np.empty((len(u), NUM_STATE), np.float32)
    s = np.zeros((len(lens), NUM_STATE))
    for i in range(int(lens.max(initial=0))):
        m = int(np.searchsorted(-lens, -i, side="left"))  # performances longer than i: the first m
        idx = starts[:m] + i
        out[idx] = s[:m]
        s[:m] = s[:m] @ A.T + u[idx] @ B.T
    return out


def key_offset_response(max_len: int) -> np.ndarray:
    """(max_len, S): how each state column moves when every key so far is shifted by +1/88 (the
    recurrence is linear, so a transposed window's states are states + shift * this[pos])."""
    A, B = state_matrices()
    out, s = np.zeros((max_len, NUM_STATE), np.float32), np.zeros(NUM_STATE)
    for i in range(max_len):
        out[i] = s
        s = A @ s + B[:, 2] / NUM_KEYS
    return out


def dense_features(s: torch.Tensor, t: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[s, dt, chord, log(dt + 1e-3), b]: (..., S) states, (...) delta times and button values -> (..., D)."""
    return torch.cat(
        [
            s,
            t.unsqueeze(-1),
            (t < CHORD_DT).to(t.dtype).unsqueeze(-1),
            torch.log(t + 1e-3).unsqueeze(-1),
            b.unsqueeze(-1),
        ],
        dim=-1,
    )


class VelocityHead(nn.Module):
    """P(velocity bin of note i | h_i, k_i, s_i, dt_i, b_i); parameters under `vel.*`."""

    state_transition: torch.Tensor  # the buffers registered below
    state_input: torch.Tensor
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, rnn_dim: int, hidden: int, bins: int):
        super().__init__()
        self.bins = bins
        self.hidden = nn.Linear(rnn_dim + NUM_KEYS + NUM_DENSE, hidden)
        self.output = nn.Linear(hidden, bins)
        A, B = state_matrices()
        self.register_buffer("state_transition", torch.tensor(A, dtype=torch.float32))
        self.register_buffer("state_input", torch.tensor(B, dtype=torch.float32))
        self.register_buffer("feature_mean", torch.zeros(NUM_DENSE))
        self.register_buffer("feature_std", torch.ones(NUM_DENSE))

    def forward(self, h: torch.Tensor, k: torch.Tensor, s: torch.Tensor, t: torch.Tensor, b: torch.Tensor):
        # h: (B, T, H) decoder top states, k: (B, T) keys chosen, s: (B, T, S), t, b: (B, T) -> (B, T, bins)
        dense = (dense_features(s, t, b) - self.feature_mean) / self.feature_std
        x = torch.cat([h, F.one_hot(k, NUM_KEYS).to(h.dtype), dense], dim=-1)
        return self.output(torch.relu(self.hidden(x)))

    @torch.no_grad()
    def set_feature_stats(self, s: np.ndarray, t: np.ndarray, b: np.ndarray) -> None:
        """Standardise the dense features with statistics of training notes (s (N, S), t, b (N,))."""
        d = dense_features(
            torch.from_numpy(np.asarray(s, np.float32)),
            torch.from_numpy(np.asarray(t, np.float32)),
            torch.from_numpy(np.asarray(b, np.float32)),
        )
        self.feature_mean.copy_(d.mean(0))
        self.feature_std.copy_(d.std(0).clamp(min=1e-3))


def bin_of(v: torch.Tensor, bins: int) -> torch.Tensor:
    """Velocity 0..127 -> its bin 0..bins-1."""
    return (v.long() * bins // 128).clamp(0, bins - 1)


def bin_centres(bins: int) -> torch.Tensor:
    """(bins,) the centre velocity of each bin: jw + (w - 1)/2."""
    w = 128 / bins
    return torch.arange(bins, dtype=torch.float64) * w + (w - 1) / 2


def mean_velocity(logits: torch.Tensor) -> torch.Tensor:
    """The mean of each velocity distribution (..., bins) over the bin centres, as the integer
    velocity 1..127 played."""
    p = torch.softmax(logits.double(), dim=-1)
    return (p @ bin_centres(logits.shape[-1])).round().clamp(1, 127).long()


def velocity_nll(logits: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """-log P(v) per note, nats, with the bin's mass spread evenly over its w velocities (so figures
    compare across bin counts): cross-entropy of the bin + log w."""
    bins = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, bins), bin_of(v, bins).reshape(-1), reduction="none")
    return ce.reshape(v.shape) + math.log(128 / bins)


class VelocityBaselines:
    """The simple predictors velocity MAE is compared with: a constant (the train median), the
    previous note's velocity, a per-key mean (train), and the mean of the previous 8 velocities."""

    def __init__(self, train_performances: Sequence[np.ndarray] | None):
        self.median, self.key_mean = None, None
        if train_performances:
            notes = np.concatenate([np.asarray(p) for p in train_performances if len(p)])
            v, k = notes[:, 3], notes[:, 2].astype(np.int64)
            self.median = float(np.median(v))
            count = np.bincount(k, minlength=NUM_KEYS)
            total = np.bincount(k, weights=v, minlength=NUM_KEYS)
            self.key_mean = np.where(count > 0, total / np.maximum(count, 1), self.median)

    def predictions(self, v: np.ndarray, k: np.ndarray, s: np.ndarray) -> dict[str, np.ndarray]:
        """Each baseline's prediction for notes with velocities v, keys k and states s (N, S)."""
        out = {"previous": s[:, 0] * 127, "mean8": s[:, :MEAN_OF].mean(1) * 127}
        if self.median is not None and self.key_mean is not None:  # (set together)
            out["constant"] = np.full(len(v), self.median)
            out["key"] = self.key_mean[k]
        return out
