"""`PianoGenie`: a real-time play session in Python, the browser's `press` semantics on a numpy decoder.

    genie = PianoGenie.load()            # the shipped model (or a run dir / checkpoint path)
    key = genie.press(time, button)      # 0..87 (pitch = key + 21); time in seconds, button 0..7
    key = genie.press(time, button, 0.25, keys=allowed)  # only among `allowed` keys (pianogenie.scales)
    ahead = genie.look_ahead(time)       # the key each button would play now (session unchanged)
    key = genie.press(time, button, key="D", chord="G7")  # a conditioned model (cfg.conditions)

Each press feeds the decoder exactly what it saw in training: the previous key (SOS before the first
press), the delta time since the previous press clipped to [0, cfg.data_delta_time_max] (the first
press gets the max), and the button's real value 2b/(n-1) - 1.

The per-press path is plain numpy, no torch: torch's per-call overhead at batch 1 is several times
the arithmetic. The weights are repacked once at load time:
- the decoder's input Linear is folded into LSTM layer 0 (both are linear), so the one-hot previous
  key becomes a row lookup in a (89, 4H) table that already holds every bias of layer 0, and delta
  time and button become two extra rows of layer 0's recurrent kernel;
- each layer's [W_ih; W_hh] is packed transposed into one kernel fed by one contiguous slice of a
  single state buffer [dt, b, h_0, ..., h_{L-1}, 1], so no vector is ever copied or concatenated;
  the trailing 1 carries the last layer's and the output layer's biases as kernel rows;
- gates are reordered (o, f, i, g) with the sigmoid gates pre-scaled by 1/2, so one tanh over all
  4H gates gives every activation (sigmoid(x) = (1 + tanh(x / 2)) / 2).
A conditioned decoder (cfg.conditions: keysig, chord, style; pianogenie.labels) reads one one-hot
per condition after the button; they are constant between chord changes, so their columns fold into
the previous-key table too: the table in use is rebuilt (one (89, 4H) add) only when a press's
conditions differ from the last one's, and a press costs what it did without conditions.
With a velocity head (velocity.py) each press also sets `genie.velocity`, the mean of the head's
distribution for the key just chosen; the head's input layer and its history-state update ride on
the output product (their inputs sit after the trailing 1 of the state buffer, the standardisation
folded into the weights), so a press adds a relu against a table row, one small product and the mean
(the chosen key's part of the logits folded into per-key moments: see `_pack_velocity`). Without a
head `genie.velocity` is the fixed DEFAULT_VELOCITY.
Sampling at temperature T uses the Gumbel-max trick, argmax(logits + T * g) with g ~ Gumbel(0, 1)
drawn from the session's seeded generator in blocks (one row per sampled press, whatever T), which
is exactly softmax(logits / T) sampling; T = 0 is argmax and draws nothing.
"""

from __future__ import annotations

import functools
import math
import os
import struct
from pathlib import Path
from typing import Iterable

import numpy as np

from pianogenie.config import Config
from pianogenie.constants import LOWEST_PITCH, NUM_KEYS, SOS
from pianogenie.util import UserError
from pianogenie.velocity import CHORD_DT, DEFAULT_VELOCITY, NUM_INPUTS, NUM_STATE

DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "model.pt"
_NOISE_BLOCK = 1024  # Gumbel rows drawn at once: one refill per 1024 sampled presses (< 1 % of presses)


