"""Running means of the per-step training scalars, kept on the training device.

Reading a loss or a gradient norm back to the host every step (`.item()`) makes the host wait for
the GPU to finish that step, so the GPU idles while Python prepares the next one. Here every step
adds its scalars to one float64 tensor on the device; `read()` brings them back once per
`summarize_frequency` steps. On the CPU the sums are the same float64 additions in the same order
as summing `.item()`s, so the logged means are identical to the bit.
"""

from __future__ import annotations

import torch


class RunningMeans:
    def __init__(self, device: torch.device):
        self.device = device
        self.keys: list[str] | None = None
        self.total: torch.Tensor | None = None
        self.count = 0
        self.nonfinite = torch.zeros((), dtype=torch.int64, device=device)  # steps with a non-finite loss

    def add(self, values: dict[str, torch.Tensor], loss: torch.Tensor | None = None) -> None:
        """Add one step's 0-d tensors; `loss`, if given, is checked for non-finite values on the device."""
        if self.keys is None:
            self.keys = list(values)
        step = torch.stack([values[k].detach() for k in self.keys]).double()  # (K,)
        self.total = step if self.total is None else self.total + step
        self.count += 1
        if loss is not None:
            self.nonfinite += (~torch.isfinite(loss.detach())).long()

    def read(self) -> dict[str, float]:
        """The means since the last read (one device sync), then start over."""
        if self.total is None:
            return {}
        assert self.keys is not None, "set with the first total"
        means = {k: v / self.count for k, v in zip(self.keys, self.total.tolist())}
        self.total, self.count = None, 0
        return means

    def any_nonfinite(self) -> bool:
        """Whether any step's loss was non-finite (one device sync)."""
        return bool(self.nonfinite.item())
