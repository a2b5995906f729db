"""Training: config handling, windows and augmentation, sharded gradients, checkpoints, resume, DDP."""

from __future__ import annotations

import gzip
import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, performance

from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS
from pianogenie.model import load_checkpoint
from pianogenie.notes_file import load_notes
from pianogenie.train import Trainer, lr_at
from pianogenie.util import UserError
from pianogenie.windows import Notes, TrainWindows


def train_cli(notes_file: Path, run_dir: Path, *extra: str) -> int:
    return main(["train", "--data", str(notes_file), "--run-dir", str(run_dir), *TINY, *extra])


def test_config_overrides_unknown_keys_and_types(tmp_path):
    cfg = Config().override(["--batch_size=7", "lr=0.001", "--data_augment_time_stretch_max=0"])
    assert (cfg.batch_size, cfg.lr, cfg.data_augment_time_stretch_max) == (7, 0.001, 0.0)
    with pytest.raises(UserError, match=r"unknown config key.*valid keys: seed, num_buttons"):
        Config().override(["--batch_sise=7"])
    with pytest.raises(UserError, match="expected int"):
        Config().override(["--batch_size=abc"])
    with pytest.raises(UserError, match="expected int"):
        Config().override(["--batch_size=1.5"])
    with pytest.raises(UserError, match="invalid config"):
        Config().override(["--batch_size=0"])
    cfg.save(tmp_path / "cfg.json")
    assert Config.load(tmp_path / "cfg.json") == cfg


def test_lr_schedule_warms_up_then_decays():
    cfg = Config(lr=1e-3, lr_warmup_steps=10, max_num_steps=110, lr_min_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(111)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a <= b for a, b in itertools.pairwise(lrs[:10]))  # rising
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))  # then falling
    assert lrs[110] == pytest.approx(1e-4)


def test_contour_weight_switches_at_its_fraction_of_the_run(notes_file, tmp_path):
    run = tmp_path / "run"
    assert (
        train_cli(
            notes_file,
            run,
            "--max_num_steps=10",
            "--summarize_frequency=1",
            "--loss_contour_final_from=0.5",
            "--loss_contour_multiplier_final=3",
        )
        == 0
    )
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    weights = {}
    for r in rows:
        if r["split"] == "train":  # the row after step i covers step i - 1
            weights[r["step"] - 1] = (r["loss"] - r["loss_recons"] - r["loss_margin"]) / r["loss_contour"]
    assert sorted(weights) == list(range(10))
    assert [round(weights[i], 4) for i in range(10)] == [1.0] * 5 + [3.0] * 5
    with pytest.raises(UserError, match="loss_contour_final_from must be in"):
        Config(loss_contour_final_from=1.5).validated()


def test_windows_transpose_without_clamping_and_use_short_performances():
    rng = np.random.default_rng(0)
    perfs = [
        np.array(performance(rng, 50, 0, 5)),
        np.array(performance(rng, 50, 83, 87)),
        np.array(performance(rng, 5)),
    ]
    windows = TrainWindows(Notes(perfs), seq_len=16)
    shifts = set()
    for seed in range(40):
        # same seed: same windows and stretches, with and without transposition
        plain = windows.sample(np.random.default_rng(seed), 8, 1.0, stretch_max=0.05, transpose_max=0)
        moved = windows.sample(np.random.default_rng(seed), 8, 1.0, stretch_max=0.05, transpose_max=6)
        assert torch.equal(plain.t, moved.t) and torch.equal(plain.lengths, moved.lengths)
        diff = (moved.k - plain.k).numpy()
        assert np.all(diff == diff[:, :1])  # a pure shift per window: nothing clamped into repeats
        assert moved.k.min() >= 0 and moved.k.max() < NUM_KEYS
        assert np.all(np.abs(diff) <= 6)
        shifts.update(diff[:, 0].tolist())
        assert set(plain.lengths.tolist()) <= {16, 5}
        assert torch.all(plain.mask.sum(1) == plain.lengths)
        assert torch.all(plain.t[:, 0] == 1.0) and torch.all(plain.t >= 0) and torch.all(plain.t <= 1.0)
    assert len(shifts) > 5  # and it does transpose
    assert any(5 in windows.sample(np.random.default_rng(s), 8, 1.0).lengths.tolist() for s in range(20))