def _aligned(a: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of `a` starting on a 64-byte boundary. numpy only guarantees 16
    bytes, and OpenBLAS's sgemv runs 10-15 % slower on a kernel at 16 (mod 32): without this a
    session's speed depended on where its kernels happened to land."""
    a = np.asarray(a, np.float32)
    raw = np.empty(a.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start:start + a.nbytes].view(np.float32).reshape(a.shape)
    out[...] = a
    return out


def default_model_path() -> Path:
    """The checkpoint shipped inside the package; a clear error while none is shipped."""
    if not DEFAULT_MODEL.is_file():
        raise UserError(f"no shipped model found at {DEFAULT_MODEL}; pass --model with a run directory "
                        "or checkpoint (e.g. one written by `pianogenie train`)")
    return DEFAULT_MODEL


class PianoGenie:
    """One player's session: decoder state, previous key and press time, and a seeded RNG.

    There is no `release`: the decoder only sees onsets, so how long a note sounds is the caller's
    business (`decode` takes it from the input; the browser from the button being held)."""

    def __init__(self, weights: dict[str, np.ndarray], cfg: Config, seed: int | None = None,
                 velocity_weights: dict[str, np.ndarray] | None = None):
        """`weights`: the decoder's parameters as float arrays under their PyTorch names without the
        `dec.` prefix (`input.weight`, `lstm.weight_ih_l0`, ..., `output.bias`), PyTorch layouts;
        `velocity_weights`: the velocity head's (`vel.*` without the prefix), or None."""
        self.cfg = cfg
        self.has_velocity = bool(velocity_weights)
        self._velocity_weights = velocity_weights
        self.num_buttons = cfg.num_buttons
        # button -> its real value 2b/(n-1) - 1; the lookup also validates (1.0 and np.int64(1) hash as 1)
        self._button_value = {b: b * (2.0 / (cfg.num_buttons - 1)) - 1.0 for b in range(cfg.num_buttons)}
        self._dt_max = float(cfg.data_delta_time_max)
        self._pack(weights)
        self.reset(seed)

    # ----------------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, seed: int | None = None) -> "PianoGenie":
        """Load a run directory, our checkpoint or the tutorial's `model.pt`; None = the shipped model."""
        from pianogenie.model import load_model  # torch is needed to read weights, never to play

        model, cfg = load_model(default_model_path() if path is None else path)
        return cls.from_model(model, cfg, seed=seed)

    @classmethod
    def from_model(cls, model, cfg: Config, *, seed: int | None = None) -> "PianoGenie":
        """From an in-memory `Autoencoder` (or anything with a `.dec` Decoder, and maybe a `.vel` head)."""
        weights = {name: p.detach().cpu().double().numpy() for name, p in model.dec.state_dict().items()}
        vel = getattr(model, "vel", None)
        vel_weights = None if vel is None else {n: p.detach().cpu().double().numpy() for n, p in vel.state_dict().items()}
        return cls(weights, cfg, seed=seed, velocity_weights=vel_weights)

    def _pack(self, w: dict[str, np.ndarray]) -> None:
        from pianogenie.labels import condition_columns

        L, H = self.cfg.model_rnn_num_layers, self.cfg.model_rnn_dim
        self.conditions = self.cfg.condition_names
        self._cond_cols, sizes = condition_columns(self.conditions)
        width = NUM_KEYS + 3 + sum(sizes)
        if w["input.weight"].shape != (H, width):
            raise UserError(f"decoder input weight has shape {w['input.weight'].shape}, "
                            f"expected {(H, width)} (conditions: {self.cfg.conditions or 'none'})")
        # (i, f, g, o) -> (o, f, i, g), sigmoid gates halved so tanh(z) yields all four activations
        order = np.r_[3 * H:4 * H, H:2 * H, 0:H, 2 * H:3 * H]
        scale = np.r_[np.full(3 * H, 0.5), np.ones(H)][:, None]

        def gates(m: np.ndarray) -> np.ndarray:  # (4H, ...) torch rows -> reordered, scaled
            m = np.asarray(m, np.float64)
            return m[order] * (scale if m.ndim == 2 else scale[:, 0])

        f32 = np.float32
        D = 4 + NUM_INPUTS + NUM_STATE if self.has_velocity else 0
        # [dt, b, h_0, ..., h_{L-1}, 1] then, with a velocity head, [dt, chord, log dt, b, u_{i-1}, s_{i-1}]
        self._buf = np.zeros(2 + L * H + 1 + D, f32)
        self._h = [self._buf[2 + l * H:2 + (l + 1) * H] for l in range(L)]
        layers = []  # per layer: (input view of _buf, kernel (n_in, 4H), separate bias or None)

        # Layer 0: input Linear folded in; prev-key rows become a table holding all of layer 0's biases.
        W_in, b_in = np.asarray(w["input.weight"], np.float64), np.asarray(w["input.bias"], np.float64)
        W_ih = gates(w["lstm.weight_ih_l0"])  # (4H, H)
        folded = W_ih @ W_in  # (4H, 91): columns = one-hot prev key (89), dt, b
        bias0 = W_ih @ b_in + gates(w["lstm.bias_ih_l0"]) + gates(w["lstm.bias_hh_l0"])
        self._base_table = folded[:, :NUM_KEYS + 1].T + bias0  # (89, 4H), float64
        # condition column j's one-hot rows, each condition's block from its own offset
        self._cond_rows = folded[:, NUM_KEYS + 3:].T  # (sum of sizes, 4H)
        self._cond_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else np.zeros(0, int)
        self._table = _aligned(self._base_table)  # (89, 4H), with the conditions in force added
        self._cond_ids = None
        self._set_condition_ids((0,) * len(sizes))
        K0 = np.concatenate([folded[:, NUM_KEYS + 1:NUM_KEYS + 3].T, gates(w["lstm.weight_hh_l0"]).T])  # (2 + H, 4H)
        layers.append((self._buf[0:2 + H], _aligned(K0), None))

        for l in range(1, L):
            K = np.concatenate([gates(w[f"lstm.weight_ih_l{l}"]).T, gates(w[f"lstm.weight_hh_l{l}"]).T])
            bias = gates(w[f"lstm.bias_ih_l{l}"]) + gates(w[f"lstm.bias_hh_l{l}"])
            lo = 2 + (l - 1) * H
            if l == L - 1:  # [h_{l-1}, h_l, 1]: the bias rides on the trailing 1
                layers.append((self._buf[lo:lo + 2 * H + 1], _aligned(np.vstack([K, bias])), None))
            else:
                layers.append((self._buf[lo:lo + 2 * H], _aligned(K), bias.astype(f32)))

        W_out = np.vstack([np.asarray(w["output.weight"], np.float64).T, np.asarray(w["output.bias"], np.float64)])
        top = 2 + L * H + 1  # end of [h_{L-1}, 1]
        self._out_in = self._buf[2 + (L - 1) * H:top + D]  # [h_{L-1}, 1] (+ the velocity head's dense inputs)
        if D:
            W_out = self._pack_velocity(W_out)  # (H + 1 + D, 88 + hidden + S)
            # [dt, chord, log dt, b] and then u_i into the buffer by struct calls, ~3x cheaper than
            # assigning a tuple to a slice (no tuple, no per-item numpy conversion)
            self._write_dense = functools.partial(struct.Struct("4f").pack_into, self._buf, 4 * top)
            self._write_u = functools.partial(struct.Struct(f"{NUM_INPUTS}f").pack_into, self._buf, 4 * (top + 4))
            self._s = memoryview(self._buf[top + 4 + NUM_INPUTS:])  # memoryview copies are ~2x cheaper
        self._out_kernel = _aligned(W_out)  # (H + 1, 88) without a velocity head

        # Scratch, allocated once: the hot path never allocates arrays.
        # Per layer [o, f, i, g, c]: gates z (4H) then the cell state, laid out so that one multiply
        # of the (2, H) views [f; i] * [c; g] gives both terms of c = f * c + i * g.
        self._zc = [np.zeros(5 * H, f32) for _ in range(L)]
        self._c = [zc[4 * H:] for zc in self._zc]
        self._tmp = np.empty(H, f32)
        # ufuncs take ~0.5 us longer with a Python scalar operand than with an array: keep 1/2 as one
        self._half = np.full(3 * H, 0.5, f32)
        self._prod = np.empty((2, H), f32)
        self._logits_all = np.empty(self._out_kernel.shape[1], f32)
        self._logits = self._logits_all[:NUM_KEYS]
        if D:
            self._vel_pre, s_new = (self._logits_all[sl] for sl in self._vel_slices)
            self._s_new = memoryview(s_new)
            self._vel = (self._vel_pre, self._vel_rows, self._vel_zh, self._zero, self._vel_z, self._vel_out,
                         self._vel_logits, self._vel_p, self._vel_moments, self._vel_mean)
            # y @ W_o into a, bound once (the method skips np.dot's ~0.15 us of dispatch)
            dot_W = functools.partial(self._vel_y.dot, self._vel_W, self._vel_a)
            self._vel_fast = (self._vel_pre, self._vel_neg_rows, self._vel_y, dot_W, self._vel_a,
                              self._vel_p, self._vel_key_moments, self._vel_mean)
        self._noisy = np.empty(NUM_KEYS, f32)
        self._masked = np.empty(NUM_KEYS, f32)
        self._mask, self._mask_keys = None, None  # the last `keys` mask and the keys it was built from
        # _step adds each bias before the layer's tanh; it carries the next layer's along the loop
        self._layers = [(x, K, layers[l + 1][2] if l + 1 < L else None, zc[:4 * H], zc[:3 * H], self._half,
                         zc[H:3 * H].reshape(2, H), zc[3 * H:].reshape(2, H)[::-1], zc[4 * H:], zc[:H], self._h[l])
                        for l, ((x, K, _), zc) in enumerate(zip(layers, self._zc))]

    def _pack_velocity(self, W_out: np.ndarray) -> np.ndarray:
        """The velocity head, packed into the output product, whose input is
        [h_{L-1}, 1, dt, chord, log dt, b, u_{i-1} (4), s_{i-1} (S)]: besides the 88 key logits it
        yields the head's hidden pre-activation (all but the chosen key's part) and the new history
        state s_i = A s_{i-1} + B u_{i-1}, which the head's dense inputs read through A and B (so
        no separate state update), its standardisation folded in. The chosen key's columns become
        a table; the output layer takes a trailing 1."""
        w, f64, f32 = self._velocity_weights, np.float64, np.float32
        H, S = self.cfg.model_rnn_dim, NUM_STATE
        W1, b1 = np.asarray(w["hidden.weight"], f64), np.asarray(w["hidden.bias"], f64)  # (hid, H + 88 + D)
        mean, std = np.asarray(w["feature_mean"], f64), np.asarray(w["feature_std"], f64)
        A, B = np.asarray(w["state_transition"], f64), np.asarray(w["state_input"], f64)  # (S, S), (S, 4)
        W_h, W_k, W_d = W1[:, :H], W1[:, H:H + NUM_KEYS], W1[:, H + NUM_KEYS:] / std  # W_d over [s, dt, chord, log dt, b]
        W_s, W_cur = W_d[:, :S], W_d[:, S:]
        hid = W1.shape[0]
        K = np.zeros((H + 1 + 4 + NUM_INPUTS + S, NUM_KEYS + hid + S))
        K[:H + 1, :NUM_KEYS] = W_out
        vel, new_s = slice(NUM_KEYS, NUM_KEYS + hid), slice(NUM_KEYS + hid, None)
        u, s_prev = slice(H + 5, H + 5 + NUM_INPUTS), slice(H + 5 + NUM_INPUTS, None)
        K[:H, vel], K[H, vel], K[H + 1:H + 5, vel] = W_h.T, b1 - W_d @ mean, W_cur.T
        K[u, vel], K[s_prev, vel] = (W_s @ B).T, (W_s @ A).T
        K[u, new_s], K[s_prev, new_s] = B.T, A.T
        self._vel_table = np.ascontiguousarray(W_k.T, f32)  # (88, hid)
        self._vel_rows = list(self._vel_table)  # row views made once: indexing a list is cheaper
        self._vel_z = np.zeros(hid + 1, f32)  # [relu(z), 1]
        self._vel_z[hid] = 1.0
        self._vel_zh = self._vel_z[:hid]
        self._vel_out = np.ascontiguousarray(np.vstack([np.asarray(w["output.weight"], f64).T,
                                                        np.asarray(w["output.bias"], f64)]), f32)  # (hid + 1, bins)
        bins = self._vel_out.shape[1]
        width = 128 / bins
        self._vel_logits = np.empty(bins, f32)
        self._vel_p = np.empty(bins, f32)
        # [sum p * centre, sum p]: the distribution's mean velocity from one product
        self._vel_moments = np.ascontiguousarray(np.column_stack([np.arange(bins) * width + (width - 1) / 2,
                                                                  np.ones(bins)]), f32)
        self._vel_mean = np.empty(2, f32)
        self._zero = np.zeros(hid, f32)
        # The press's shortcut, one call fewer (no add): relu(x + r) = max(x, -r) + r, and the chosen
        # key's r = W_k onehot(k) goes through the output layer as a per-key table of logits
        # T_k = W_o r + b_o, which enters the mean as factors exp(T_k) on the bins' moments:
        #     y = max(pre, -r),   a = W_o y = logits - T_k,   [sum p c, sum p] = exp(a) @ (exp(T_k) * M).
        # exp(T_k) is shifted by each key's max (the mean ignores a common factor), so it lies in (0, 1]
        # (only a bin > 87 below its key's best, in float32, would count as 0).
        W_o, b_o = np.asarray(w["output.weight"], f64).T, np.asarray(w["output.bias"], f64)  # (hid, bins)
        T = W_k.T @ W_o + b_o  # (88, bins)
        E = np.exp(T - T.max(1, keepdims=True))
        self._vel_neg_rows = list(np.ascontiguousarray(-W_k.T, f32))  # (88, hid) as row views
        self._vel_key_moments = list(np.ascontiguousarray(E[:, :, None] * self._vel_moments.astype(f64), f32))
        self._vel_W = _aligned(W_o)  # (hid, bins), the bias is in T_k
        self._vel_y, self._vel_a = np.empty(hid, f32), np.empty(bins, f32)
        self._vel_slices = (vel, new_s)
        return K

    # ----------------------------------------------------------------------------------------------
    # Session

    def reset(self, seed: int | None = None) -> None:
        """Forget the performance so far (state, previous key and time). The RNG keeps running so
        that repeated takes differ, unless a new `seed` is given (or on first construction)."""
        self._buf.fill(0.0)  # with a velocity head u_{-1} = 0 too (even its 1), which keeps s_0 = 0
        self._buf[2 + self.cfg.model_rnn_num_layers * self.cfg.model_rnn_dim] = 1.0  # the trailing 1
        for zc in self._zc:
            zc.fill(0.0)
        self.k_m1 = SOS
        self.last_time: float | None = None
        self.velocity = DEFAULT_VELOCITY  # of the last press
        if seed is not None or not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(seed)
            self._gumbel = np.empty((0, NUM_KEYS), np.float32)  # a block of Gumbel(0, 1) rows
            self._noise_i, self._noise_t = 0, None  # next row; temperature that _noise is scaled by

    def _set_condition_ids(self, ids: tuple) -> None:
        """Fold the one-hot rows of condition ids `ids` (one per column) into the table in use."""
        if ids == self._cond_ids:
            return
        table = self._base_table.copy()
        for off, i in zip(self._cond_offsets, ids):
            table += self._cond_rows[off + i]
        self._table[...] = table
        self._cond_ids = ids

    def condition_ids(self, key=None, chord=None, style=None) -> tuple:
        """This model's condition column ids (pianogenie.labels.condition_columns) for a key signature
        (`D`, `Eb`, `Bm`, id), a chord (`G7`, `Am`, `C:maj`, (root, family) ids) and a style (`pop`,
        id); None = none. A condition the model does not take is a ValueError."""
        from pianogenie.labels import CHORD_FAMILY, CHORD_ROOT, KEYSIG, STYLE, parse_chord, parse_key, parse_style

        given = {"keysig": key, "chord": chord, "style": style}
        extra = [n for n, v in given.items() if v is not None and n not in self.conditions]
        if extra:
            takes = ", ".join(self.conditions) if self.conditions else "no conditions"
            raise ValueError(f"this model takes {takes}; it cannot follow {', '.join(extra)} "
                             "(train one with --conditions)")
        ids = [0, 0, 0, 0]
        if key is not None:
            ids[KEYSIG] = parse_key(key)
        if chord is not None:
            ids[CHORD_ROOT], ids[CHORD_FAMILY] = parse_chord(chord)
        if style is not None:
            ids[STYLE] = parse_style(style)
        return tuple(ids[c] for c in self._cond_cols)

    def press(self, time: float, button: int, temperature: float = 0.25, keys: Iterable[int] | None = None,
              velocity: int | None = None, key=None, chord=None, style=None) -> int:
        """Press `button` (0..num_buttons-1) at `time` seconds: the key played, 0..87. `self.velocity`
        is then the press's velocity: the model's (or the fixed default without a velocity head), or
        `velocity` (1..127) when given, e.g. a MIDI controller's; the model's velocity history
        records what was played either way.

        Times may start anywhere; a time earlier than the previous press counts as simultaneous.
        `keys`: the allowed keys (indices 0..87, e.g. from `pianogenie.scales.allowed_keys`), or None
        for all; the key is then sampled (temperature 0: the argmax) among those keys only.
        `key`, `chord`, `style`: the conditions of this press for a conditioned model (see
        `condition_ids`); absent = none. A model without that condition refuses them (ValueError).
        """
        if self._cond_cols or key is not None or chord is not None or style is not None:
            self._set_condition_ids(self.condition_ids(key, chord, style))
        b = self._button_value.get(button) if not isinstance(button, bool) else None
        if b is None:
            raise ValueError(f"button must be an integer 0..{self.num_buttons - 1}, got {button!r}")
        if not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        if not temperature >= 0:  # also rejects NaN
            raise ValueError(f"temperature must be >= 0, got {temperature!r}")
        if velocity is not None and not (isinstance(velocity, (int, np.integer)) and 1 <= velocity <= 127):
            raise ValueError(f"velocity must be an integer 1..127, got {velocity!r}")
        last, self.last_time = self.last_time, time
        dt = self._dt_max if last is None else min(max(time - last, 0.0), self._dt_max)
        mask = None if keys is None else self._key_mask(keys)
        if self.has_velocity:
            self._write_dense(dt, dt < CHORD_DT, math.log(dt + 1e-3), b)
        logits = self._step(self.k_m1, dt, b)
        if mask is not None:  # -inf on the keys not allowed: argmax and Gumbel-max pick among the rest
            logits = np.add(logits, mask, self._masked)
        if temperature > 0:
            if self._noise_i == len(self._gumbel):
                self._gumbel = self._rng.gumbel(size=(_NOISE_BLOCK, NUM_KEYS)).astype(np.float32)
                self._noise_i, self._noise_t = 0, None
            if temperature != self._noise_t:  # noise pre-scaled by T, redone only when T changes
                self._noise, self._noise_t = self._gumbel * np.float32(temperature), temperature
            noisy = self._noisy
            np.add(self._noise[self._noise_i], logits, noisy)
            self._noise_i += 1
            k = int(noisy.argmax())
        else:
            k = int(logits.argmax())
        self.k_m1 = k
        if self.has_velocity:
            self._s[:] = self._s_new  # s_i, computed by the output product
            if velocity is None:  # the head's mean for key k by the per-key tables (`_pack_velocity`),
                # inline: as a method, with its operand lookups, it measured ~0.3 us slower
                pre, neg_rows, y, dot_W, a, p, key_moments, moments = self._vel_fast
                np.maximum(pre, neg_rows[k], out=y)  # relu(pre + r_k) - r_k, exactly
                dot_W()  # a = y @ W_o = logits - T_k
                np.exp(a, p)
                total_v, total = p.dot(key_moments[k], moments).tolist()  # [sum p c, sum p] up to a factor
                if 0.0 < total < math.inf:
                    v = round(total_v / total)
                    v = 1 if v < 1 else 127 if v > 127 else v
                else:  # |a| beyond float32 exp's range (never seen): the plain way
                    v = self._velocity(k)
            else:
                v = int(velocity)
            self.velocity = v
            x = v / 127
            self._write_u(x, x * x, k / NUM_KEYS, 1.0)  # u_i enters s_{i+1} at the next press
        else:
            self.velocity = DEFAULT_VELOCITY if velocity is None else int(velocity)
        return k

    def velocity_logits(self, k: int) -> np.ndarray:
        """The velocity head's (bins,) logits for key k after the last step (a copy)."""
        self._velocity(k)
        return self._vel_logits.copy()

    def _velocity(self, k: int) -> int:
        """The mean velocity of the head's distribution for key k at the current step, 1..127."""
        # Every operand prebound in one tuple: at these sizes attribute lookups and calls are the cost.
        pre, rows, zh, zero, z, W, logits, p, M, moments = self._vel
        np.add(pre, rows[k], zh)
        np.maximum(zh, zero, out=zh)  # (positional out is deprecated for maximum, and slower)
        np.dot(z, W, logits)
        np.exp(logits, p)  # unnormalised: the mean divides by the total
        total_v, total = np.dot(p, M, moments).tolist()
        if not 0.0 < total < math.inf:  # logits too large for float32 exp (never seen): normalise
            np.exp(logits - logits.max(), p)
            total_v, total = np.dot(p, M).tolist()
        v = round(total_v / total)
        return 1 if v < 1 else 127 if v > 127 else v

    def press_pitch(self, time: float, button: int, temperature: float = 0.25,
                    keys: Iterable[int] | None = None) -> int:
        """`press`, returning the MIDI pitch (21..108) instead of the key."""
        return self.press(time, button, temperature, keys) + LOWEST_PITCH

    def look_ahead(self, time: float, keys: Iterable[int] | None = None) -> list[int]:
        """The key each button would play if pressed at `time` (argmax among `keys`), one per button.
        Leaves the session exactly as it was: state, previous key and time, and the RNG."""
        if not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        mask = self._key_mask(keys)
        dt = self._dt_max if self.last_time is None else min(max(time - self.last_time, 0.0), self._dt_max)
        saved = self._buf.copy(), [zc.copy() for zc in self._zc]
        out = []
        for button in range(self.num_buttons):
            logits = self._step(self.k_m1, dt, self._button_value[button])
            out.append(int((logits if mask is None else np.add(logits, mask, self._masked)).argmax()))
            self._buf[:] = saved[0]
            for zc, z in zip(self._zc, saved[1]):
                zc[:] = z
        return out

    def _key_mask(self, keys: Iterable[int] | None) -> np.ndarray | None:
        """(88,) float32: 0 on allowed keys, -inf elsewhere; rebuilt only when the key set changes."""
        if keys is None:
            return None
        keys = tuple(keys)
        if keys != self._mask_keys:
            if not keys or not all(isinstance(k, (int, np.integer)) and not isinstance(k, bool)
                                   and 0 <= k < NUM_KEYS for k in keys):
                raise ValueError(f"keys must be a non-empty set of key indices 0..{NUM_KEYS - 1}, got {keys!r}")
            mask = np.full(NUM_KEYS, -np.inf, np.float32)
            mask[list(keys)] = 0.0
            self._mask, self._mask_keys = mask, keys
        return self._mask

    def step(self, k_m1: int, dt: float, b: float) -> np.ndarray:
        """One raw decoder step (previous key 0..88, delta time, real button value): a copy of the
        (88,) logits. Advances the state but not `k_m1`/`last_time`: `press` is the session API."""
        return self._step(int(k_m1), float(dt), float(b)).copy()

    def _step(self, k_m1: int, dt: float, b: float) -> np.ndarray:
        # Every call passes `out` positionally and every operand is an array: at these sizes the
        # per-call overhead is most of the cost (a Python-float operand alone adds ~0.5 us); products
        # are ndarray.dot, which skips np.dot's __array_function__ dispatch (~0.15 us a call).
        buf, tmp, prod, p0, p1 = self._buf, self._tmp, self._prod, self._prod[0], self._prod[1]
        add, mul, tanh = np.add, np.multiply, np.tanh
        buf[0] = dt
        buf[1] = b
        bias = self._table[k_m1]  # layer 0's input and biases
        for x, K, next_bias, z, sig, half, fi, cg, c, o, h in self._layers:
            x.dot(K, z)  # (4H,) gates of [x_l, h_l] (+ the last layer's bias via the trailing 1)
            if bias is not None:
                add(z, bias, z)
            tanh(z, z)
            mul(sig, half, sig)
            add(sig, half, sig)  # o, f, i = sigmoid; g = tanh
            mul(fi, cg, prod)  # [f * c, i * g]
            add(p0, p1, c)
            tanh(c, tmp)
            mul(o, tmp, h)  # written in place in buf: the next layer's input
            bias = next_bias
        self._out_in.dot(self._out_kernel, self._logits_all)
        return self._logits  # (88,)
