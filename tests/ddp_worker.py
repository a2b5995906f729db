"""`pianogenie train` under torchrun in the process group a GPU run builds, with NCCL played by a
stand-in that, like NCCL, has no CPU support (gloo registered for the "cuda" device type only).

    python -m torch.distributed.run --nproc_per_node=2 tests/ddp_worker.py STOP_AT train --data ...

Rank 1 alone gets SIGINT during step STOP_AT, so the run also exercises the all-ranks stop flag.
Any collective the trainer runs on a CPU tensor without a CPU backend fails as it did on GPUs:
"No backend type associated with device type cpu".
"""

import os
import signal
import sys

import torch.distributed as dist

from pianogenie import distributed
from pianogenie.cli import main
from pianogenie.train import Trainer


def nccl_stand_in(store, rank, world_size, timeout):
    return dist.ProcessGroupGloo(store, rank, world_size, timeout)


dist.Backend.register_backend("nccl_stand_in", nccl_stand_in, devices=["cuda"])
dist.init_process_group(backend=distributed.backend_for("cuda", accelerator_backend="nccl_stand_in"))

stop_at = int(sys.argv[1])
train_step = Trainer.train_step


def train_step_then_signal(self, batch):
    out = train_step(self, batch)
    if self.rank == 1 and self.step + 1 == stop_at:  # self.step counts this step once it returns
        os.kill(os.getpid(), signal.SIGINT)
    return out


Trainer.train_step = train_step_then_signal
sys.exit(main(sys.argv[2:]))
