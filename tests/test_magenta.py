"""`pianogenie export --format magenta`: @magenta/music's PianoGenie checkpoint layout (magenta.py).

The forward pass here is written from @magenta/music 1.23.1's source (its feature vector, TF.js's
`basicLSTMCell` with forget bias 1, `multiRNNCell`, the pitch layer), independently of the
conversion; the Node test (web/test/magenta.test.js) runs the real package on the shipped model.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pianogenie import magenta as mg
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.constants import SOS
from pianogenie.model import Autoencoder, load_model

CLASS_VARIABLES = {  # what PianoGenie reads, with the shapes its ops need
    "phero_model/decoder/rnn_input/dense/kernel": [123, 128],
    "phero_model/decoder/rnn_input/dense/bias": [128],
    "phero_model/decoder/rnn/rnn/multi_rnn_cell/cell_0/lstm_cell/kernel": [256, 512],
    "phero_model/decoder/rnn/rnn/multi_rnn_cell/cell_0/lstm_cell/bias": [512],
    "phero_model/decoder/rnn/rnn/multi_rnn_cell/cell_1/lstm_cell/kernel": [256, 512],
    "phero_model/decoder/rnn/rnn/multi_rnn_cell/cell_1/lstm_cell/bias": [512],
    "phero_model/decoder/pitches/dense/kernel": [128, 88],
    "phero_model/decoder/pitches/dense/bias": [88],
}


def save_checkpoint(path: Path, cfg: Config, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    model = Autoencoder(cfg)
    with torch.no_grad():  # far from a fresh model's small values, so a misplaced row, gate or bias shows
        for name, p in model.dec.named_parameters():
            if "bias" in name:
                p.uniform_(-1.5, 1.5)
            else:
                p.mul_(4)
    torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, path)
    return path


def read_manifest_weights(out: Path) -> dict[str, np.ndarray]:
    manifest = json.loads((out / "weights_manifest.json").read_text())
    weights = {}
    for group in manifest:
        blob = b"".join((out / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            n = int(np.prod(spec["shape"]))
            weights[spec["name"]] = np.frombuffer(blob, "<f4", n, offset).reshape(spec["shape"]).astype(np.float64)
            offset += 4 * n
    return weights


def magenta_bin(dt: float) -> int | None:
    """The class's delta-time bin: int(min(round(f32(dt) * 31.25), 32) + 1e-4), TF.js rounding
    half to even, int32 cast truncating; None where its one-hot is all zeros (negative index)."""
    x = float(np.float32(dt) * np.float32(31.25))
    j = int(min(round(x), 32) + 1e-4)  # Python's round() is half to even too
    return j if j >= 0 else None


def magenta_forward(w: dict[str, np.ndarray], buttons, dts, prev_keys, extra=None) -> np.ndarray:
    """@magenta/music's PianoGenie on a sequence, float64: (T, 88) logits. prev_keys use its
    encoding: -1 = start, else 0..87. `extra` (T, F): a conditioned class's features, appended."""
    kernel_in, bias_in = w[mg.INPUT_KERNEL], w[mg.INPUT_BIAS]
    cells = [(w[k], w[b]) for k, b in (mg.lstm_names(0), mg.lstm_names(1))]
    c = [np.zeros(128) for _ in cells]
    h = [np.zeros(128) for _ in cells]
    sig = lambda x: 1 / (1 + np.exp(-x))
    out = []
    for step, (b, dt, k) in enumerate(zip(buttons, dts, prev_keys)):
        key = np.zeros(89)
        key[k + 1] = 1
        t = np.zeros(33)
        j = magenta_bin(dt)
        if j is not None:
            t[j] = 1
        x = np.concatenate([[2 * (b / 7) - 1], key, t, [] if extra is None else extra[step]]) @ kernel_in + bias_in
        for n, (kernel, bias) in enumerate(cells):
            z = np.concatenate([x, h[n]]) @ kernel + bias
            i, jj, f, o = np.split(z, 4)
            c[n] = sig(i) * np.tanh(jj) + c[n] * sig(f + 1.0)
            h[n] = np.tanh(c[n]) * sig(o)
            x = h[n]
        out.append(x @ w[mg.OUTPUT_KERNEL] + w[mg.OUTPUT_BIAS])
    return np.array(out)


