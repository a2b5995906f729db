"""The velocity head: its history state, training (joint and on frozen keys), evaluation against the
baselines, the numpy play path, decode's velocities, export, and old checkpoints without a head."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY, TINY_VELOCITY

from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.evaluate import evaluate
from pianogenie.genie import PianoGenie
from pianogenie.model import Autoencoder, load_checkpoint, load_model
from pianogenie.util import UserError
from pianogenie.velocity import DEFAULT_VELOCITY, VelocityBaselines, history_states, mean_velocity, state_inputs
from pianogenie.windows import Notes

SMALL = Config(model_rnn_dim=16, velocity_bins=16, velocity_hidden=24)


def small_model(seed: int = 0) -> Autoencoder:
    torch.manual_seed(seed)
    model = Autoencoder(SMALL).eval()
    with torch.no_grad():  # far from the identity, so that tests see the standardisation applied
        model.vel.feature_mean.uniform_(-0.5, 0.5)
        model.vel.feature_std.uniform_(0.5, 2.0)
        model.vel.output.weight.mul_(5)
    return model


def save(model: Autoencoder, cfg: Config, path: Path, drop_velocity: bool = False) -> Path:
    sd = {k: v for k, v in model.state_dict().items() if not (drop_velocity and k.startswith("vel."))}
    torch.save({"model": sd, "cfg": dataclasses.asdict(cfg)}, path)
    return path


def test_history_state_is_lags_and_moving_averages_from_each_performance_start():
    v = np.array([[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], [5, 6, 7, 0, 0, 0, 0, 0, 0, 0]], float)
    lengths = np.array([10, 3])
    k = np.full(13, 44)
    s = history_states(lengths, state_inputs(np.concatenate([v[0], v[1, :3]]), k))  # (13, S)
    assert s.shape[0] == 13
    np.testing.assert_allclose(s[0], 0)  # nothing before a performance's first note
    np.testing.assert_allclose(s[10], 0)
    np.testing.assert_allclose(s[1:10, 0] * 127, v[0, :9], rtol=1e-6)  # lag 1 = previous velocity
    np.testing.assert_allclose(s[9, :8].mean() * 127, v[0, 1:9].mean(), rtol=1e-6)  # lags 1..8: the mean-of-8
    np.testing.assert_allclose(s[12, 0] * 127, 6, rtol=1e-6)  # the second performance's own history
    np.testing.assert_allclose(s[12, 1] * 127, 5, rtol=1e-6)
    a = 1 / 16  # first moving average: the recurrence, note by note
    m = 0.0
    for x in v[0, :9] / 127:
        m += a * (x - m)
    np.testing.assert_allclose(s[9, 8], m, rtol=1e-5)


def test_transposed_windows_get_the_states_of_transposed_keys(velocity_notes_file):
    from pianogenie.notes_file import load_notes

    perfs = load_notes(velocity_notes_file)["train"]
    notes = Notes(perfs, "train", velocity=True)
    idx, mask = notes.index(np.array([5, 70]), np.array([16, 16]), 16)
    batch = notes.gather(idx, mask, 1.0, transpose=np.array([3, -2]))
    shifted = [np.asarray(p, float) for p in perfs]
    expected = []
    for shift, (start, perf) in zip([3, -2], [(5, 0), (70 - len(perfs[0]), 1)]):
        p = shifted[perf].copy()
        p[:, 2] += shift
        expected.append(history_states(np.array([len(p)]), state_inputs(p[:, 3], p[:, 2]))[start : start + 16])
    np.testing.assert_allclose(batch.s.numpy(), np.stack(expected), atol=1e-5)
    assert batch.v.tolist()[0] == notes.velocities[5:21].tolist()


def test_numpy_press_velocities_equal_the_torch_head():
    model = small_model()
    genie = PianoGenie.from_model(model, SMALL, seed=0)
    rng = np.random.default_rng(0)
    times = np.cumsum(rng.choice([0.0, 0.005, 0.1, 0.3, 2.0], 40))
    buttons = rng.integers(0, 8, 40)
    keys, vels, vlogits = [], [], []
    for t, b in zip(times, buttons):
        keys.append(genie.press(float(t), int(b), 0.5))
        vels.append(genie.velocity)
        vlogits.append(genie.velocity_logits(keys[-1]))
    k = torch.tensor(keys)[None]
    dt = torch.tensor(np.clip(np.diff(times, prepend=-np.inf), 0, 1), dtype=torch.float32)[None]
    b = torch.tensor(buttons * 2 / 7 - 1, dtype=torch.float32)[None]
    s = torch.from_numpy(history_states(np.array([40]), state_inputs(np.array(vels), np.array(keys))))[None]
    with torch.no_grad():
        _, _, h = model.dec(torch.cat([torch.tensor([[SOS]]), k[:, :-1]], 1), dt, b, return_hidden=True)
        ref = model.vel(h, k, s, dt, b)[0]
    np.testing.assert_allclose(np.stack(vlogits), ref.numpy(), atol=2e-4)
    assert vels == mean_velocity(ref).tolist()
    assert len(set(vels)) > 3
    # A given velocity is played and heard by the history; the key path ignores velocities.
    a, b2 = PianoGenie.from_model(model, SMALL, seed=1), PianoGenie.from_model(model, SMALL, seed=1)
    for i in range(5):
        assert a.press(0.1 * i, i, 0.0, velocity=127) == b2.press(0.1 * i, i, 0.0)
    assert a.velocity == 127 and b2.velocity != 127
    a.press(0.6, 3, 0.0)
    b2.press(0.6, 3, 0.0)
    assert a.velocity != b2.velocity
    with pytest.raises(ValueError, match="velocity"):
        a.press(1.0, 0, velocity=0)
    # keys= (issue 12) and velocity= together: the key among the allowed ones, the velocity given;
    # look_ahead leaves the velocity history as it was
    allowed = [40, 43, 47]
    ahead = a.look_ahead(1.2, allowed)
    twin_state = a.net._buf.copy()
    assert a.look_ahead(1.2, allowed) == ahead and np.array_equal(a.net._buf, twin_state)
    assert a.press(1.2, 5, 0.0, allowed, velocity=33) == ahead[5] and a.velocity == 33
    assert a.press(1.4, 2, 0.9, keys=allowed) in allowed and 1 <= a.velocity <= 127


@pytest.mark.filterwarnings("ignore:overflow encountered in exp", "ignore:invalid value encountered in dot")
def test_press_shortcut_equals_the_plain_head_for_every_key():
    # press evaluates the head by per-key tables (max against -r_k, exp(T_k)-weighted moments);
    # velocity_logits and _plain_velocity by the plain relu(pre + r_k) and W_o product: the same mean for
    # every key (forced by keys=[k]) and state
    for scale in (1.0, 1e4):  # 1e4: logits beyond float32 exp, where the shortcut falls back
        model = small_model()
        with torch.no_grad():
            model.vel.output.weight.mul_(scale)
        genie = PianoGenie.from_model(model, SMALL, seed=0)
        for k in range(NUM_KEYS):
            assert genie.press(0.05 * k + 0.3 * (k % 3 == 0), k % 8, 0.5, keys=[k]) == k
            pressed, moments = genie.velocity, genie.net._vel_mean.copy()
            assert pressed == genie.net._plain_velocity(k)
            if scale == 1.0:
                plain = genie.net._vel_mean
                assert moments[0] / moments[1] == pytest.approx(plain[0] / plain[1], rel=1e-5)
        assert len({genie.net._plain_velocity(k) for k in range(NUM_KEYS)}) > 3  # the keys' velocities differ


def test_mean_velocity_interpolates_within_the_bin():
    logits = torch.full((32,), -1e9)
    logits[20] = 0.0  # all mass on velocities 80..83
    assert mean_velocity(logits).item() == 82
    assert mean_velocity(torch.zeros(32)).item() == 64


def test_checkpoints_without_or_with_misfit_velocity_weights(tmp_path):
    model = small_model()
    # config says velocity, weights have none: loads and plays at the fixed velocity
    plain, cfg = load_model(save(model, SMALL, tmp_path / "novel.pt", drop_velocity=True))
    assert not hasattr(plain, "vel") and cfg.velocity_bins == 0
    genie = PianoGenie.load(tmp_path / "novel.pt")
    genie.press(0.0, 3)
    assert not genie.has_velocity and genie.velocity == DEFAULT_VELOCITY
    # a head whose shape does not match its config is refused, naming the file
    bad = save(model, dataclasses.replace(SMALL, velocity_hidden=25), tmp_path / "misfit.pt")
    with pytest.raises(UserError, match=r"misfit\.pt.*vel\.hidden\.weight"):
        load_model(bad)
    sd = model.state_dict()
    torch.save({"model": sd, "cfg": dataclasses.asdict(dataclasses.replace(SMALL, velocity_bins=0))}, tmp_path / "x.pt")
    with pytest.raises(UserError, match=r"x\.pt holds velocity weights"):
        load_model(tmp_path / "x.pt")


@pytest.mark.slow
def test_train_velocity_on_frozen_keys_then_jointly(velocity_notes_file, tmp_path, capsys):
    base = tmp_path / "keys"
    assert (
        main(
            [
                "train",
                "--data",
                str(velocity_notes_file),
                "--run-dir",
                str(base),
                *TINY,
                "--velocity_bins=0",
                "--max_num_steps=4",
                "--workers=1",
            ]
        )
        == 0
    )
    frozen = tmp_path / "frozen"
    assert (
        main(
            [
                "train",
                "--data",
                str(velocity_notes_file),
                "--run-dir",
                str(frozen),
                *TINY_VELOCITY,
                "--max_num_steps=10",
                "--lr=1e-2",
                "--train_keys=false",
                "--init",
                str(base / "last.pt"),
                "--workers=2",
            ]
        )
        == 0
    )
    before, after = load_checkpoint(base / "last.pt")["model"], load_checkpoint(frozen / "last.pt")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before)  # the key path is exactly --init's
    assert any(k.startswith("vel.") for k in after)
    rows = [json.loads(line) for line in (frozen / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss_velocity"] for r in rows if r["split"] == "train"]
    assert losses[-1] < losses[0]
    val = [r for r in rows if r["split"] == "validation"][-1]
    for key in [
        "velocity_mae",
        "velocity_nll",
        "velocity_mae_baseline_constant",
        "velocity_mae_baseline_previous",
        "velocity_mae_baseline_key",
        "velocity_mae_baseline_mean8",
    ]:
        assert np.isfinite(val[key]), key
    joint = tmp_path / "joint"
    assert (
        main(
            [
                "train",
                "--data",
                str(velocity_notes_file),
                "--run-dir",
                str(joint),
                *TINY_VELOCITY,
                "--max_num_steps=3",
                "--init",
                str(base / "last.pt"),
                "--workers=1",
            ]
        )
        == 0
    )
    after = load_checkpoint(joint / "last.pt")["model"]
    assert not torch.equal(before["dec.output.weight"], after["dec.output.weight"])
    capsys.readouterr()
    assert (
        main(
            [
                "train",
                "--data",
                str(velocity_notes_file),
                "--run-dir",
                str(tmp_path / "bad"),
                *TINY_VELOCITY,
                "--train_keys=false",
            ]
        )
        == 2
    )
    assert "--init" in capsys.readouterr().err


def test_evaluate_reports_velocity_against_baselines_on_notes_after_the_eighth():
    # Constant velocity per performance: the previous-note and mean-of-8 baselines are exact there.
    perfs = [np.array([[0.1 * i, 0.1, 40 + i % 5, v] for i in range(30)]) for v in (30, 90)]
    model = small_model()
    m = evaluate(model, perfs, dataclasses.replace(SMALL, seq_len=10), velocity_baselines=VelocityBaselines(perfs))
    assert m["velocity_num_notes"] == 2 * (2 + 10 + 10)  # 3 windows of 10 each; each performance's first 8 skipped
    assert m["velocity_mae_baseline_previous"] == 0 and m["velocity_mae_baseline_mean8"] == 0
    assert m["velocity_mae_baseline_constant"] == pytest.approx(30)  # median 60 (between 30 and 90)
    assert m["velocity_mae"] > 0 and m["velocity_nll"] > 0
    assert "velocity_mae" not in evaluate(Autoencoder(Config(model_rnn_dim=16)), perfs, Config(model_rnn_dim=16))


def test_decode_writes_model_velocities_unless_given_or_forced(tmp_path, capsys):
    import pretty_midi

    from tests.test_decode import write_midi_input

    ckpt = save(small_model(), SMALL, tmp_path / "vel.pt")
    rows = [{"time": 0.2 * i, "button": i % 8} for i in range(16)]
    rows[3]["velocity"] = 111
    src = tmp_path / "p.json"
    src.write_text(json.dumps(rows))

    def velocities(*opts, source=src):
        out = tmp_path / "o.mid"
        assert main(["decode", str(source), "-o", str(out), "--model", str(ckpt), "--seed", "0", *opts]) == 0
        return [
            n.velocity for n in sorted(pretty_midi.PrettyMIDI(str(out)).instruments[0].notes, key=lambda n: n.start)
        ]

    model_v = velocities()
    assert model_v[3] == 111 and len(set(model_v)) > 2
    genie = PianoGenie.load(ckpt, seed=0)
    from pianogenie.decode import decode_with_velocities, read_presses

    _, expected = decode_with_velocities(read_presses(src), genie, 0.25)
    assert model_v == expected.tolist()
    assert velocities("--velocity", "33") == [33] * 16
    assert velocities("--genie-velocity")[3] != 111
    midi_in = write_midi_input(tmp_path / "ctrl.mid", [(60 + i % 3, 0.3 * i, 0.3 * i + 0.2, 20 + i) for i in range(6)])
    assert velocities(source=midi_in) == [20 + i for i in range(6)]  # a controller's velocities are kept
    assert velocities("--genie-velocity", source=midi_in) != [20 + i for i in range(6)]
    capsys.readouterr()
    out = tmp_path / "o.mid"
    assert main(["decode", str(src), "-o", str(out), "--model", str(ckpt), "--velocity", "3", "--genie-velocity"]) == 2
    assert "exclude" in capsys.readouterr().err


def test_export_carries_velocity_weights_and_golden_logits(tmp_path):
    from pianogenie.export import export

    ckpt = save(small_model(), SMALL, tmp_path / "vel.pt")
    golden = export(ckpt, tmp_path / "out")
    names = [w["name"] for w in json.loads((tmp_path / "out" / "weights_manifest.json").read_text())[0]["weights"]]
    assert "vel.hidden.weight" in names and "vel.state_transition" in names and names[0].startswith("dec.")
    logits = np.array(golden["output_velocity_logits"])
    assert logits.shape == (128, 16)
    assert np.abs(logits - logits[:, :1]).sum() > 100  # far from flat: the JS check against it can fail
    assert golden["input_velocities"] != [golden["input_velocities"][0]] * 128
    assert golden["output_velocities"] == mean_velocity(torch.tensor(logits)).tolist()
    # a model without a velocity head exports none
    plain = save(small_model(), SMALL, tmp_path / "plain.pt", drop_velocity=True)
    assert "output_velocity_logits" not in export(plain, tmp_path / "out2")


def test_validation_loss_is_the_training_objective_at_that_step(velocity_notes_file):
    """With a velocity head and the contour schedule, validation's `loss` is the training total of
    the same batch at the same step (velocity term included, contour at the weight then in force)."""
    from pianogenie.notes_file import load_notes
    from pianogenie.train import Trainer
    from pianogenie.windows import eval_windows

    cfg = SMALL.replace(
        seq_len=64,
        batch_size=4,
        max_num_steps=10,
        loss_contour_final_from=0.5,
        loss_contour_multiplier=1.0,
        loss_contour_multiplier_final=3.0,
        loss_velocity_multiplier=2.0,
    )
    data = load_notes(velocity_notes_file)
    data["validation"] = data["validation"][:1]  # 40 notes: one evaluation window, one batch
    trainer = Trainer(cfg, data, velocity_notes_file.parent / "run", device="cpu", progress=False)
    notes = Notes(data["validation"], "validation", velocity=True)
    starts, lengths = eval_windows(notes, cfg.seq_len, "all")
    assert len(starts) == 1
    batch = notes.gather(*notes.index(starts, lengths, cfg.seq_len), cfg.data_delta_time_max)
    for step in (2, 7):  # before and after the switch to the final contour weight
        trainer.step = step
        train_total = trainer.forward_backward(batch)["loss"].item()
        val = trainer.validate()
        assert val["loss"] == pytest.approx(train_total, rel=1e-5)
        assert val["loss_velocity"] > 0
