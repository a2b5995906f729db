"""Distributed data parallel plumbing: the process group and the trainer's own collectives.

The trainer's own collectives (the stop flag, the barrier after a checkpoint) carry a few host
scalars, so they run on CPU tensors; the gradients DDP reduces live on the training device. A
process group with one backend for both would refuse one of them (NCCL has no CPU support:
"No backend type associated with device type cpu"), so on an accelerator the group has a backend
per device type: gloo for CPU tensors, NCCL (or the device's own) for device tensors. CPU
collectives also never wait for the GPU's queue, so checking the stop flag costs no device sync.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import torch
import torch.distributed as dist

# Collective backend for tensors on each accelerator type (CPU tensors always use gloo).
ACCELERATOR_BACKENDS = {"cuda": "nccl", "xpu": "xccl"}


def backend_for(device_type: str, accelerator_backend: str | None = None) -> str:
    """The `init_process_group` backend for training on `device_type`: every device type the
    trainer's collectives use (always "cpu", plus the training device's) gets a backend."""
    if device_type == "cpu":
        return "gloo"
    accelerator_backend = accelerator_backend or ACCELERATOR_BACKENDS.get(device_type)
    if accelerator_backend is None:
        raise ValueError(f"no collective backend known for device type {device_type!r}")
    return f"cpu:gloo,{device_type}:{accelerator_backend}"


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device: torch.device) -> None:
    """Join the process group torchrun set up the environment for (no-op if already joined)."""
    if dist.is_initialized():
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)  # NCCL's communicators for this rank live on its own GPU
    dist.init_process_group(backend=backend_for(device.type))


def any_rank(flag: bool) -> bool:
    """True on every rank if `flag` is true on any rank (e.g. a signal reached only some ranks)."""
    t = torch.tensor([1.0 if flag else 0.0])  # CPU: served by gloo in every group built by init()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier() -> None:
    """Wait for every rank: an all-reduce of a CPU scalar, so it never depends on which device
    NCCL would guess for its own barrier."""
    dist.all_reduce(torch.zeros(1))


def exit_worker(status: int) -> NoReturn:
    """End a torchrun worker whose work is done and saved, its output flushed, without the
    interpreter's teardown: DDP keeps the process group's gloo threads running past
    `destroy_process_group` (torch 2.13 frees neither), and their race with the teardown now and
    then aborts a finished rank ("terminate called without an active exception", SIGABRT), which
    torchrun reports as that rank's failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
