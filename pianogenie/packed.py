"""The decoder step the play session calls: the decoder's (and velocity head's) weights repacked
for a batch-1 numpy step, and `plain_step`, the textbook LSTM step that the packed one is tested against.

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
With a velocity head (velocity.py) the head's input layer and its history-state update ride on
the output product (their inputs sit after the trailing 1 of the state buffer, the standardisation
folded into the weights), so a press adds a relu against a table row, one small product and the mean
(the chosen key's part of the logits folded into per-key moments: see `_pack_velocity`).
"""

from __future__ import annotations

import functools
import math
import struct

import numpy as np

from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.util import UserError
from pianogenie.velocity import NUM_INPUTS, NUM_STATE


def _aligned(a: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy of `a` starting on a 64-byte boundary. numpy only guarantees 16
    bytes, and OpenBLAS's sgemv runs slower on a kernel at 16 (mod 32): without this a session's
    speed depended on where its kernels happened to land (docs/benchmarks.md)."""
    a = np.asarray(a, np.float32)
    raw = np.empty(a.nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + a.nbytes].view(np.float32).reshape(a.shape)
    out[...] = a
    return out


class PackedDecoder:
    """The decoder (and velocity head) of one model, packed for batch-1 steps, with its LSTM state
    and the velocity head's history state. `step` is one note; the session (genie.PianoGenie)
    decides what it is fed and samples from what it returns."""

    def __init__(
        self, weights: dict[str, np.ndarray], cfg: Config, velocity_weights: dict[str, np.ndarray] | None = None
    ):
        """`weights`: the decoder's parameters as float arrays under their PyTorch names without the
        `dec.` prefix (`input.weight`, `lstm.weight_ih_l0`, ..., `output.bias`), PyTorch layouts;
        `velocity_weights`: the velocity head's (`vel.*` without the prefix), or None."""
        self.cfg = cfg
        self.has_velocity = bool(velocity_weights)
        self._velocity_weights = velocity_weights
        self._pack(weights)
        self.reset()

    def _pack(self, w: dict[str, np.ndarray]) -> None:
        from pianogenie.labels import condition_columns

        L, H = self.cfg.model_rnn_num_layers, self.cfg.model_rnn_dim
        self.conditions = self.cfg.condition_names
        self.cond_cols, sizes = condition_columns(self.conditions)
        width = NUM_KEYS + 3 + sum(sizes)
        if w["input.weight"].shape != (H, width):
            raise UserError(
                f"decoder input weight has shape {w['input.weight'].shape}, "
                f"expected {(H, width)} (conditions: {self.cfg.conditions or 'none'})"
            )
        # (i, f, g, o) -> (o, f, i, g), sigmoid gates halved so tanh(z) yields all four activations
        order = np.r_[3 * H : 4 * H, H : 2 * H, 0:H, 2 * H : 3 * H]
        scale = np.r_[np.full(3 * H, 0.5), np.ones(H)][:, None]

        def gates(m: np.ndarray) -> np.ndarray:  # (4H, ...) torch rows -> reordered, scaled
            m = np.asarray(m, np.float64)
            return m[order] * (scale if m.ndim == 2 else scale[:, 0])

        f32 = np.float32
        D = 4 + NUM_INPUTS + NUM_STATE if self.has_velocity else 0
        # [dt, b, h_0, ..., h_{L-1}, 1] then, with a velocity head, [dt, chord, log dt, b, u_{i-1}, s_{i-1}]
        self._buf = np.zeros(2 + L * H + 1 + D, f32)
        self._h = [self._buf[2 + l * H : 2 + (l + 1) * H] for l in range(L)]
        layers = []  # per layer: (input view of _buf, kernel (n_in, 4H), separate bias or None)

        # Layer 0: input Linear folded in; prev-key rows become a table holding all of layer 0's biases.
        W_in, b_in = np.asarray(w["input.weight"], np.float64), np.asarray(w["input.bias"], np.float64)
        W_ih = gates(w["lstm.weight_ih_l0"])  # (4H, H)
        folded = W_ih @ W_in  # (4H, 91): columns = one-hot prev key (89), dt, b
        bias0 = W_ih @ b_in + gates(w["lstm.bias_ih_l0"]) + gates(w["lstm.bias_hh_l0"])
        self._base_table = folded[:, : NUM_KEYS + 1].T + bias0  # (89, 4H), float64
        # condition column j's one-hot rows, each condition's block from its own offset
        self._cond_rows = folded[:, NUM_KEYS + 3 :].T  # (sum of sizes, 4H)
        self._cond_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int) if sizes else np.zeros(0, int)
        self._table = _aligned(self._base_table)  # (89, 4H), with the conditions in force added
        self._cond_ids: tuple | None = None
        self.set_condition_ids((0,) * len(sizes))
        K0 = np.concatenate([folded[:, NUM_KEYS + 1 : NUM_KEYS + 3].T, gates(w["lstm.weight_hh_l0"]).T])  # (2 + H, 4H)
        layers.append((self._buf[0 : 2 + H], _aligned(K0), None))

        for l in range(1, L):
            K = np.concatenate([gates(w[f"lstm.weight_ih_l{l}"]).T, gates(w[f"lstm.weight_hh_l{l}"]).T])
            bias = gates(w[f"lstm.bias_ih_l{l}"]) + gates(w[f"lstm.bias_hh_l{l}"])
            lo = 2 + (l - 1) * H
            if l == L - 1:  # [h_{l-1}, h_l, 1]: the bias rides on the trailing 1
                layers.append((self._buf[lo : lo + 2 * H + 1], _aligned(np.vstack([K, bias])), None))
            else:
                layers.append((self._buf[lo : lo + 2 * H], _aligned(K), bias.astype(f32)))

        W_out = np.vstack([np.asarray(w["output.weight"], np.float64).T, np.asarray(w["output.bias"], np.float64)])
        top = 2 + L * H + 1  # end of [h_{L-1}, 1]
        self._out_in = self._buf[2 + (L - 1) * H : top + D]  # [h_{L-1}, 1] (+ the velocity head's dense inputs)
        if D:
            W_out = self._pack_velocity(W_out)  # (H + 1 + D, 88 + hidden + S)
            # [dt, chord, log dt, b] and then u_i into the buffer by struct calls, ~3x cheaper than
            # assigning a tuple to a slice (no tuple, no per-item numpy conversion)
            self._write_dense = functools.partial(struct.Struct("4f").pack_into, self._buf.data, 4 * top)
            self._write_u = functools.partial(struct.Struct(f"{NUM_INPUTS}f").pack_into, self._buf.data, 4 * (top + 4))
            self._s = self._buf[top + 4 + NUM_INPUTS :].data  # memoryview copies are ~2x cheaper
            self.write_dense, self.write_u = self._write_dense, self._write_u
        self._out_kernel = _aligned(W_out)  # (H + 1, 88) without a velocity head

        # Scratch, allocated once: the hot path never allocates arrays.
        # Per layer [o, f, i, g, c]: gates z (4H) then the cell state, laid out so that one multiply
        # of the (2, H) views [f; i] * [c; g] gives both terms of c = f * c + i * g.
        self._zc = [np.zeros(5 * H, f32) for _ in range(L)]
        self._c = [zc[4 * H :] for zc in self._zc]
        self._tmp = np.empty(H, f32)
        # a ufunc call is slower with a Python scalar operand than with an array: keep 1/2 as one
        self._half = np.full(3 * H, 0.5, f32)
        self._prod = np.empty((2, H), f32)
        self._logits_all = np.empty(self._out_kernel.shape[1], f32)
        self._logits = self._logits_all[:NUM_KEYS]
        if D:
            self._vel_pre, s_new = (self._logits_all[sl] for sl in self._vel_slices)
            self._s_new = s_new.data
            self._vel = (
                self._vel_pre,
                self._vel_rows,
                self._vel_zh,
                self._zero,
                self._vel_z,
                self._vel_out,
                self._vel_logits,
                self._vel_p,
                self._vel_moments,
                self._vel_mean,
            )
            # y @ W_o into a, bound once (the method skips np.dot's dispatch)
            dot_W = functools.partial(self._vel_y.dot, self._vel_W, self._vel_a)
            self._vel_fast = (
                self._vel_pre,
                self._vel_neg_rows,
                self._vel_y,
                dot_W,
                self._vel_a,
                self._vel_p,
                self._vel_key_moments,
                self._vel_mean,
            )
        # step adds each bias before the layer's tanh; it carries the next layer's along the loop
        self._layers = [
            (
                x,
                K,
                layers[l + 1][2] if l + 1 < L else None,
                zc[: 4 * H],
                zc[: 3 * H],
                self._half,
                zc[H : 3 * H].reshape(2, H),
                zc[3 * H :].reshape(2, H)[::-1],
                zc[4 * H :],
                zc[:H],
                self._h[l],
            )
            for l, ((x, K, _), zc) in enumerate(zip(layers, self._zc))
        ]

    def set_condition_ids(self, ids: tuple) -> None:
        """Fold the one-hot rows of condition ids `ids` (one per column) into the table in use:
        conditions are constant between chord changes, so this costs one (89, 4H) add per change
        and a press costs what it did without conditions."""
        if ids == self._cond_ids:
            return
        table = self._base_table.copy()
        for off, i in zip(self._cond_offsets, ids):
            table += self._cond_rows[off + i]
        self._table[...] = table
        self._cond_ids = ids

    def _pack_velocity(self, W_out: np.ndarray) -> np.ndarray:
        """The velocity head, packed into the output product, whose input is
        [h_{L-1}, 1, dt, chord, log dt, b, u_{i-1} (4), s_{i-1} (S)]: besides the 88 key logits it
        yields the head's hidden pre-activation (all but the chosen key's part) and the new history
        state s_i = A s_{i-1} + B u_{i-1}, which the head's dense inputs read through A and B (so
        no separate state update), its standardisation folded in. The chosen key's columns become
        a table; the output layer takes a trailing 1."""
        w, f64, f32 = self._velocity_weights, np.float64, np.float32
        assert w is not None, "a model with a velocity head"
        H, S = self.cfg.model_rnn_dim, NUM_STATE
        W1, b1 = np.asarray(w["hidden.weight"], f64), np.asarray(w["hidden.bias"], f64)  # (hid, H + 88 + D)
        mean, std = np.asarray(w["feature_mean"], f64), np.asarray(w["feature_std"], f64)
        A, B = np.asarray(w["state_transition"], f64), np.asarray(w["state_input"], f64)  # (S, S), (S, 4)
        W_h, W_k, W_d = (
            W1[:, :H],
            W1[:, H : H + NUM_KEYS],
            W1[:, H + NUM_KEYS :] / std,
        )  # W_d over [s, dt, chord, log dt, b]
        W_s, W_cur = W_d[:, :S], W_d[:, S:]
        hid = W1.shape[0]
        K = np.zeros((H + 1 + 4 + NUM_INPUTS + S, NUM_KEYS + hid + S))
        K[: H + 1, :NUM_KEYS] = W_out
        vel, new_s = slice(NUM_KEYS, NUM_KEYS + hid), slice(NUM_KEYS + hid, None)
        u, s_prev = slice(H + 5, H + 5 + NUM_INPUTS), slice(H + 5 + NUM_INPUTS, None)
        K[:H, vel], K[H, vel], K[H + 1 : H + 5, vel] = W_h.T, b1 - W_d @ mean, W_cur.T
        K[u, vel], K[s_prev, vel] = (W_s @ B).T, (W_s @ A).T
        K[u, new_s], K[s_prev, new_s] = B.T, A.T
        self._vel_table = np.ascontiguousarray(W_k.T, f32)  # (88, hid)
        self._vel_rows = list(self._vel_table)  # row views made once: indexing a list is cheaper
        self._vel_z = np.zeros(hid + 1, f32)  # [relu(z), 1]
        self._vel_z[hid] = 1.0
        self._vel_zh = self._vel_z[:hid]
        self._vel_out = np.ascontiguousarray(
            np.vstack([np.asarray(w["output.weight"], f64).T, np.asarray(w["output.bias"], f64)]), f32
        )  # (hid + 1, bins)
        bins = self._vel_out.shape[1]
        width = 128 / bins
        self._vel_logits = np.empty(bins, f32)
        self._vel_p = np.empty(bins, f32)
        # [sum p * centre, sum p]: the distribution's mean velocity from one product
        self._vel_moments = np.ascontiguousarray(
            np.column_stack([np.arange(bins) * width + (width - 1) / 2, np.ones(bins)]), f32
        )
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
    # State

    def reset(self) -> None:
        """A fresh performance: zero LSTM state and velocity history."""
        self._buf.fill(0.0)  # with a velocity head u_{-1} = 0 too (even its 1), which keeps s_0 = 0
        self._buf[2 + self.cfg.model_rnn_num_layers * self.cfg.model_rnn_dim] = 1.0  # the trailing 1
        for zc in self._zc:
            zc.fill(0.0)

    def save(self) -> tuple:
        """A copy of the whole state, for `restore` (look-ahead steps without changing anything)."""
        return self._buf.copy(), [zc.copy() for zc in self._zc]

    def restore(self, saved: tuple) -> None:
        self._buf[:] = saved[0]
        for zc, z in zip(self._zc, saved[1]):
            zc[:] = z

    # ----------------------------------------------------------------------------------------------
    # The velocity head (with `has_velocity`)

    def keep_history(self) -> None:
        """s_i, computed by the last step's output product, becomes the history state."""
        self._s[:] = self._s_new

    def velocity(self, k: int) -> int:
        """The mean velocity (1..127) of the head's distribution for key k after the last step, by
        the per-key tables (`_pack_velocity`); beyond float32 exp's range, by the plain head."""
        pre, neg_rows, y, dot_W, a, p, key_moments, moments = self._vel_fast
        np.maximum(pre, neg_rows[k], out=y)  # relu(pre + r_k) - r_k, exactly
        dot_W()  # a = y @ W_o = logits - T_k
        np.exp(a, p)
        total_v, total = p.dot(key_moments[k], moments).tolist()  # [sum p c, sum p] up to a factor
        if not 0.0 < total < math.inf:  # |a| beyond float32 exp's range (never seen): the plain way
            return self._plain_velocity(k)
        v = round(total_v / total)
        return 1 if v < 1 else 127 if v > 127 else v

    def velocity_logits(self, k: int) -> np.ndarray:
        """The velocity head's (bins,) logits for key k after the last step (a copy)."""
        self._plain_velocity(k)
        return self._vel_logits.copy()

    def _plain_velocity(self, k: int) -> int:
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

    # ----------------------------------------------------------------------------------------------
    # The step

    def step(self, k_m1: int, dt: float, b: float) -> np.ndarray:
        """One note: previous key (0..88), delta time, real button value -> the (88,) key logits, a
        view of an internal buffer that the next step overwrites. With a velocity head, the dense
        inputs are written first (`write_dense`), and after the key is chosen the new history state
        is kept (`keep_history`) and the played velocity written (`write_u`)."""
        # Every call passes `out` positionally and every operand is an array: at these sizes the
        # per-call overhead is most of the cost, and a Python-float operand adds to it; products are
        # ndarray.dot, which skips np.dot's __array_function__ dispatch (docs/benchmarks.md).
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


