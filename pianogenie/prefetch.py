"""Training batches prepared ahead of the training loop, reproducibly.

`BatchSource` draws the training windows from the run's numpy generator in order, either on the
calling thread (`depth=0`, the CPU default: sampling is ~1 ms against a ~300 ms step) or on a
background thread `depth` batches ahead, in pinned memory, so that a GPU never waits for numpy
and the copy to the device is asynchronous (`Batch.to(device, non_blocking=True)`: a copy from
pageable memory would make the host wait for every queued kernel, a sync per step).

Either way the batches are the same, and `rng_state()` is the generator's state just after the
last batch handed out, not after the ones queued ahead: what a checkpoint must save for a resumed
run to draw the very next batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from pianogenie.config import Config
from pianogenie.windows import Batch, TrainWindows


class BatchSource:
    def __init__(self, windows: TrainWindows, rng: np.random.Generator, cfg: Config, depth: int = 0, pin: bool = False):
        self.windows, self.rng, self.cfg, self.pin = windows, rng, cfg, pin
        self._state = rng.bit_generator.state
        self._queue: queue.Queue | None = None
        self._stop = threading.Event()
        if depth > 0:
            self._queue = queue.Queue(maxsize=depth)
            self._thread = threading.Thread(target=self._fill, name="batch-prefetch", daemon=True)
            self._thread.start()

    def _sample(self) -> tuple[Batch, Mapping[str, Any]]:
        cfg = self.cfg
        batch = self.windows.sample(
            self.rng,
            cfg.batch_size,
            cfg.data_delta_time_max,
            cfg.data_augment_time_stretch_max,
            cfg.data_augment_transpose_max,
            cfg.condition_dropout,
        )
        if self.pin:
            batch = batch.map(torch.Tensor.pin_memory)
        return batch, self.rng.bit_generator.state

    def _fill(self) -> None:
        assert self._queue is not None, "started only with a queue"
        while not self._stop.is_set():
            item: tuple[Batch, Mapping[str, Any]] | BaseException
            try:
                item = self._sample()
            except BaseException as e:  # handed to the training loop, raised there
                item = e
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    pass
            if isinstance(item, BaseException):
                return

    def next(self) -> Batch:
        if self._queue is None:
            batch, self._state = self._sample()
            return batch
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        batch, self._state = item
        return batch

    def rng_state(self) -> Mapping[str, Any]:
        """The generator's state after the last batch `next` returned."""
        return self._state

    def close(self) -> None:
        """Stop the background thread; the batches it drew ahead are dropped (rng_state() stays)."""
        if self._queue is not None:
            self._stop.set()
            self._thread.join()
