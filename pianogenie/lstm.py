"""`nn.LSTM` re-implemented as a hand-written time loop on CPU: same parameters, same maths.

Same constructor, parameter names/layouts and state dict as `nn.LSTM`; outputs and gradients
equal within float rounding (summation order, and tanh(x) of the g gate computed as
2 sigmoid(2x) - 1 on exactly doubled weights, so that one sigmoid serves all four gates).
Per layer, the input projection of all time steps is one GEMM; the time loop does one GEMM
(`h @ W_hh^T`, both directions of a bidirectional layer in one `baddbmm`) plus a few in-place
pointwise ops, in TorchScript; the backward loops in reverse over the recurrent part only, and the
weight/input gradients are single GEMMs over all steps.

Measured result (benchmarks/lstm_speed.py, 2-core AMD EPYC, torch 2.13, 1 thread): NOT faster
than oneDNN's `mkldnn_rnn_layer` at Piano Genie's sizes: forward x0.5-0.8, forward+backward x0.6-0.8
(x1.1 only for the bidirectional encoder at batch 32, not the batch-16 shards training runs).
oneDNN's forward already runs at this CPU's GEMM rate (~50 GFLOP/s, pointwise fused for free) and
its backward within ~15% of the GEMM-only floor, so a loop of ATen ops can at best tie it. `pianogenie.model` therefore keeps `nn.LSTM`; this
module stays as the measured alternative (and a reference of the LSTM backward).

Layouts inside a layer: direction-major and time-major in processing order, `(D, T, B, .)`,
so that the reverse direction walks its buffers forwards like the forward one does.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn as nn


@torch.jit.script
def _forward_loop(gx: torch.Tensor, w_hh_t: torch.Tensor, h_all: torch.Tensor, c_all: torch.Tensor,
                  s_all: torch.Tensor, tc_all: torch.Tensor) -> None:
    # gx: (D, T, B, 4H) x W_ih^T + b_ih + b_hh; w_hh_t: (D, H, 4H); the g rows of both are doubled,
    # so that one sigmoid serves all four gates: tanh(x) = 2 sigmoid(2x) - 1
    # h_all, c_all: (D, T+1, B, H) with [:, 0] = h_0, c_0, filled with h_t, c_t
    # s_all: (D, T, B, 4H) filled with the gate activations i f g o; tc_all: (D, T, B, H) tanh(c_t)
    T = gx.shape[1]
    H = w_hh_t.shape[1]
    # per-step views made once: slicing inside the loop costs more than the small ops themselves
    gx_, s_, h_, c_, tc_ = gx.unbind(1), s_all.unbind(1), h_all.unbind(1), c_all.unbind(1), tc_all.unbind(1)
    i_, f_ = s_all[:, :, :, :H].unbind(1), s_all[:, :, :, H:2 * H].unbind(1)
    g_, o_ = s_all[:, :, :, 2 * H:3 * H].unbind(1), s_all[:, :, :, 3 * H:].unbind(1)
    for t in range(T):
        s = s_[t]
        torch.baddbmm(gx_[t], h_[t], w_hh_t, out=s)  # (D, B, 4H)
        s.sigmoid_()
        g = g_[t]
        g.mul_(2.0).sub_(1.0)
        c = c_[t + 1]
        torch.mul(f_[t], c_[t], out=c)
        c.addcmul_(i_[t], g)
        torch.tanh(c, out=tc_[t])
        torch.mul(o_[t], tc_[t], out=h_[t + 1])


@torch.jit.script
def _backward_loop(dy: torch.Tensor, dh_n: torch.Tensor, dc_n: torch.Tensor, w_hh: torch.Tensor,
                   c_all: torch.Tensor, s_all: torch.Tensor, tc_all: torch.Tensor,
                   dg_all: torch.Tensor) -> List[torch.Tensor]:
    # dy: (D, T, B, H) loss gradient w.r.t. the outputs h_t; dh_n, dc_n: (D, B, H); w_hh: (D, 4H, H)
    # dg_all: (D, T, B, 4H) filled with the gradient w.r.t. the gate pre-activations
    # returns the gradients w.r.t. h_0 and c_0
    T = dy.shape[1]
    H = w_hh.shape[2]
    dy_, s_, c_, tc_, dg_ = dy.unbind(1), s_all.unbind(1), c_all.unbind(1), tc_all.unbind(1), dg_all.unbind(1)
    i_, f_ = s_all[:, :, :, :H].unbind(1), s_all[:, :, :, H:2 * H].unbind(1)
    g_, o_ = s_all[:, :, :, 2 * H:3 * H].unbind(1), s_all[:, :, :, 3 * H:].unbind(1)
    di_, df_ = dg_all[:, :, :, :H].unbind(1), dg_all[:, :, :, H:2 * H].unbind(1)
    dgg_, do_ = dg_all[:, :, :, 2 * H:3 * H].unbind(1), dg_all[:, :, :, 3 * H:].unbind(1)
    a = torch.empty_like(s_all[:, 0])  # (D, B, 4H) activation derivatives
    a_g = a[:, :, 2 * H:3 * H]
    tmp = torch.empty_like(dh_n)
    dh = dy_[T - 1] + dh_n
    dc = dc_n.clone()
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            dh = torch.baddbmm(dy_[t], dg_[t + 1], w_hh)
        s, tc, g = s_[t], tc_[t], g_[t]
        # dc_t = dc_{t+1} f_{t+1} + dh_t o_t (1 - tanh(c_t)^2)
        torch.mul(tc, tc, out=tmp)
        tmp.sub_(1.0).mul_(o_[t])
        dc.addcmul_(dh, tmp, value=-1.0)
        torch.mul(s, s, out=a)
        torch.sub(s, a, out=a)  # s (1 - s) for i f o
        torch.mul(g, g, out=a_g)
        a_g.sub_(1.0).neg_()  # 1 - g^2 for g
        torch.mul(dc, g, out=di_[t])
        torch.mul(dc, c_[t], out=df_[t])
        torch.mul(dc, i_[t], out=dgg_[t])
        torch.mul(dh, tc, out=do_[t])
        dg_[t].mul_(a)
        dc.mul_(f_[t])
    return [torch.bmm(dg_[0], w_hh), dc]


def _double_g(w: torch.Tensor) -> torch.Tensor:
    """(D, 4H, ...) with the g gate's rows times 2 (exact in floating point)."""
    H = w.shape[1] // 4
    scale = w.new_ones(4 * H)
    scale[2 * H:3 * H] = 2.0
    return w * scale.view(4 * H, *[1] * (w.dim() - 2))