def test_sharded_gradients_equal_whole_batch_gradients(notes_file, tmp_path):
    data = load_notes(notes_file)
    cfg = Config(model_rnn_dim=16, seq_len=16, batch_size=6)
    grads = []
    for workers in (1, 2, 3):
        trainer = Trainer(cfg, data, tmp_path / f"w{workers}", progress=False, workers=workers)
        batch = trainer.windows.sample(np.random.default_rng(1), cfg.batch_size, 1.0)
        batch.lengths[0] = 5  # one short row: normalising by the whole batch's counts matters
        batch.mask[0, 5:] = False
        terms = trainer.forward_backward(batch)
        grads.append((terms["loss"].item(), [p.grad.clone() for p in trainer.params]))
    for loss, g in grads[1:]:
        assert loss == pytest.approx(grads[0][0], rel=1e-5)
        for a, b in zip(g, grads[0][1]):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


@pytest.mark.slow
def test_train_writes_checkpoints_logs_and_learns(notes_file, tmp_path):
    run = tmp_path / "run"
    assert train_cli(notes_file, run, "--max_num_steps=30", "--lr=0.01") == 0
    for name in ("cfg.json", "best.pt", "last.pt", "metrics.jsonl"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").iterdir())
    assert Config.load(run / "cfg.json").max_num_steps == 30
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r["split"] == "train"]
    val_rows = [r for r in rows if r["split"] == "validation"]
    assert {"loss", "loss_recons", "loss_margin", "loss_contour", "lr"} <= set(train_rows[0])
    assert [r["step"] for r in val_rows] == [0, 5, 10, 15, 20, 25, 30]
    assert train_rows[-1]["loss_recons"] < train_rows[0]["loss_recons"] - 0.2  # it learns
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 30 and {"model", "optimizer", "scheduler", "rng", "cfg"} <= set(ckpt)
    best = load_checkpoint(run / "best.pt")
    assert best["best_val_loss"] == pytest.approx(min(r["cross_entropy"] for r in val_rows))
    # a run dir that already holds a run is not silently overwritten
    assert train_cli(notes_file, run, "--max_num_steps=30") == 2


