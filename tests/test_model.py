"""The autoencoder's maths, its single-step API, and interoperability with the tutorial's weights."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.inputs import delta_times
from pianogenie.model import Autoencoder, IntegerQuantizer, load_model
from pianogenie.util import UserError

SMALL = Config(model_rnn_dim=16, model_rnn_num_layers=2)


def test_delta_times_first_is_max_and_clipped():
    onsets = np.array([3.0, 3.25, 3.25, 5.0, 4.9])
    np.testing.assert_allclose(delta_times(onsets, 1.0), [1.0, 0.25, 0.0, 1.0, 0.0])
    assert delta_times(np.zeros(0), 1.0).shape == (0,)


def test_quantizer_bins_centres_and_straight_through():
    q = IntegerQuantizer(8)
    e = torch.tensor([-5.0, -1.0, -0.9, -0.15, 0.0, 0.15, 0.99, 1.0, 7.0], requires_grad=True)
    b = q.real_to_discrete(e)
    assert b.tolist() == [0, 0, 0, 3, 4, 4, 7, 7, 7]  # nearest of 8 evenly spaced centres, clamped
    out = q(e)
    np.testing.assert_allclose(out.detach().numpy(), (2 * b.numpy() / 7 - 1), atol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(e.grad.numpy(), np.ones(9))  # straight-through: gradient 1


def test_step_matches_sequence_forward():
    torch.manual_seed(0)
    model = Autoencoder(SMALL).eval()
    T = 20
    k_m1 = torch.cat([torch.tensor([SOS]), torch.randint(0, NUM_KEYS, (T - 1,))])[None]  # (1, T)
    t = torch.rand(1, T)
    b = model.quant.discrete_to_real(torch.randint(0, 8, (1, T)))
    with torch.no_grad():
        seq, _ = model.dec(k_m1, t, b)  # (1, T, 88)
    state, steps = None, []
    for i in range(T):
        logits, state = model.dec.step(k_m1[:, i], t[:, i], b[:, i], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), seq, atol=1e-5, rtol=1e-5)


def test_padding_does_not_leak_into_the_bidirectional_encoder():
    torch.manual_seed(0)
    model = Autoencoder(SMALL).eval()
    k = torch.randint(0, NUM_KEYS, (2, 12))
    t = torch.rand(2, 12)
    with torch.no_grad():
        e_short = model.enc(k[:1, :7], t[:1, :7])  # row 0 alone, 7 real notes
        e_padded = model.enc(k, t, lengths=torch.tensor([7, 12]))
        e_full = model.enc(k[1:], t[1:])
    torch.testing.assert_close(e_padded[0, :7], e_short[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(e_padded[1], e_full[0], atol=1e-6, rtol=1e-5)


def test_reference_checkpoint_loads_unchanged_and_reproduces_golden_logits(reference_dir):
    state_dict = torch.load(reference_dir / "pytorch" / "model.pt", map_location="cpu", weights_only=True)
    model, _cfg = load_model(reference_dir / "pytorch" / "model.pt")
    assert list(model.state_dict()) == list(state_dict)  # same names, same order
    for name, value in model.state_dict().items():
        assert value.shape == state_dict[name].shape
    golden = json.loads((reference_dir / "tfjs" / "test.json").read_text())
    k_m1 = torch.tensor(golden["input_keys"])[None]
    t = torch.tensor(golden["input_dts"], dtype=torch.float32)[None]
    b = model.quant.discrete_to_real(torch.tensor(golden["input_buttons"]))[None]
    with torch.no_grad():
        hat_k, _ = model.dec(k_m1, t, b)
    err = (hat_k[0] - torch.tensor(golden["output_logits"])).abs().max().item()
    assert err <= 1e-4, err


def test_our_state_dict_uses_the_tutorial_names():
    names = list(Autoencoder(Config()).state_dict())
    assert names[0] == "enc.input.weight" and names[-1] == "dec.output.bias"
    assert "enc.lstm.weight_ih_l0_reverse" in names and "dec.lstm.weight_hh_l1" in names
    assert Autoencoder(Config()).state_dict()["dec.input.weight"].shape == (128, NUM_KEYS + 3)


def test_our_checkpoint_round_trips(tmp_path):
    model = Autoencoder(SMALL)
    path = tmp_path / "ckpt.pt"
    torch.save(
        {"format": "pianogenie-checkpoint-v1", "model": model.state_dict(), "cfg": dataclasses.asdict(SMALL)}, path
    )
    loaded, cfg = load_model(path)
    assert cfg == SMALL
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)


def test_bad_checkpoints_give_clear_errors(tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint")
    with pytest.raises(UserError, match="not a PyTorch checkpoint"):
        load_model(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="not found"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(UserError, match="holds no checkpoint"):
        load_model(tmp_path)
    # A real checkpoint of other dimensions than its config says
    torch.save({"model": Autoencoder(SMALL).state_dict(), "cfg": dataclasses.asdict(Config())}, tmp_path / "x.pt")
    with pytest.raises(UserError, match="does not fit"):
        load_model(tmp_path / "x.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a Piano Genie checkpoint"):
        load_model(tmp_path / "other.pt")
    # Through the CLI: one line, exit 2, no traceback
    assert main(["evaluate", str(tmp_path / "junk.pt"), "--data", str(tmp_path / "none.json.gz")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err


def test_a_checkpoint_that_is_not_a_regular_file_says_so(tmp_path, capsys):
    fifo = tmp_path / "model.pt"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    for path in ["/dev/zero", fifo]:
        with pytest.raises(UserError, match="is not a regular file") as info:
            load_model(path)
        assert "not found" not in str(info.value) and len(str(info.value).splitlines()) == 1
    assert main(["evaluate", str(fifo), "--data", str(tmp_path / "none.json.gz")]) == 2
    err = capsys.readouterr().err
    assert "is not a regular file" in err and len(err.splitlines()) == 1, err


class _Payload:
    """A pickle that would run code when loaded without weights_only."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PG_PWNED']).write_text('ran')",))


def test_a_hostile_checkpoint_is_one_line_without_unsafe_advice(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PG_PWNED", str(tmp_path / "pwned"))
    torch.save({"model": _Payload(), "cfg": {}}, tmp_path / "evil.pt")
    assert main(["evaluate", str(tmp_path / "evil.pt"), "--data", str(tmp_path / "none.json.gz")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "evil.pt") in err, err
    assert "weights_only=False" not in err and "never loaded" in err
    assert not (tmp_path / "pwned").exists()


def test_a_checkpoint_with_a_bad_config_names_the_file(tmp_path):
    torch.save(
        {"model": Autoencoder(SMALL).state_dict(), "cfg": {**dataclasses.asdict(SMALL), "lr": -1.0}},
        tmp_path / "badcfg.pt",
    )
    with pytest.raises(UserError, match=f"{tmp_path / 'badcfg.pt'}: invalid config: lr"):
        load_model(tmp_path / "badcfg.pt")
    torch.save({"model": Autoencoder(SMALL).state_dict(), "cfg": [1, 2]}, tmp_path / "listcfg.pt")
    with pytest.raises(UserError, match=r"listcfg\.pt: its config is not a mapping"):
        load_model(tmp_path / "listcfg.pt")