def _direction_major(x: torch.Tensor, num_directions: int) -> torch.Tensor:
    """(T, B, I) -> (D, T, B, I): the reverse direction's copy runs backwards in time."""
    return torch.stack([x, x.flip(0)]) if num_directions == 2 else x.unsqueeze(0)


def _time_major(y: torch.Tensor) -> torch.Tensor:
    """(D, T, B, H) in processing order -> (T, B, D*H) in real time."""
    return torch.cat([y[0], y[1].flip(0)], dim=-1) if y.shape[0] == 2 else y[0]


def _layer_forward(x: torch.Tensor, h_0: torch.Tensor, c_0: torch.Tensor, w_ih: torch.Tensor,
                   w_hh: torch.Tensor, b: torch.Tensor):
    # x: (T, B, I); h_0, c_0: (D, B, H); w_ih: (D, 4H, I); w_hh: (D, 4H, H); b: (D, 4H)
    D, T, B, H = w_ih.shape[0], x.shape[0], x.shape[1], w_hh.shape[2]
    xs = _direction_major(x, D)  # (D, T, B, I)
    gx = torch.baddbmm(_double_g(b).unsqueeze(1), xs.reshape(D, T * B, -1), _double_g(w_ih).transpose(1, 2))
    gx = gx.view(D, T, B, 4 * H)
    h_all = x.new_empty(D, T + 1, B, H)
    c_all = x.new_empty(D, T + 1, B, H)
    h_all[:, 0] = h_0
    c_all[:, 0] = c_0
    s_all = x.new_empty(D, T, B, 4 * H)
    tc_all = x.new_empty(D, T, B, H)
    _forward_loop(gx, _double_g(w_hh).transpose(1, 2), h_all, c_all, s_all, tc_all)
    return xs, h_all, c_all, s_all, tc_all