@pytest.mark.slow
def test_interrupted_and_resumed_run_ends_with_the_same_weights(notes_file, tmp_path, monkeypatch, capsys):
    args = ["--max_num_steps=12", "--workers", "2"]
    assert train_cli(notes_file, tmp_path / "straight", *args) == 0

    calls = {"n": 0}
    original = TrainWindows.sample

    def interrupting_sample(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 8:  # Ctrl-C in the middle of step 8
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *a, **kw)

    monkeypatch.setattr(TrainWindows, "sample", interrupting_sample)
    assert train_cli(notes_file, tmp_path / "resumed", *args) == 130  # stopped, not finished: 128 + SIGINT
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["step"] == 8
    assert "resume with --resume" in capsys.readouterr().err
    monkeypatch.setattr(TrainWindows, "sample", original)
    assert (
        main(["train", "--data", str(notes_file), "--run-dir", str(tmp_path / "resumed"), "--resume", "--workers", "2"])
        == 0
    )

    a = load_checkpoint(tmp_path / "straight" / "last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "last.pt")
    assert a["step"] == b["step"] == 12
    for name, value in a["model"].items():
        assert torch.equal(value, b["model"][name]), name


def test_a_finished_run_can_be_extended_on_resume_but_not_changed(notes_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(notes_file, run, "--max_num_steps=4") == 0
    assert train_cli(notes_file, run, "--resume", "--max_num_steps=7") == 0
    assert load_checkpoint(run / "last.pt")["step"] == 7
    assert Config.load(run / "cfg.json").max_num_steps == 7
    assert "max_num_steps=7 (was 4)" in capsys.readouterr().err
    assert train_cli(notes_file, run, "--resume", "--max_num_steps=8", "--lr=0.01") == 2
    assert "only eval_frequency, max_num_steps, summarize_frequency may change" in capsys.readouterr().err
    assert load_checkpoint(run / "last.pt")["step"] == 7


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_good_checkpoint(notes_file, tmp_path, monkeypatch, capsys):
    import pianogenie.train as train_module

    real_losses = train_module.losses
    calls = {"n": 0}

    def poisoned(*a, **kw):
        terms, hat_k, e = real_losses(*a, **kw)
        calls["n"] += 1
        if calls["n"] > 9:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms, hat_k, e

    monkeypatch.setattr(train_module, "losses", poisoned)
    assert train_cli(notes_file, tmp_path / "run", "--max_num_steps=20", "--workers", "1") == 2
    err = capsys.readouterr().err
    assert "loss became nan" in err and "Traceback" not in err
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


@pytest.mark.parametrize("problem", ["missing", "garbage", "unknown_key", "wrong_type", "empty_train"])
def test_bad_input_is_one_clear_message(problem, notes_file, tmp_path, capsys):
    data, extra = notes_file, []
    if problem == "missing":
        data = tmp_path / "nope.json.gz"
    elif problem == "garbage":
        data = tmp_path / "garbage.json.gz"
        data.write_bytes(b"not gzip at all")
    elif problem == "unknown_key":
        extra = ["--no_such_key=1"]
    elif problem == "wrong_type":
        extra = ["--lr=fast"]
    elif problem == "empty_train":
        data = tmp_path / "empty.json.gz"
        data.write_bytes(gzip.compress(json.dumps({"train": [], "validation": []}).encode()))
    assert main(["train", "--data", str(data), "--run-dir", str(tmp_path / "run"), *extra]) == 2
    err = capsys.readouterr().err
    assert "pianogenie train: error:" in err and "Traceback" not in err


@pytest.mark.slow
def test_torchrun_two_cpu_processes(notes_file, tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "pianogenie",
        "train",
        "--data",
        str(notes_file),
        "--run-dir",
        str(run),
        *TINY,
        "--max_num_steps=6",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["step"] == 6
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    keys = [(r["step"], r["split"]) for r in rows]
    assert len(keys) == len(set(keys)) and (6, "validation") in keys  # written once, by rank 0


def test_fine_tune_from_the_tutorial_checkpoint(reference_dir, notes_file, tmp_path):
    ref = reference_dir / "pytorch" / "model.pt"
    run = tmp_path / "ft"
    args = [
        "train",
        "--data",
        str(notes_file),
        "--run-dir",
        str(run),
        "--init",
        str(ref),
        "--seq_len=16",
        "--batch_size=4",
        "--max_num_steps=2",
        "--eval_frequency=100",
    ]
    assert main(args) == 0
    # the step-0 evaluation scores exactly the tutorial's weights
    from pianogenie.evaluate import evaluate
    from pianogenie.model import load_model

    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["split"] == "validation"
    model, _ = load_model(ref)
    expected = evaluate(model, load_notes(notes_file)["validation"], Config.load(run / "cfg.json"))
    assert first["cross_entropy"] == pytest.approx(expected["cross_entropy"], rel=1e-6)
    assert load_checkpoint(run / "last.pt")["step"] == 2
    assert main([*args[:4], str(tmp_path / "bad"), *args[5:], "--model_rnn_dim=16"]) == 2


def _nccl_stand_in(store, rank, world_size, timeout):
    import torch.distributed as dist

    return dist.ProcessGroupGloo(store, rank, world_size, timeout)


def test_process_group_for_an_accelerator_serves_cpu_collectives(tmp_path):
    """NCCL refuses CPU tensors; a stand-in registered for "cuda" only does the same, and the group
    `backend_for("cuda")` builds routes the trainer's CPU collectives to gloo instead."""
    import torch.distributed as dist

    from pianogenie import distributed

    assert distributed.backend_for("cpu") == "gloo"
    assert distributed.backend_for("cuda") == "cpu:gloo,cuda:nccl"
    dist.Backend.register_backend("nccl_stand_in", _nccl_stand_in, devices=["cuda"])
    for i, (backend, works) in enumerate(
        [
            ("nccl_stand_in", False),  # the old group for a GPU run
            (distributed.backend_for("cuda", "nccl_stand_in"), True),
        ]
    ):
        dist.init_process_group(backend, init_method=f"file://{tmp_path}/store{i}", rank=0, world_size=1)
        try:
            if works:
                assert distributed.any_rank(True) and not distributed.any_rank(False)
                distributed.barrier()
            else:
                with pytest.raises(RuntimeError, match="No backend type associated with device type cpu"):
                    distributed.any_rank(False)
        finally:
            dist.destroy_process_group()


@pytest.mark.slow
def test_torchrun_in_a_gpu_style_process_group_stops_all_ranks(notes_file, tmp_path):
    """The trainer's distributed code (DDP, barrier, stop flag) under the process group a GPU run
    builds, NCCL played by a CPU-refusing stand-in; a signal reaching rank 1 alone stops both."""
    run = tmp_path / "ddp"
    worker = Path(__file__).with_name("ddp_worker.py")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(worker),
        "4",
        "train",
        "--data",
        str(notes_file),
        "--run-dir",
        str(run),
        *TINY,
        "--max_num_steps=50",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert "No backend type" not in proc.stderr, proc.stderr[-3000:]
    # no traceback from our code in any rank; the signalled rank exits as Ctrl-C does (130), which
    # torchrun reports as that rank's failure (its own traceback, not ours)
    assert f'File "{Path(__file__).parents[1] / "pianogenie"}' not in proc.stderr, proc.stderr[-3000:]
    assert "exitcode: 130) local_rank: 1" in proc.stderr, proc.stderr[-3000:]
    assert "stopped at step 4" in proc.stderr
    assert load_checkpoint(run / "last.pt")["step"] == 4


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--seed=-1"], "seed=-1 must be an integer in 0.."),
        (["--seed=1e30"], "seed=1000000000000000019884624838656 must be an integer"),
        (["--data_delta_time_max=Infinity"], "data_delta_time_max=inf must be a finite number"),
        (["--lr=NaN"], "lr=nan must be a finite number"),
        (["--loss_contour_multiplier=NaN"], "loss_contour_multiplier=nan must be a finite number"),
        (["--loss_margin_multiplier=-1"], "loss_margin_multiplier=-1.0 must be >= 0"),
        (["--grad_clip_norm=-1"], "grad_clip_norm=-1.0 must be > 0"),
        (["--num_buttons=0"], "num_buttons=0 must be >= 1"),
        (["--device", "foo"], "--device 'foo' is not a torch device"),
        (["--device", "cuda:99"] if torch.cuda.is_available() else ["--device", "cuda"], "CUDA"),
    ],
)
def test_bad_flags_and_config_values_are_one_line(notes_file, tmp_path, capsys, extra, words):
    assert train_cli(notes_file, tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie train: error: ") and words in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_bad_config_file_and_run_dir_are_one_line(notes_file, tmp_path, capsys):
    (tmp_path / "cfgdir").mkdir()
    assert train_cli(notes_file, tmp_path / "run", "--config", str(tmp_path / "cfgdir")) == 2
    assert "is a folder" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text('{"lr": -1}')
    assert train_cli(notes_file, tmp_path / "run", "--config", str(tmp_path / "bad.json")) == 2
    assert f"config file {tmp_path / 'bad.json'}: invalid config: lr" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    for run_dir in [tmp_path / "afile", tmp_path / "afile" / "sub", notes_file.parent]:
        assert train_cli(notes_file, run_dir) == 2
        err = capsys.readouterr().err
        assert err.startswith("pianogenie train: error: ") and "--run-dir" in err and len(err.splitlines()) == 1, err
    other = tmp_path / "other"
    other.mkdir()
    (other / "cfg.json").write_text("my own notes")
    assert train_cli(notes_file, other) == 2
    assert "refusing to write into it" in capsys.readouterr().err and (other / "cfg.json").read_text() == "my own notes"


def test_resume_from_weights_only_checkpoint_is_one_line(notes_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(notes_file, run, "--max_num_steps=2") == 0
    out = json.loads(capsys.readouterr().out)  # plain JSON: no Infinity
    assert out["step"] == 2
    ckpt = load_checkpoint(run / "last.pt")
    del ckpt["optimizer"]
    torch.save(ckpt, run / "last.pt")
    assert train_cli(notes_file, run, "--resume", "--max_num_steps=3") == 2
    err = capsys.readouterr().err
    assert "has no optimizer state" in err and "--init" in err and len(err.splitlines()) == 1


def test_printed_result_is_json_without_infinity(tmp_path, capsys):
    path = tmp_path / "train_only.json.gz"
    rng = np.random.default_rng(0)
    path.write_bytes(gzip.compress(json.dumps({"train": [performance(rng, 60)]}).encode()))
    assert train_cli(path, tmp_path / "run", "--max_num_steps=2") == 0
    out = capsys.readouterr().out
    assert "Infinity" not in out and json.loads(out)["best_val_loss"] is None


def test_evaluate_out_is_checked_before_the_work(notes_file, tmp_path, capsys):
    run = tmp_path / "run"
    assert train_cli(notes_file, run, "--max_num_steps=1") == 0
    capsys.readouterr()
    evaluate = ["evaluate", str(run), "--data", str(notes_file), "--split", "validation", "--out"]
    (tmp_path / "f").write_text("x")
    for out, words in [
        (notes_file, "is also the input"),
        (run / "best.pt", "refusing to overwrite"),
        (tmp_path, "is a folder"),
        (tmp_path / "f" / "r.json", "is not a folder"),
        (tmp_path / "f", "refusing to overwrite"),
    ]:
        assert main([*evaluate, str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pianogenie evaluate: error: --out") or "--out" in err, err
        assert words in err and len(err.splitlines()) == 1, err
    assert main([*evaluate, str(tmp_path / "r.json")]) == 0
    assert main([*evaluate, str(tmp_path / "r.json")]) == 0  # its own result: replaced
    assert json.loads((tmp_path / "r.json").read_text())["split"] == "validation"


def test_sigterm_during_evaluation_stops_at_once_with_143(notes_file, tmp_path, monkeypatch, capsys):
    import time

    calls = {"n": 0}
    original = Trainer.validate

    def slow_validate(self):
        calls["n"] += 1
        if calls["n"] == 2:  # the second evaluation: a long one, interrupted
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)
            calls["waited_out"] = True  # not reached: the signal ends the evaluation at once
        return original(self)

    monkeypatch.setattr(Trainer, "validate", slow_validate)
    assert train_cli(notes_file, tmp_path / "run", "--max_num_steps=8", "--eval_frequency=4") == 143
    assert calls["n"] == 2 and "waited_out" not in calls
    err = capsys.readouterr().err
    assert "pianogenie train: interrupted (SIGTERM)" in err and "Traceback" not in err
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 0  # the last consistent checkpoint
    assert [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")] == []


def test_every_attribute_of_a_trainer_is_set_by_its_constructor(notes_file, tmp_path):
    cfg = Config(
        model_rnn_dim=16,
        seq_len=16,
        batch_size=4,
        max_num_steps=3,
        eval_frequency=2,
        summarize_frequency=1,
        lr_warmup_steps=1,
    )
    trainer = Trainer(cfg, load_notes(notes_file), tmp_path / "run", device="cpu", progress=False)
    before = set(vars(trainer))
    assert trainer.train()["step"] == 3
    assert set(vars(trainer)) == before  # train() advances the state; it never creates any
