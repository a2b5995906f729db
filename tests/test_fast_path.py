"""The accelerator fast path (batches drawn ahead on a thread, loss terms summed on the device,
non-finite losses caught at the next summary), forced on the CPU: same results as the plain path."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

from pianogenie.config import Config
from pianogenie.meters import RunningMeans
from pianogenie.model import load_checkpoint
from pianogenie.notes_file import load_notes
from pianogenie.train import Trainer
from pianogenie.util import UserError

CFG = Config(
    model_rnn_dim=16,
    seq_len=16,
    batch_size=4,
    eval_frequency=5,
    summarize_frequency=2,
    lr_warmup_steps=2,
    lr=0.01,
    max_num_steps=12,
)


def train(notes, run_dir, fast_path: bool, cfg: Config = CFG) -> list[dict]:
    Trainer(cfg, load_notes(notes), run_dir, progress=False, fast_path=fast_path).train()
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def metrics_without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in ("time", "steps_per_second")} for r in rows]


def test_fast_path_trains_exactly_as_the_plain_path(notes_file, tmp_path):
    plain = train(notes_file, tmp_path / "plain", fast_path=False)
    fast = train(notes_file, tmp_path / "fast", fast_path=True)
    assert metrics_without_time(fast) == metrics_without_time(plain)  # every logged mean, to the bit
    a, b = load_checkpoint(tmp_path / "plain" / "last.pt"), load_checkpoint(tmp_path / "fast" / "last.pt")
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name
    assert a["rng"]["numpy"] == b["rng"]["numpy"]  # the batches drawn ahead are not counted


@pytest.mark.slow
def test_fast_path_resumes_bit_for_bit(notes_file, tmp_path, monkeypatch):
    train(notes_file, tmp_path / "straight", fast_path=True)
    original = Trainer.train_step

    def signal_during_step_8(self, batch):
        if self.step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, batch)

    monkeypatch.setattr(Trainer, "train_step", signal_during_step_8)
    train(notes_file, tmp_path / "resumed", fast_path=True)
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 8
    monkeypatch.setattr(Trainer, "train_step", original)
    Trainer(CFG, load_notes(notes_file), tmp_path / "resumed", resume=True, progress=False, fast_path=True).train()
    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["step"] == b["step"] == 12
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_fast_path_stops_on_a_non_finite_loss_before_saving_it(notes_file, tmp_path, monkeypatch):
    import pianogenie.train as train_module

    real_losses = train_module.losses
    calls = {"n": 0}

    def poisoned(*a, **kw):
        terms, hat_k, e = real_losses(*a, **kw)
        calls["n"] += 1
        if calls["n"] == 7:  # the loss of step 7 only
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms, hat_k, e

    monkeypatch.setattr(train_module, "losses", poisoned)
    with pytest.raises(UserError, match="non-finite between step 6 and step 8"):
        train(notes_file, tmp_path / "run", fast_path=True)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["step"] == 5 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_running_means_read_once_and_restart():
    meters = RunningMeans(torch.device("cpu"))
    for loss in (1.0, 2.0, 4.5):
        meters.add({"loss": torch.tensor(loss), "g": torch.tensor(2 * loss)}, torch.tensor(loss))
    assert meters.read() == {"loss": 2.5, "g": 5.0} and not meters.any_nonfinite()
    meters.add({"loss": torch.tensor(float("inf")), "g": torch.tensor(0.0)}, torch.tensor(float("inf")))
    assert meters.read() == {"loss": float("inf"), "g": 0.0} and meters.any_nonfinite()
    assert meters.read() == {}
