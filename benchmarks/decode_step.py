"""Single-step decode latency at batch 1, carrying state: torch `Decoder.step` vs the numpy `PianoGenie.press`.

Both sides include sampling a key at temperature 0.25 and feeding it back, as real-time play does.
The goal (issue 5) is a numpy press with median <= 30 us and p99 <= 60 us; the torch step is the
baseline measured in the same run. Timings are per step with `perf_counter_ns`, after a warm-up.

    .venv/bin/python benchmarks/decode_step.py [--model PATH] [--steps 20000] [--threads 1]

Without --model it uses the reference checkpoint in ../shared when present, else a random model
of the default size (latency does not depend on the weights).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from pianogenie.config import Config
from pianogenie.constants import SOS
from pianogenie.genie import PianoGenie
from pianogenie.model import Autoencoder, load_model

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tutorial-2021" / "pytorch" / "model.pt"
TEMPERATURE = 0.25


def percentiles(ns: list[int]) -> tuple[float, float]:
    us = np.asarray(ns) / 1e3
    return float(np.median(us)), float(np.percentile(us, 99))


def bench_torch(model: Autoencoder, cfg: Config, times: np.ndarray, buttons: np.ndarray, warmup: int,
                gap: float) -> list[int]:
    gen = torch.Generator().manual_seed(0)
    state, k_m1, last = None, torch.tensor([SOS]), None
    out = []
    with torch.inference_mode():
        for n, (t, b) in enumerate(zip(times.tolist(), buttons.tolist())):
            t0 = time.perf_counter_ns()
            dt = cfg.data_delta_time_max if last is None else min(max(t - last, 0.0), cfg.data_delta_time_max)
            last = t
            logits, state = model.dec.step(k_m1, torch.tensor([dt]), model.quant.discrete_to_real(torch.tensor([b])), state)
            k_m1 = torch.multinomial(torch.softmax(logits / TEMPERATURE, dim=-1), 1, generator=gen)[:, 0]
            int(k_m1)
            t1 = time.perf_counter_ns()
            if n >= warmup:
                out.append(t1 - t0)
            if gap:
                time.sleep(gap)
    return out


def bench_numpy(genie: PianoGenie, times: np.ndarray, buttons: np.ndarray, warmup: int, gap: float) -> list[int]:
    out = []
    press, clock, sleep = genie.press, time.perf_counter_ns, time.sleep
    for n, (t, b) in enumerate(zip(times.tolist(), buttons.tolist())):
        t0 = clock()
        press(t, b, TEMPERATURE)
        t1 = clock()
        if n >= warmup:
            out.append(t1 - t0)
        if gap:
            sleep(gap)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="run dir or checkpoint (default: reference if present, else random)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest at batch 1)")
    p.add_argument("--gap-ms", type=float, default=0.0, help="sleep between presses, as a player leaves "
                   "(BLAS worker threads go idle in the gaps; default 0: back to back)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.model or REFERENCE.is_file():
        model, cfg = load_model(args.model or REFERENCE)
        source = str(args.model or REFERENCE)
    else:
        cfg = Config()
        model, source = Autoencoder(cfg).eval(), "random init (default size)"
    rng = np.random.default_rng(0)
    n = args.steps + args.warmup
    times = np.cumsum(rng.exponential(0.15, n))
    buttons = rng.integers(0, cfg.num_buttons, n)

    gap = args.gap_ms / 1e3
    torch_ns = bench_torch(model, cfg, times, buttons, args.warmup, gap)
    genie = PianoGenie.from_model(model, cfg, seed=0)
    numpy_ns = bench_numpy(genie, times, buttons, args.warmup, gap)
    (tm, tp), (nm, np99) = percentiles(torch_ns), percentiles(numpy_ns)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model: {source} ({cfg.model_rnn_num_layers} x {cfg.model_rnn_dim})")
    print(f"cpu: {os.cpu_count()} cores, 1-min load average {load:.1f} (other processes inflate the tail)")
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
          f"({args.threads} thread), numpy {np.__version__}; {args.steps} steps, batch 1, T={TEMPERATURE}, "
          f"{args.gap_ms:g} ms between presses")
    print(f"{'':24}{'median us':>12}{'p99 us':>12}")
    print(f"{'torch dec.step+sample':24}{tm:12.1f}{tp:12.1f}")
    print(f"{'numpy press':24}{nm:12.1f}{np99:12.1f}")
    print(f"speed-up (torch / numpy): median {tm / nm:.1f}x, p99 {tp / np99:.1f}x")
    print(f"goal median <= 30 us: {'met' if nm <= 30 else 'NOT met'}; goal p99 <= 60 us: {'met' if np99 <= 60 else 'NOT met'}")


if __name__ == "__main__":
    main()