def random_inputs(rng, steps):
    buttons = rng.integers(0, 8, steps)
    dts = rng.choice([0.0, 0.016, 0.048, 0.08, 0.5, 1.0, 1.008, 1.5, 40.0, -0.01, -0.05], steps)
    dts = np.where(rng.random(steps) < 0.5, rng.random(steps) * 1.2, dts)
    keys = rng.integers(0, 88, steps)
    prev = np.concatenate([[-1], keys[:-1]])
    return buttons, dts, prev


@pytest.mark.parametrize("dt_max", [1.0, 0.5])
def test_magenta_forward_equals_our_decoder(tmp_path, dt_max):
    cfg = Config(data_delta_time_max=dt_max)
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", cfg)
    out = tmp_path / "mg"
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 0
    w = read_manifest_weights(out)
    assert {k: list(v.shape) for k, v in w.items()} == CLASS_VARIABLES

    buttons, dts, prev = random_inputs(np.random.default_rng(1), 300)
    got = magenta_forward(w, buttons, dts, prev)

    model, _ = load_model(ckpt)
    dec = model.dec.double()
    bins = [magenta_bin(dt) for dt in dts]
    t = np.array([0.0 if j is None else min(j * 0.032, dt_max) for j in bins])
    k_m1 = torch.from_numpy(np.where(prev < 0, SOS, prev))[None]
    h0 = torch.zeros(2, 1, 128, dtype=torch.float64)
    with torch.no_grad():
        ours, _ = dec(
            k_m1, torch.from_numpy(t)[None], torch.from_numpy(2 * buttons / 7 - 1.0)[None], (h0, torch.zeros_like(h0))
        )
    ours = ours[0].numpy()
    assert np.abs(got - ours).max() < 1e-5
    assert (got.argmax(1) == ours.argmax(1)).all()
    # The inputs reach the logits: a wrong row would not be hidden by a flat model.
    assert ours.std(axis=0).mean() > 0.1


def test_delta_time_rounds_as_the_class_does():
    # float32(0.016) * 31.25 is 0.5 exactly and float32(0.048) * 31.25 is 1.5: half to even
    np.testing.assert_array_equal(
        mg.magenta_delta_time([0.0, 0.01, 0.016, 0.02, 0.048, 0.5, 1.0, 5.0, -1.0], 1.0),
        [0.0, 0.0, 0.0, 0.032, 0.064, 16 / 31.25, 31 / 31.25, 1.0, 0.0],
    )
    assert mg.magenta_delta_time(0.3, 0.25) == 0.25
    dts = np.random.default_rng(0).random(2000) * 1.2 - 0.1
    got = mg.magenta_delta_time(dts, 1.0)
    want = [0.0 if magenta_bin(d) is None else min(magenta_bin(d) / 31.25, 1.0) for d in dts]
    np.testing.assert_array_equal(got, want)


