"""LSTM forward+backward time per layer config: `nn.LSTM` (oneDNN) vs `pianogenie.lstm.LSTM`, one run.

The configs are Piano Genie's: the encoder's 2-layer bidirectional LSTM and the decoder's 2-layer
unidirectional one, 128 units, batch 32 x 128 steps (and the batch-16 shard of 2 shard threads).
Both modules share weights and inputs; runs alternate, best of `--repeats`, so background load hits
both alike. Also times inference (no_grad forward) and checks that the outputs agree.

    .venv/bin/python benchmarks/lstm_speed.py [--threads 1] [--repeats 7] [--iters 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch
import torch.nn as nn

from pianogenie.lstm import LSTM

CONFIGS = [  # (name, batch, bidirectional)
    ("encoder 2x128 bidirectional, B=32", 32, True),
    ("decoder 2x128 unidirectional, B=32", 32, False),
    ("encoder 2x128 bidirectional, B=16", 16, True),
    ("decoder 2x128 unidirectional, B=16", 16, False),
]


def time_fwd_bwd(module: nn.Module, x: torch.Tensor, iters: int) -> float:
    t0 = time.perf_counter()
    for _ in range(iters):
        y, (h, c) = module(x)
        torch.autograd.grad(y.square().sum() + h.sum(), [x, *module.parameters()])
    return (time.perf_counter() - t0) / iters


def time_fwd(module: nn.Module, x: torch.Tensor, iters: int) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        for _ in range(iters):
            module(x)
    return (time.perf_counter() - t0) / iters


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (training uses 1)")
    parser.add_argument("--repeats", type=int, default=7, help="alternating measurements, best kept")
    parser.add_argument("--iters", type=int, default=3, help="calls per measurement")
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.threads} thread(s), {args.seq_len} steps, {args.hidden} units, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.2f}; best of {args.repeats} x {args.iters} calls")
    for name, batch, bidirectional in CONFIGS:
        torch.manual_seed(0)
        ref = nn.LSTM(args.hidden, args.hidden, 2, batch_first=True, bidirectional=bidirectional)
        ours = LSTM(args.hidden, args.hidden, 2, batch_first=True, bidirectional=bidirectional)
        ours.load_state_dict(ref.state_dict())
        x = torch.randn(batch, args.seq_len, args.hidden, requires_grad=True)
        with torch.no_grad():
            err = (ref(x)[0] - ours(x)[0]).abs().max().item()
        times: dict[str, list[float]] = {}
        for module in (ref, ours, ref, ours):  # warm-up: oneDNN primitive caches, TorchScript profiling
            time_fwd_bwd(module, x, 1)
            time_fwd(module, x, 1)
        for _ in range(args.repeats):
            for label, module in (("nn.LSTM", ref), ("ours", ours)):
                times.setdefault(f"{label} fwd+bwd", []).append(time_fwd_bwd(module, x, args.iters))
                times.setdefault(f"{label} fwd", []).append(time_fwd(module, x, args.iters))
        best = {k: min(v) * 1e3 for k, v in times.items()}
        print(f"{name}: max |y - y_ref| {err:.1e}")
        for kind in ("fwd+bwd", "fwd"):
            ref_ms, ours_ms = best[f"nn.LSTM {kind}"], best[f"ours {kind}"]
            print(f"  {kind:8s} nn.LSTM {ref_ms:7.1f} ms   ours {ours_ms:7.1f} ms   speed-up x{ref_ms / ours_ms:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
