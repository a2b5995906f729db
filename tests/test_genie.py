"""The numpy play session: same logits as torch's decoder step, training-time inputs, sampling rules."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import a_performance, random_checkpoint

from pianogenie import genie as genie_mod
from pianogenie.constants import LOWEST_PITCH, NUM_KEYS, SOS
from pianogenie.genie import PianoGenie
from pianogenie.inputs import delta_times
from pianogenie.model import Autoencoder, load_model
from pianogenie.util import UserError


def torch_logits(model: Autoencoder, k_m1: list[int], dt: list[float], b: list[int]) -> np.ndarray:
    """Step-by-step torch logits carrying state: (N, 88)."""
    state, out = None, []
    for k, t, bi in zip(k_m1, dt, b):
        logits, state = model.dec.step(
            torch.tensor([k]),
            torch.tensor([t], dtype=torch.float32),
            model.quant.discrete_to_real(torch.tensor([bi])),
            state,
        )
        out.append(logits[0].numpy())
    return np.stack(out)


def check_press_matches_torch(path, n=64):
    """Presses at temperature 0 pick the argmax of torch's logits for the same training-time inputs."""
    model, cfg = load_model(path)
    genie = PianoGenie.load(path, seed=0)
    times, buttons = a_performance(n, cfg.num_buttons)
    keys = [genie.press(float(t), int(b), temperature=0) for t, b in zip(times, buttons)]
    dt = delta_times(times, cfg.data_delta_time_max)  # the training pipeline's delta times
    logits = torch_logits(model, [SOS] + keys[:-1], dt.tolist(), buttons.tolist())
    assert keys == logits.argmax(-1).tolist()
    # and the raw logits agree within 1e-4
    genie.reset()
    np_logits = np.stack(
        [genie.step(k, t, b * 2 / (cfg.num_buttons - 1) - 1) for k, t, b in zip([SOS] + keys[:-1], dt, buttons)]
    )
    err = np.abs(np_logits - logits).max()
    print(f"max |numpy - torch| logit difference over {n} steps: {err:.2e}")
    assert err < 1e-4
    return keys


def test_random_model_matches_torch(ckpt):
    keys = check_press_matches_torch(ckpt)
    assert len(set(keys)) > 1  # the comparison exercised more than one key path


def test_deeper_model_matches_torch(tmp_path):
    # 3 layers: a middle layer carries its bias separately
    check_press_matches_torch(random_checkpoint(tmp_path / "deep.pt", model_rnn_num_layers=3), n=24)


def test_reference_model_matches_torch_and_tutorial_vectors(reference_dir):
    path = reference_dir / "pytorch" / "model.pt"
    check_press_matches_torch(path, n=128)
    vectors = reference_dir / "tfjs" / "test.json"
    if vectors.is_file():  # the tutorial's own decoder test vectors
        d = json.loads(vectors.read_text())
        genie = PianoGenie.load(path)
        got = np.stack(
            [genie.step(k, t, b * 2 / 7 - 1) for k, t, b in zip(d["input_keys"], d["input_dts"], d["input_buttons"])]
        )
        assert np.abs(got - np.array(d["output_logits"])).max() < 1e-4


def test_seed_determinism_and_reset(ckpt):
    times, buttons = a_performance(40)

    def play(genie):
        return [genie.press(float(t), int(b), temperature=1.0) for t, b in zip(times, buttons)]

    a, b = PianoGenie.load(ckpt, seed=7), PianoGenie.load(ckpt, seed=7)
    first = play(a)
    assert first == play(b)
    assert first != play(PianoGenie.load(ckpt, seed=8))
    a.reset(seed=7)
    assert play(a) == first
    a.reset()  # same state, RNG running on: a new take
    assert play(a) != first
    # changing temperature mid-session is deterministic too (the noise is rescaled, not redrawn)
    temps = [0.5, 0.5, 0.0, 2.0, 1.0] * 8
    mixed = [
        [g.press(float(t), int(b_), temperature=T) for t, b_, T in zip(times, buttons, temps)]
        for g in (PianoGenie.load(ckpt, seed=5), PianoGenie.load(ckpt, seed=5))
    ]
    assert mixed[0] == mixed[1]
    assert all(0 <= k < NUM_KEYS for k in first)


