"""`pianogenie export`: TF.js weights format, cfg.json, the golden test.json, atomic replacement."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pianogenie import export as ex
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.model import Autoencoder, load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """One of our checkpoints: a seeded fresh model, small so the tests stay fast."""
    torch.manual_seed(0)
    cfg = Config(model_rnn_dim=32)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    torch.save({"model": Autoencoder(cfg).state_dict(), "cfg": dataclasses.asdict(cfg)}, path)
    return path


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "model"
    assert main(["export", str(checkpoint.parent), "--out", str(out)]) == 0
    return out


def read_tfjs(out: Path) -> dict[str, np.ndarray]:
    """Decode the TF.js weights format by its documented rules (an independent reader)."""
    manifest = json.loads((out / "weights_manifest.json").read_text())
    weights = {}
    for group in manifest:
        blob = b"".join((out / p).read_bytes() for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            assert spec["dtype"] == "float32"
            n = int(np.prod(spec["shape"]))
            weights[spec["name"]] = np.frombuffer(blob, "<f4", n, offset).reshape(spec["shape"])
            offset += 4 * n
        assert offset == len(blob)
    return weights


def test_weights_round_trip_exactly(exported, checkpoint):
    model, _ = load_model(checkpoint)
    expected = {k: v.numpy() for k, v in model.state_dict().items() if k.startswith("dec.")}
    got = read_tfjs(exported)
    assert list(got) == list(expected)  # same names, same order as the state dict
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
    assert sorted(p.name for p in exported.iterdir()) == [
        "cfg.json",
        "group1-shard1of1.bin",
        "test.json",
        "weights_manifest.json",
    ]


def test_cfg_json_has_what_the_browser_needs(exported):
    cfg = json.loads((exported / "cfg.json").read_text())
    assert cfg["num_buttons"] == 8 and cfg["model_rnn_dim"] == 32 and cfg["model_rnn_num_layers"] == 2
    assert (cfg["sos"], cfg["num_keys"], cfg["lowest_pitch"], cfg["data_delta_time_max"]) == (88, 88, 21, 1.0)
    assert cfg["button_values"] == pytest.approx([2 * b / 7 - 1 for b in range(8)], abs=1e-15)  # the bin centres
    assert Config.from_dict(cfg, strict=False).model_rnn_dim == 32  # still a config the trainer reads


def test_golden_case_matches_pytorch(exported, checkpoint):
    golden = json.loads((exported / "test.json").read_text())
    assert golden["source"].startswith("synthetic")
    k_m1, dt, b = golden["input_keys"], golden["input_dts"], golden["input_buttons"]
    assert len(k_m1) == len(dt) == len(b) == 128 and np.shape(golden["output_logits"]) == (128, 88)
    assert k_m1[0] == 88 and dt[0] == 1.0 and k_m1[1:] == golden["output_keys"][:-1]
    assert set(b) <= set(range(8))  # (an untrained encoder may give one button throughout)
    # Re-derive with the model's own float32 forward: buttons from its encoder, logits from its decoder.
    model, _cfg = load_model(checkpoint)
    k = torch.tensor([golden["output_keys"]])
    t = torch.tensor([dt], dtype=torch.float32)
    assert model.buttons(k, t)[0].tolist() == b
    with torch.no_grad():
        logits, _ = model.dec(torch.tensor([k_m1]), t, model.quant.discrete_to_real(torch.tensor([b])))
    err = np.abs(logits[0].numpy() - np.array(golden["output_logits"])).sum()
    assert err < 0.015, err  # float32 vs the float64 golden


def test_golden_from_validation_data(checkpoint, tmp_path):
    rng = np.random.default_rng(1)
    perf = lambda n: [[float(i) * 0.1, 0.2, int(rng.integers(0, 88)), 64] for i in range(n)]
    notes = tmp_path / "notes.json.gz"
    notes.write_bytes(gzip.compress(json.dumps({"train": [perf(200)], "validation": [perf(50), perf(300)]}).encode()))
    out = tmp_path / "model"
    ex.export(checkpoint, out, data=notes)
    golden = json.loads((out / "test.json").read_text())
    assert golden["source"] == "validation performance 1 of notes.json.gz, notes 0..127"
    assert golden["output_keys"] == [
        row[2] for row in json.loads(gzip.decompress(notes.read_bytes()))["validation"][1][:128]
    ]
    np.testing.assert_allclose(golden["input_dts"][1:], 0.1, atol=1e-9)

    short = tmp_path / "short.json.gz"
    short.write_bytes(gzip.compress(json.dumps({"validation": [perf(20)]}).encode()))
    with pytest.raises(ex.UserError, match="no validation performance has 128 notes"):
        ex.export(checkpoint, tmp_path / "m2", data=short)


def test_shards_split_and_concatenate():
    weights = {"a": np.arange(1000, dtype=np.float32).reshape(10, 100), "b": np.ones(7, np.float32)}
    manifest, shards = ex.tfjs_weights(weights, shard_bytes=1024)
    assert manifest[0]["paths"] == [f"group1-shard{i}of4.bin" for i in range(1, 5)]
    assert [len(s) for s in shards] == [1024, 1024, 1024, 4028 - 3 * 1024]
    blob = b"".join(shards)
    np.testing.assert_array_equal(np.frombuffer(blob[:4000], "<f4").reshape(10, 100), weights["a"])


def test_reference_export_is_byte_identical(reference_dir, tmp_path):
    out = tmp_path / "ref"
    ex.export(reference_dir / "pytorch" / "model.pt", out)
    ref = reference_dir / "tfjs"
    assert json.loads((out / "weights_manifest.json").read_text()) == json.loads(
        (ref / "weights_manifest.json").read_text()
    )
    assert (out / "group1-shard1of1.bin").read_bytes() == (ref / "group1-shard1of1.bin").read_bytes()
    # A trained encoder spreads the synthetic performance over most of the buttons.
    assert len(set(json.loads((out / "test.json").read_text())["input_buttons"])) >= 5


def test_replaces_a_previous_export_atomically(checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "model"
    ex.export(checkpoint, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(ex, "golden_case", boom)
    with pytest.raises(RuntimeError):
        ex.export(checkpoint, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temp folders left
    monkeypatch.undo()
    ex.export(checkpoint, out)  # a previous export is replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_refuses_to_clobber_other_folders(checkpoint, tmp_path, capsys):
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"meow")
    assert main(["export", str(checkpoint), "--out", str(other)]) == 2
    assert "holds no export" in capsys.readouterr().err
    assert (other / "cat.jpg").read_bytes() == b"meow"


def test_bad_checkpoint_is_a_user_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["export", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie export: error:") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_a_language_model_baseline_is_refused_in_one_line(tmp_path, capsys):
    cfg = Config(model_rnn_dim=16, num_buttons=1)
    path = tmp_path / "lm.pt"
    torch.save({"model": Autoencoder(cfg).state_dict(), "cfg": dataclasses.asdict(cfg)}, path)
    assert main(["export", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "language-model baseline (num_buttons=1)" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_export_never_deletes_files_it_did_not_write(checkpoint, tmp_path, capsys):
    out = tmp_path / "model"
    ex.export(checkpoint, out)
    (out / "MY_NOTES.txt").write_text("mine")
    (out / "recordings").mkdir()
    (out / "recordings" / "take1.mid").write_bytes(b"MThd take 1")
    # a shard a previous export wrote and the next no longer has, and a manifest that also lists
    # a user's file: only the former may go
    manifest = json.loads((out / "weights_manifest.json").read_text())
    (out / "group1-shard2of2.bin").write_bytes(b"old shard")
    manifest[0]["paths"] += ["group1-shard2of2.bin", "MY_NOTES.txt"]
    (out / "weights_manifest.json").write_text(json.dumps(manifest))
    assert main(["export", str(checkpoint), "--out", str(out)]) == 0
    assert (out / "MY_NOTES.txt").read_text() == "mine"
    assert (out / "recordings" / "take1.mid").read_bytes() == b"MThd take 1"
    assert not (out / "group1-shard2of2.bin").exists()
    assert json.loads((out / "weights_manifest.json").read_text())[0]["paths"] == ["group1-shard1of1.bin"]
    # a file with an export's name that no export listed is not replaced
    (out / "group1-shard1of1.bin").unlink()
    (out / "weights_manifest.json").write_text(json.dumps([{"paths": [], "weights": []}]))
    (out / "group1-shard1of1.bin").write_bytes(b"someone else's")
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (out / "group1-shard1of1.bin").read_bytes() == b"someone else's"


@pytest.mark.parametrize("where", ["parent_is_file", "is_file", "holds_input"])
def test_export_unwritable_or_input_holding_out_is_one_line(checkpoint, tmp_path, capsys, where):
    (tmp_path / "f").write_text("x")
    out = {"parent_is_file": tmp_path / "f" / "model", "is_file": tmp_path / "f", "holds_input": checkpoint.parent}[
        where
    ]
    assert main(["export", str(checkpoint), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie export: error: ") and "--out" in err and len(err.splitlines()) == 1
