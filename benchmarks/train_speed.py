"""Training steps/s: the 2021 tutorial's loop vs ours, same data, model size and batch, one run.

The tutorial loop (re-expressed here as the baseline): per step, sample `batch_size` performances,
take a random window of each, augment note by note in Python lists (stretch, transpose with
clamping), build tensors from the lists, and run forward/backward/Adam with default torch
settings. Ours: `pianogenie.train.Trainer.train_step` on vectorised windows.

    python benchmarks/train_speed.py [--data NOTES.json.gz] [--steps 40]
    python benchmarks/train_speed.py --device cuda [--batch-sizes 32 256] [--steps 400]

Without --data it prepares ../shared/data/maestro-asap into a temporary file first.

On a GPU (`--device cuda`) both loops run on that device at each batch size, in one run: the
tutorial loop as above (tensors built on the host, copied, loss read back each step as its
training loop logged it), ours as `Trainer.train()` itself (batches drawn ahead on a thread in
pinned memory, loss terms summed on the device, read every summarize_frequency steps), timed from
its own steps/s records after the first (warm-up, step-0 checkpoint) interval.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS
from pianogenie.maestro import find_source
from pianogenie.model import Autoencoder
from pianogenie.notes_file import load_notes
from pianogenie.prepare import prepare
from pianogenie.train import Trainer, default_workers

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "maestro-asap"


def benchmark_notes(data_path: str | None, tmp: str) -> dict | None:
    """The notes file given, else ../shared/data/maestro-asap prepared into `tmp`; None (said on
    stderr) when there is neither."""
    if data_path is None:
        if not SHARED.is_dir():
            print(f"skipped: {SHARED} is absent; pass --data NOTES.json.gz", file=sys.stderr)
            return None
        data_path = os.path.join(tmp, "notes.json.gz")
        prepare(find_source(SHARED), data_path, progress=False)
    return load_notes(data_path)


def tutorial_batch(performances: list[list[tuple]], cfg: Config) -> tuple[torch.Tensor, torch.Tensor]:
    batch_k, batch_t = [], []
    for p in random.choices(performances, k=cfg.batch_size):
        offset = random.randrange(0, len(p) - cfg.seq_len)
        sub = p[offset : offset + cfg.seq_len]
        stretch = 1 - cfg.data_augment_time_stretch_max + random.random() * 2 * cfg.data_augment_time_stretch_max
        shift = random.randint(-cfg.data_augment_transpose_max, cfg.data_augment_transpose_max)
        sub = [(n[0] * stretch, n[1] * stretch, max(0, min(n[2] + shift, NUM_KEYS - 1)), n[3]) for n in sub]
        batch_k.append([n[2] for n in sub])
        t = np.diff([n[0] for n in sub])
        batch_t.append(np.clip(np.concatenate([[1e8], t]), 0, cfg.data_delta_time_max))
    return torch.tensor(batch_k).long(), torch.tensor(np.array(batch_t)).float()


def tutorial_loop(performances, cfg: Config, steps: int, threads: int, device: str = "cpu") -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    random.seed(0)
    model = Autoencoder(cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lists = [[tuple(n) for n in p.tolist()] for p in performances if len(p) > cfg.seq_len]

    def step():
        k, t = tutorial_batch(lists, cfg)
        k, t = k.to(device), t.to(device)
        hat_k, e = model(k, t)
        recons = F.cross_entropy(hat_k.reshape(-1, NUM_KEYS), k.reshape(-1))
        margin = torch.square(torch.clamp(e.abs() - 1, min=0)).mean()
        contour = torch.square(torch.clamp(1 - torch.diff(k, dim=1) * torch.diff(e, dim=1), min=0)).mean()
        loss = recons + cfg.loss_margin_multiplier * margin + cfg.loss_contour_multiplier * contour
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device != "cpu":
            loss.item()  # the tutorial's loop logs the loss of every step

    return _steps_per_second(step, steps, device)


def our_loop(data, cfg: Config, steps: int, workers: int, run_dir: str) -> float:
    torch.set_num_threads(1)
    trainer = Trainer(cfg, data, run_dir, progress=False, workers=workers)
    rng = np.random.default_rng(0)

    def step():
        batch = trainer.windows.sample(
            rng,
            cfg.batch_size,
            cfg.data_delta_time_max,
            cfg.data_augment_time_stretch_max,
            cfg.data_augment_transpose_max,
        )
        trainer.train_step(batch)

    return _steps_per_second(step, steps)


def step_gflop(cfg: Config) -> float:
    """Multiply-add work of one training step, GFLOP: forward 2 * rows * in * out per matrix
    product, backward twice that (gradients of the inputs and of the weights)."""
    H, L, rows = cfg.model_rnn_dim, cfg.model_rnn_num_layers, cfg.batch_size * cfg.seq_len

    def lstm(n_in: int) -> int:  # one layer, one direction: W_ih x + W_hh h
        return 2 * rows * 4 * H * (n_in + H)

    encoder = sum(2 * lstm(H if l == 0 else 2 * H) for l in range(L)) + 2 * rows * ((NUM_KEYS + 1) * H + 2 * H)
    decoder = sum(lstm(H) for _ in range(L)) + 2 * rows * ((NUM_KEYS + 3) * H + H * NUM_KEYS)
    return 3 * (encoder + decoder) / 1e9


def gemm_gflops(rows: int, n_in: int, n_out: int, repeats: int = 20) -> float:
    """One core's best rate on (rows, n_in) @ (n_in, n_out), GFLOP/s."""
    torch.set_num_threads(1)
    a, b = torch.randn(rows, n_in), torch.randn(n_in, n_out)
    number = max(1, 2_000_000 // (rows * n_in))  # time small products in bunches
    best = math.inf
    for _ in range(3 + repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            a @ b
        best = min(best, (time.perf_counter() - t0) / number)
    return 2 * rows * n_in * n_out / best / 1e9


def _steps_per_second(step, steps: int, device: str = "cpu") -> float:
    for _ in range(3):  # warm-up: allocator, oneDNN primitive caches / cuDNN plans
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - t0)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def trainer_loop(data, cfg: Config, steps: int, device: str, run_dir: str) -> float:
    """Our real training loop on `device`: steps/s over its summaries after the first one."""
    import json

    every = max(steps // 5, 1)
    cfg = cfg.replace(max_num_steps=6 * every, summarize_frequency=every, eval_frequency=10 * 6 * every)
    Trainer(cfg, {"train": data["train"]}, run_dir, device=device, progress=False).train()
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    rates = [r["steps_per_second"] for r in rows if r["split"] == "train"][1:]
    return len(rates) / sum(1 / r for r in rates)  # steps / seconds over those intervals


def device_main(args, data) -> int:
    """Tutorial loop vs ours on one accelerator, each batch size, alternating `rounds` times."""
    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        print(f"skipped: --device {device} but torch sees no CUDA device", file=sys.stderr)
        return 0
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else device
    print(f"{name}, torch {torch.__version__}, {args.steps} steps per measurement, best of {args.rounds}")
    with tempfile.TemporaryDirectory() as tmp:
        for batch_size in args.batch_sizes:
            cfg = Config(batch_size=batch_size)
            tutorial, ours = [], []
            for r in range(args.rounds):
                tutorial.append(tutorial_loop(data["train"], cfg, args.steps, torch.get_num_threads(), device))
                ours.append(trainer_loop(data, cfg, args.steps, device, f"{tmp}/b{batch_size}r{r}"))
            print(
                f"batch {batch_size:4d}: tutorial loop {max(tutorial):7.1f} steps/s, ours {max(ours):7.1f} "
                f"steps/s -> x{max(ours) / max(tutorial):.2f}",
                flush=True,
            )
        if args.bound:
            for batch_size in args.batch_sizes:
                try:
                    device_bound(data, Config(batch_size=batch_size), device, f"{tmp}/bound{batch_size}")
                except Exception as e:  # a measurement of what bounds it must not hide the comparison
                    print(f"batch {batch_size:4d}: bound measurement failed: {type(e).__name__}: {e}")
    return 0


def recurrence_ms(cfg: Config, device: str, dtype: torch.dtype | None = None, repeats: int = 50) -> float:
    """Kernel time (CUDA events) of one training step's LSTMs alone, forward and backward: the
    encoder's bidirectional one and the decoder's, on (batch, seq_len, H) inputs; `dtype`: autocast."""
    model = Autoencoder(cfg).to(device)
    x = torch.randn(cfg.batch_size, cfg.seq_len, cfg.model_rnn_dim, device=device, requires_grad=True)

    def run():
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            y_enc, _ = model.enc.lstm(x)
            y_dec, _ = model.dec.lstm(x)
        (y_enc.float().sum() + y_dec.float().sum()).backward()

    for _ in range(5):
        run()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        run()
    end.record()
    torch.cuda.synchronize(device)
    return start.elapsed_time(end) / repeats


def graph_step_ms(cfg: Config, batch, device: str, steps: int = 50) -> float:
    """A training step captured whole as a CUDA graph (full-length windows, fixed learning rate) and
    replayed: the time a step needs when the host launches nothing. An experiment, not the loop `train` runs."""
    from pianogenie.model import losses

    model = Autoencoder(cfg).to(device)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=True, capturable=True)
    k, t = batch.k.to(device), batch.t.to(device)
    full = type(batch)(k, t, torch.full((k.shape[0],), k.shape[1]), torch.ones_like(k, dtype=torch.bool))

    def step():
        opt.zero_grad(set_to_none=False)
        losses(model, full, cfg)[0]["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        opt.step()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    for _ in range(5):
        graph.replay()
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        graph.replay()
    torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps * 1e3


def device_bound(data, cfg: Config, device: str, run_dir: str, steps: int = 50) -> None:
    """What bounds a step on the GPU: its wall time against the GPU's kernel time per step (the
    profiler's sum over kernels) and the LSTM recurrence's share of it, with the top kernels."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    trainer = Trainer(cfg, {"train": data["train"]}, run_dir, device=device, progress=False)
    rng = np.random.default_rng(0)
    batches = [trainer.windows.sample(rng, cfg.batch_size, cfg.data_delta_time_max).to(device) for _ in range(8)]
    for i in range(10):
        trainer.train_step(batches[i % 8])
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for i in range(steps):
        trainer.train_step(batches[i % 8])
    torch.cuda.synchronize(device)
    wall = (time.perf_counter() - t0) / steps * 1e3
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for i in range(steps):
            trainer.train_step(batches[i % 8])
        torch.cuda.synchronize(device)
    kernels = [
        (e.key, getattr(e, "self_device_time_total", 0) or getattr(e, "self_cuda_time_total", 0), e.count)
        for e in prof.key_averages()
        if e.device_type == DeviceType.CUDA
    ]
    gpu = sum(t for _, t, _ in kernels) / steps / 1e3  # ms per step
    rec32 = recurrence_ms(cfg, device)
    try:
        rec16 = f"{recurrence_ms(cfg, device, torch.bfloat16):.2f} ms under bf16 autocast"
    except Exception as e:
        rec16 = f"bf16 autocast failed ({type(e).__name__})"
    try:
        graph = f"{graph_step_ms(cfg, batches[0], device):.2f} ms"
    except Exception as e:
        graph = f"failed ({type(e).__name__}: {str(e)[:80]})"
    print(
        f"batch {cfg.batch_size:4d}: the whole step (forward, backward, clip, fused Adam) replayed as one CUDA "
        f"graph: {graph} per step (no launch overhead: what the GPU alone needs)"
    )
    print(
        f"batch {cfg.batch_size:4d}: a train step (batch on the GPU) takes {wall:.2f} ms wall "
        f"({1e3 / wall:.0f} steps/s); the GPU's kernels {gpu:.2f} ms of it ({gpu / wall:.0%}), "
        f"{sum(c for _, _, c in kernels) / steps:.0f} launches; the LSTMs alone (fwd+bwd) {rec32:.2f} ms fp32, {rec16}"
    )
    for name, t, count in sorted(kernels, key=lambda k: -k[1])[:6]:
        print(f"    {t / steps / 1e3:6.3f} ms/step  x{count // steps:<3d} {name[:90]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="prepared notes file (default: prepare ../shared/data/maestro-asap)")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2, help="alternate the loops this many times")
    parser.add_argument("--device", default="cpu", help="cpu (default) or an accelerator such as cuda")
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[32, 256],
        help="batch sizes to compare on an accelerator (default: 32 256)",
    )
    parser.add_argument(
        "--bound",
        action="store_true",
        help="on a GPU, also measure what bounds a step: "
        "wall vs kernel time (profiler), the LSTM recurrence's time, the top kernels",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = benchmark_notes(args.data, tmp)
        if data is None:
            return 0
        if args.device != "cpu":
            return device_main(args, data)
        cfg = Config()
        default_threads = torch.get_num_threads()  # what the tutorial ran with
        workers = default_workers()
        print(
            f"batch {cfg.batch_size} x {cfg.seq_len}, LSTM {cfg.model_rnn_num_layers} x {cfg.model_rnn_dim}, "
            f"{args.steps} steps per measurement, {workers} cores, torch {torch.__version__}, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        results: dict[str, list[float]] = {}
        for r in range(args.rounds):
            runs = {
                f"tutorial loop (torch default: {default_threads} threads)": lambda: tutorial_loop(
                    data["train"], cfg, args.steps, threads=default_threads
                ),
                "tutorial loop (1 thread)": lambda: tutorial_loop(data["train"], cfg, args.steps, threads=1),
                f"ours ({workers} shard threads)": lambda r=r: our_loop(data, cfg, args.steps, workers, f"{tmp}/r{r}"),
            }
            for name, fn in runs.items():
                results.setdefault(name, []).append(fn())
        base = max(results[next(iter(results))])
        gflop = step_gflop(cfg)
        for name, values in results.items():
            best = max(values)
            print(
                f"{name:45s} {best:6.2f} steps/s (best of {len(values)})  x{best / base:.2f} vs tutorial default"
                f"  {best * gflop:5.1f} GFLOP/s"
            )
        # What limits it: a step is a fixed amount of matrix work. The recurrence can only run as
        # one small product per time step, (rows per shard, H) @ (H, 4H) forward and again backward;
        # everything else (input projections, weight gradients) can run as large products. Charging
        # each at one core's measured rate, with the gate arithmetic free, bounds steps/s from above.
        H, shard_rows = cfg.model_rnn_dim, cfg.batch_size // workers
        big_rate = max(gemm_gflops(shard_rows * cfg.seq_len, 2 * H, 4 * H) for _ in range(3))
        small_rate = max(gemm_gflops(shard_rows, H, 4 * H) for _ in range(3))
        layer_directions = 3 * cfg.model_rnn_num_layers  # encoder both ways, decoder one way
        recurrent = 2 * layer_directions * 2 * cfg.batch_size * cfg.seq_len * 4 * H * H / 1e9  # forward + backward
        bound = workers / ((gflop - recurrent) / big_rate + recurrent / small_rate)
        ours = max(results[list(results)[-1]])
        print(
            f"a step is {gflop:.1f} GFLOP, {recurrent:.1f} of it in the recurrence. One core: "
            f"({shard_rows * cfg.seq_len}, {2 * H}) @ ({2 * H}, {4 * H}) runs at {big_rate:.1f} GFLOP/s, a time "
            f"step's ({shard_rows}, {H}) @ ({H}, {4 * H}) at {small_rate:.1f}; ours averages {ours * gflop / workers:.1f}."
        )
        print(
            f"bound (each product at those rates on all {workers} cores, gate arithmetic free): {bound:.2f} steps/s "
            f"= x{bound / base:.2f} vs tutorial default; ours reaches {ours / bound:.0%} of it"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