def test_temperature_zero_is_argmax_and_sampling_follows_softmax(ckpt):
    g = PianoGenie.load(ckpt, seed=0)
    logits = g.step(SOS, 1.0, -1.0)
    g.reset()
    assert g.press(0.0, 0, temperature=0) == int(logits.argmax())
    assert g.press_pitch(0.0, 0, temperature=0) - LOWEST_PITCH in range(NUM_KEYS)
    # sampled first keys follow softmax(logits / T)
    T, n = 2.0, 4000
    counts = np.zeros(NUM_KEYS)
    for _ in range(n):
        g.reset()
        counts[g.press(0.0, 0, temperature=T)] += 1
    p = np.exp((logits - logits.max()) / T)
    p /= p.sum()
    assert np.abs(counts / n - p).max() < 0.04
    with pytest.raises(ValueError):
        g.press(1.0, 0, temperature=-1)


def test_delta_time_and_button_inputs(ckpt):
    model, cfg = load_model(ckpt)
    g = PianoGenie.load(ckpt)
    for bad in (cfg.num_buttons, -1, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="button must be an integer"):
            g.press(0.0, bad)
    with pytest.raises(ValueError, match="time must be"):
        g.press(float("nan"), 0)
    assert g.last_time is None and g.k_m1 == SOS  # rejected presses leave the session untouched
    g.reset()
    # first press at t=100 is fed dt=max; an earlier time counts as simultaneous (dt=0)
    k1 = g.press(100.0, 3, temperature=0)
    k2 = g.press(99.0, 7, temperature=0)
    expect = torch_logits(model, [SOS, k1], [cfg.data_delta_time_max, 0.0], [3, 7]).argmax(-1).tolist()
    assert [k1, k2] == expect
    # integral buttons of other types (numpy ints from arrays, whole floats) are the same button
    for same in (np.int64(3), 3.0, np.float32(3)):
        g.reset()
        assert g.press(100.0, same, temperature=0) == k1


def test_default_model_missing_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(genie_mod, "DEFAULT_MODEL", tmp_path / "absent" / "model.pt")
    with pytest.raises(UserError, match="--model"):
        PianoGenie.load()


def test_default_model_is_used_when_shipped(monkeypatch, ckpt):
    monkeypatch.setattr(genie_mod, "DEFAULT_MODEL", ckpt)
    assert PianoGenie.load().cfg.model_rnn_dim == 32


@pytest.mark.parametrize("layers,velocity_bins", [(2, 0), (3, 0), (1, 16)])
def test_packed_step_equals_the_plain_numpy_step(tmp_path, layers, velocity_bins):
    from pianogenie.packed import PackedDecoder, plain_step

    model, cfg = load_model(
        random_checkpoint(
            tmp_path / "m.pt", model_rnn_num_layers=layers, velocity_bins=velocity_bins, velocity_hidden=24
        )
    )
    w = {name: p.detach().double().numpy() for name, p in model.dec.state_dict().items()}
    vel = {n: p.detach().double().numpy() for n, p in model.vel.state_dict().items()} if velocity_bins else None
    packed, plain = PackedDecoder(w, cfg, vel), plain_step(w, layers)
    h, c = [np.zeros(cfg.model_rnn_dim) for _ in range(layers)], [np.zeros(cfg.model_rnn_dim) for _ in range(layers)]
    times, buttons = a_performance(48, cfg.num_buttons)
    k_m1 = SOS
    for dt, b in zip(delta_times(times, cfg.data_delta_time_max), buttons):
        b_real = 2 * int(b) / (cfg.num_buttons - 1) - 1
        ours, ref = packed.step(k_m1, float(dt), b_real), plain(k_m1, float(dt), b_real, h, c)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-4)
        k_m1 = int(ref.argmax())