def test_velocity_head_is_dropped_with_a_notice(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", Config(velocity_bins=8, velocity_hidden=16))
    out = tmp_path / "mg"
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "pianogenie export: note: the velocity head is dropped" in printed
    assert list(read_manifest_weights(out)) == list(CLASS_VARIABLES)
    info = json.loads((out / "magenta.json").read_text())
    assert info["class"] == "PianoGenie" and len(info["notices"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["group1-shard1of1.bin", "magenta.json", "weights_manifest.json"]


@pytest.mark.parametrize(
    "cfg, says",
    [
        (Config(num_buttons=4), "plays 8 buttons"),
        (Config(model_rnn_dim=64), "2 LSTM layers of 128 units; this model has 2 x 64"),
        (Config(model_rnn_num_layers=3), "this model has 3 x 128"),
    ],
)
def test_models_the_class_cannot_run_are_refused_in_one_line(tmp_path, capsys, cfg, says):
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", cfg)
    out = tmp_path / "mg"
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie export: error: @magenta/music's PianoGenie") and says in err
    assert err.count("\n") == 1
    assert not out.exists()


def test_switching_formats_in_one_folder_leaves_no_stale_files(tmp_path):
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", Config())
    out = tmp_path / "model"
    assert main(["export", str(ckpt), "--out", str(out)]) == 0  # the default stays tfjs
    assert {"cfg.json", "test.json"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "group1-shard1of1.bin",
        "magenta.json",
        "notes.txt",
        "weights_manifest.json",
    ]
    assert main(["export", str(ckpt), "--format", "tfjs", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert "magenta.json" not in names and {"cfg.json", "test.json", "notes.txt"} <= names


def test_data_is_refused_with_magenta(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", Config())
    assert main(["export", str(ckpt), "--format", "magenta", "--data", "x", "--out", str(tmp_path / "o")]) == 2
    assert "--data" in capsys.readouterr().err


def test_conditioned_classes():
    assert mg.magenta_class() == "PianoGenie"
    assert mg.magenta_class(("key", "chord_root", "chord_family")) == "PianoGenieKeysigChord"
    with pytest.raises(Exception, match="no PianoGenie class for the conditions style"):
        mg.magenta_class(("style",))


def test_condition_rows_encode_none_as_the_zero_vector():
    rng = np.random.default_rng(0)
    block, bias = rng.normal(size=(16, 13)), rng.normal(size=16)  # 12 pitch classes + none
    rows, shift = mg.condition_rows(block)
    assert rows.shape == (12, 16)
    for c in range(13):  # ours: one-hot with the none slot (12); the class: none = all zeros
        ours = block @ np.eye(13)[c] + bias
        theirs = (np.eye(12)[c] if c < 12 else np.zeros(12)) @ rows + bias + shift
        np.testing.assert_allclose(theirs, ours, atol=1e-12)


def test_the_app_refuses_a_magenta_export_in_one_line(tmp_path, capsys):
    ckpt = save_checkpoint(tmp_path / "ckpt.pt", Config())
    out = tmp_path / "mg"
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 0
    assert main(["build-site", str(tmp_path / "site"), "--model", str(out)]) == 2
    err = capsys.readouterr().err
    assert "an export for @magenta/music (--format magenta)" in err and err.count("\n") == 1
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    "conditions,cls",
    [
        ("keysig,chord", "PianoGenieKeysigChord"),
        ("chord", "PianoGenieChord"),
        ("keysig,chord,style", "PianoGenieKeysigChord"),
    ],
)
def test_conditioned_model_maps_to_its_class(tmp_path, capsys, conditions, cls):
    """The class's features for our ids (magenta_one_hot: none = zeros) through the converted
    weights give our decoder's logits with the same ids (style, which the class lacks, as none)."""
    from pianogenie import harmony
    from pianogenie.labels import condition_columns

    torch.manual_seed(0)
    cfg = Config(conditions=conditions)
    model = Autoencoder(cfg)
    with torch.no_grad():
        model.dec.input.weight[:, 91:].normal_(0, 1.0)
    ckpt = tmp_path / "c.pt"
    torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, ckpt)
    out = tmp_path / "mg"
    assert main(["export", str(ckpt), "--format", "magenta", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert ("style condition is dropped" in said) == ("style" in conditions)
    assert json.loads((out / mg.DESCRIPTION_FILE).read_text())["class"] == cls
    w = read_manifest_weights(out)
    rng = np.random.default_rng(1)
    steps = 200
    buttons, dts, prev = random_inputs(rng, steps)
    ids = np.zeros((steps, 4), np.int64)
    ids[:, 0] = rng.integers(0, 13, steps)
    ids[:, 1] = rng.integers(0, 13, steps)
    ids[:, 2] = rng.integers(0, 9, steps)
    cols = condition_columns(cfg.condition_names)[0]
    ids[:, [j for j in range(4) if j not in cols]] = 0  # what the model does not take
    sizes = {0: 12, 1: 12, 2: 8}
    extra = np.concatenate([harmony.magenta_one_hot(ids[:, j], sizes[j]) for j in cols if j != 3], axis=1)
    theirs = magenta_forward(w, buttons, dts, prev, extra)
    t = mg.magenta_delta_time(dts, cfg.data_delta_time_max)
    k_m1 = torch.from_numpy(np.where(prev < 0, SOS, prev))[None]
    h0 = torch.zeros(2, 1, 128, dtype=torch.float64)
    with torch.no_grad():
        dec = model.dec.double()
        ours, _ = dec(
            k_m1,
            torch.from_numpy(t)[None],
            torch.from_numpy(2 * buttons / 7 - 1.0)[None],
            (h0, torch.zeros_like(h0)),
            c=torch.from_numpy(ids)[None],
        )
    ours = ours[0].numpy()
    assert np.abs(theirs - ours).max() < 1e-4
    assert (theirs.argmax(1) == ours.argmax(1)).all()
