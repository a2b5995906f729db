"""Single-step decode latency at batch 1, carrying state: torch `Decoder.step`, a plain numpy step
and the numpy `PianoGenie.press`, without and with the velocity head.

The torch step and `press` include sampling a key at temperature 0.25 and feeding it back, as
real-time play does; the plain numpy step (the textbook LSTM equations on the PyTorch-layout weights,
"a plain numpy step from the same weights") is the step alone, without sampling.
The goal is a press with median <= 30 us and p99 <= 60 us, set where the torch step took
~180 us and the plain numpy step ~28 us; both baselines are measured in the same run, so the
script prints the goal both as set and as ratios to them. Timings are per step with
`perf_counter_ns`, after a warm-up.

The press including its velocity (a velocity head: the model's own, else a random one
of the default size, velocity_bins=32, velocity_hidden=128) may be at most 15 % slower than the
press without one, on the same key weights; the two are timed in alternating blocks.

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
from pianogenie.packed import plain_step

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "tutorial-2021" / "pytorch" / "model.pt"
TEMPERATURE = 0.25
# Issue 5, measured where its goal was set: "a torch decoder step at batch 1 takes about 180 us
# median, a plain numpy step from the same weights about 28 us".
TORCH_WHERE_SET_US, PLAIN_WHERE_SET_US = 180.0, 28.0


def percentiles(ns: list[int]) -> tuple[float, float]:
    us = np.asarray(ns) / 1e3
    return float(np.median(us)), float(np.percentile(us, 99))


def bench_torch(
    model: Autoencoder, cfg: Config, times: np.ndarray, buttons: np.ndarray, warmup: int, gap: float
) -> list[int]:
    gen = torch.Generator().manual_seed(0)
    state, k_m1, last = None, torch.tensor([SOS]), None
    out = []
    with torch.inference_mode():
        for n, (t, b) in enumerate(zip(times.tolist(), buttons.tolist())):
            t0 = time.perf_counter_ns()
            dt = cfg.data_delta_time_max if last is None else min(max(t - last, 0.0), cfg.data_delta_time_max)
            last = t
            logits, state = model.dec.step(
                k_m1, torch.tensor([dt]), model.quant.discrete_to_real(torch.tensor([b])), state
            )
            k_m1 = torch.multinomial(torch.softmax(logits / TEMPERATURE, dim=-1), 1, generator=gen)[:, 0]
            int(k_m1)
            t1 = time.perf_counter_ns()
            if n >= warmup:
                out.append(t1 - t0)
            if gap:
                time.sleep(gap)
    return out


def bench_plain(
    model: Autoencoder, cfg: Config, times: np.ndarray, buttons: np.ndarray, warmup: int, gap: float
) -> list[int]:
    w = {name: p.detach().numpy() for name, p in model.dec.state_dict().items()}
    step = plain_step(w, cfg.model_rnn_num_layers)

    def zeros() -> list[np.ndarray]:  # one (H,) state vector per layer
        return [np.zeros(cfg.model_rnn_dim, np.float32) for _ in range(cfg.model_rnn_num_layers)]

    # A baseline is only worth timing if it computes the same thing: check it against torch first.
    h, c, state = zeros(), zeros(), None
    with torch.inference_mode():
        for k_m1, dt, b in [(SOS, 1.0, -1.0), (40, 0.2, 1 / 7), (45, 0.0, 1.0), (87, 0.7, -3 / 7)]:
            ours = step(k_m1, dt, b, h, c)
            ref, state = model.dec.step(torch.tensor([k_m1]), torch.tensor([dt]), torch.tensor([b]), state)
            assert np.abs(ours - ref[0].numpy()).max() < 1e-4, "plain numpy step disagrees with torch"
    h, c = zeros(), zeros()
    k_m1, last, out = SOS, None, []
    for n, (t, b) in enumerate(zip(times.tolist(), buttons.tolist())):
        t0 = time.perf_counter_ns()
        dt = cfg.data_delta_time_max if last is None else min(max(t - last, 0.0), cfg.data_delta_time_max)
        last = t
        logits = step(k_m1, dt, b * 2 / (cfg.num_buttons - 1) - 1, h, c)
        t1 = time.perf_counter_ns()
        k_m1 = int(logits.argmax())  # feeds a plausible key back; outside the timed step
        if n >= warmup:
            out.append(t1 - t0)
        if gap:
            time.sleep(gap)
    return out


def bench_numpy(
    genie: PianoGenie, times: np.ndarray, buttons: np.ndarray, warmup: int, gap: float, read_velocity: bool = False
) -> list[int]:
    """`press` (and, with read_velocity, reading the press's velocity, as a player does)."""
    out = []
    press, clock, sleep = genie.press, time.perf_counter_ns, time.sleep
    for n, (t, b) in enumerate(zip(times.tolist(), buttons.tolist())):
        t0 = clock()
        press(t, b, TEMPERATURE)
        if read_velocity:
            _ = genie.velocity  # the property computes the velocity: part of what is timed
        t1 = clock()
        if n >= warmup:
            out.append(t1 - t0)
        if gap:
            sleep(gap)
    return out


def velocity_pair(model: Autoencoder, cfg: Config) -> tuple[PianoGenie, PianoGenie]:
    """Sessions on the same key weights without and with a velocity head."""
    from pianogenie.velocity import VelocityHead

    dec = {name: p.detach().double().numpy() for name, p in model.dec.state_dict().items()}
    vel = getattr(model, "vel", None) or VelocityHead(cfg.model_rnn_dim, 128, 32)
    vel_w = {name: p.detach().double().numpy() for name, p in vel.state_dict().items()}
    return PianoGenie(dec, cfg, seed=0), PianoGenie(dec, cfg, seed=0, velocity_weights=vel_w)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="run dir or checkpoint (default: reference if present, else random)")
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--warmup", type=int, default=500)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest at batch 1)")
    p.add_argument(
        "--gap-ms",
        type=float,
        default=0.0,
        help="sleep between presses, as a player leaves "
        "(BLAS worker threads go idle in the gaps; default 0: back to back)",
    )
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
    plain_ns = bench_plain(model, cfg, times, buttons, args.warmup, gap)
    genie = PianoGenie.from_model(model, cfg, seed=0)
    numpy_ns = bench_numpy(genie, times, buttons, args.warmup, gap)
    (tm, tp), (pm, pp), (nm, np99) = percentiles(torch_ns), percentiles(plain_ns), percentiles(numpy_ns)
    no_vel, with_vel = velocity_pair(model, cfg)
    keys_ns, vel_ns = [], []
    for _ in range(2):  # alternating blocks, so drift in the machine's speed hits both alike
        no_vel.reset(0)
        with_vel.reset(0)
        keys_ns += bench_numpy(no_vel, times, buttons, args.warmup, gap, read_velocity=True)
        vel_ns += bench_numpy(with_vel, times, buttons, args.warmup, gap, read_velocity=True)
    (km, kp), (vm, vp) = percentiles(keys_ns), percentiles(vel_ns)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"model: {source} ({cfg.model_rnn_num_layers} x {cfg.model_rnn_dim})")
    print(f"cpu: {os.cpu_count()} cores, 1-min load average {load:.1f} (other processes inflate the tail)")
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__} "
        f"({args.threads} thread), numpy {np.__version__}; {args.steps} steps, batch 1, T={TEMPERATURE}, "
        f"{args.gap_ms:g} ms between presses"
    )
    print(f"{'':24}{'median us':>12}{'p99 us':>12}")
    print(f"{'torch dec.step+sample':24}{tm:12.1f}{tp:12.1f}")
    print(f"{'plain numpy step':24}{pm:12.1f}{pp:12.1f}   (no sampling)")
    print(f"{'numpy press':24}{nm:12.1f}{np99:12.1f}")
    print(f"{'  again, no velocity':24}{km:12.1f}{kp:12.1f}   (alternating with the next row)")
    print(f"{'  with velocity head':24}{vm:12.1f}{vp:12.1f}   (press + its velocity)")
    print(
        f"speed-up of press: vs torch median {tm / nm:.1f}x, p99 {tp / np99:.1f}x; "
        f"vs plain numpy step median {pm / nm:.2f}x, p99 {pp / np99:.2f}x"
    )
    print(
        f"goal as set (median <= 30 us, p99 <= 60 us): median {'met' if nm <= 30 else 'NOT met'}, "
        f"p99 {'met' if np99 <= 60 else 'NOT met'}"
    )
    # Where the goal was set the torch step took ~180 us and a plain numpy step ~28 us: as same-run
    # ratios, the goal asks for a press >= 6x faster than the torch step and no slower than 30/28 of
    # the plain step. (Rough: neither baseline here is byte-for-byte the one measured there.)
    print(
        f"goal as same-run ratios: press >= {TORCH_WHERE_SET_US / 30:.0f}x faster than torch: "
        f"{'met' if tm / nm >= TORCH_WHERE_SET_US / 30 else 'NOT met'} ({tm / nm:.1f}x); press <= "
        f"{30 / PLAIN_WHERE_SET_US:.2f}x the plain numpy step: {'met' if nm / pm <= 30 / PLAIN_WHERE_SET_US else 'NOT met'} "
        f"({nm / pm:.2f}x)"
    )
    print(
        f"velocity: press with velocity / without = {vm / km:.3f} median, {vp / kp:.3f} p99; goal <= 1.15: "
        f"{'met' if vm / km <= 1.15 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