class _LSTMLayer(torch.autograd.Function):
    """One (bi)directional layer: x (T, B, I) -> y (T, B, D*H), h_n, c_n (D, B, H)."""

    @staticmethod
    def forward(ctx, x, h_0, c_0, w_ih, w_hh, b):
        xs, h_all, c_all, s_all, tc_all = _layer_forward(x, h_0, c_0, w_ih, w_hh, b)
        ctx.save_for_backward(xs, h_all, c_all, s_all, tc_all, w_ih, w_hh)
        return _time_major(h_all[:, 1:]), h_all[:, -1].clone(), c_all[:, -1].clone()

    @staticmethod
    def backward(ctx, dy, dh_n, dc_n):
        xs, h_all, c_all, s_all, tc_all, w_ih, w_hh = ctx.saved_tensors
        D, T, B, I = xs.shape
        H = w_hh.shape[2]
        dy = torch.zeros(T, B, D * H) if dy is None else dy
        dys = dy.unsqueeze(0) if D == 1 else torch.stack([dy[..., :H], dy[..., H:].flip(0)])  # (D, T, B, H)
        dh_n = torch.zeros(D, B, H) if dh_n is None else dh_n.contiguous()
        dc_n = torch.zeros(D, B, H) if dc_n is None else dc_n.contiguous()
        dg_all = xs.new_empty(D, T, B, 4 * H)
        dh_0, dc_0 = _backward_loop(dys.contiguous(), dh_n, dc_n, w_hh, c_all, s_all, tc_all, dg_all)
        dg = dg_all.view(D, T * B, 4 * H)
        dg_t = dg.transpose(1, 2)  # (D, 4H, T*B)
        # per direction: bmm takes a slower path for this product here
        dxs = torch.stack([torch.mm(dg[d], w_ih[d]) for d in range(D)]).view(D, T, B, I)
        dx = dxs[0] + dxs[1].flip(0) if D == 2 else dxs[0]
        dw_ih = torch.bmm(dg_t, xs.view(D, T * B, I))
        dw_hh = torch.bmm(dg_t, h_all[:, :T].reshape(D, T * B, H))
        db = dg.sum(1)
        return dx, dh_0, dc_0, dw_ih, dw_hh, db


class LSTM(nn.LSTM):
    """`nn.LSTM` with the hand-written CPU path (float32, batch_first, no PackedSequence, no projections)."""

    def _fast_path_applies(self, x) -> bool:
        return (isinstance(x, torch.Tensor) and x.dim() == 3 and self.batch_first and x.device.type == "cpu"
                and x.dtype == torch.float32 and self.bias and self.proj_size == 0
                and (self.dropout == 0 or not self.training) and x.shape[0] > 0 and x.shape[1] > 0
                and all(p.device.type == "cpu" and p.dtype == torch.float32 for p in self._flat_weights))

    def forward(self, input, hx=None):
        if not self._fast_path_applies(input):
            return super().forward(input, hx)
        B = input.shape[0]
        D = 2 if self.bidirectional else 1
        if hx is None:
            h_0 = c_0 = input.new_zeros(self.num_layers * D, B, self.hidden_size)
        else:
            self.check_forward_args(input, hx, None)  # nn.LSTM's shape checks and messages
            h_0, c_0 = hx
        x = input.transpose(0, 1)  # (T, B, I)
        sfx = ["", "_reverse"][:D]
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            w_ih = torch.stack([getattr(self, f"weight_ih_l{layer}{s}") for s in sfx])
            w_hh = torch.stack([getattr(self, f"weight_hh_l{layer}{s}") for s in sfx])
            b = torch.stack([getattr(self, f"bias_ih_l{layer}{s}") + getattr(self, f"bias_hh_l{layer}{s}")
                             for s in sfx])
            x, h, c = _LSTMLayer.apply(x.contiguous(), h_0[layer * D:(layer + 1) * D].contiguous(),
                                       c_0[layer * D:(layer + 1) * D].contiguous(), w_ih, w_hh, b)
            h_n.append(h)
            c_n.append(c)
        return x.transpose(0, 1), (torch.cat(h_n), torch.cat(c_n))