def plain_step(w: dict[str, np.ndarray], num_layers: int):
    """The decoder step as one would first write it in numpy, the reference `PackedDecoder.step` is
    tested against (and benchmarks/decode_step.py times): one-hot input, Linear, then per layer the
    four gates from W_ih @ x + b_ih + W_hh @ h + b_hh, sigmoid as 1 / (1 + exp(-x)).
    -> step(k_m1, dt, b, h, c) -> (88,) logits, updating the per-layer lists h and c in place."""

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def step(k_m1: int, dt: float, b: float, h: list, c: list) -> np.ndarray:
        x = np.zeros(SOS + 3, np.float32)
        x[k_m1], x[SOS + 1], x[SOS + 2] = 1, dt, b
        x = w["input.weight"] @ x + w["input.bias"]
        for l in range(num_layers):
            gates = (
                w[f"lstm.weight_ih_l{l}"] @ x
                + w[f"lstm.bias_ih_l{l}"]
                + w[f"lstm.weight_hh_l{l}"] @ h[l]
                + w[f"lstm.bias_hh_l{l}"]
            )
            i, f, g, o = gates.reshape(4, -1)  # PyTorch gate order
            c[l] = sigmoid(f) * c[l] + sigmoid(i) * np.tanh(g)
            h[l] = x = sigmoid(o) * np.tanh(c[l])
        return w["output.weight"] @ x + w["output.bias"]

    return step
