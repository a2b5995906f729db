"""Exports are checked where they are written and where they are read: every hostile export of
tests/hostile_exports.py gets its verdict from `export_check` and from `serve`/`build-site`; export
refuses a checkpoint with NaN/Inf weights; decode with such weights is one line; evaluate --out
writes JSON without NaN literals."""

from __future__ import annotations

import dataclasses
import gzip
import json

import pytest
import torch
from hostile_exports import cases, make_all

from pianogenie import export_check, site
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.model import Autoencoder
from pianogenie.util import UserError

CASES = cases()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    make_all(root)
    return root


@pytest.mark.parametrize("name", sorted(CASES))
def test_export_check_verdict(hostile, name):
    expect = CASES[name][0]
    if expect == "ok":
        export_check.check_export(hostile / name)
    else:
        with pytest.raises(UserError):
            export_check.check_export(hostile / name)


@pytest.mark.skipif(not (site.SAMPLES_PACKAGE / "audio").is_dir(), reason="samples not installed")
@pytest.mark.parametrize(
    "name",
    ["nan-weight", "head-not-in-config", "one-button", "int32-data", "swapped-shape", "cfg-link-outside", "valid"],
)
def test_build_site_refuses_what_cannot_play(hostile, tmp_path, capsys, name):
    code = main(["build-site", str(tmp_path / "www"), "--model", str(hostile / name)])
    err = capsys.readouterr().err
    if CASES[name][0] == "ok":
        assert code == 0, err
    else:
        assert code == 2 and err.startswith("pianogenie build-site: error: --model ") and len(err.splitlines()) == 1, (
            err
        )
        assert not (tmp_path / "www").exists()


def _checkpoint(path, poison=None):
    torch.manual_seed(0)
    cfg = Config(model_rnn_dim=16, velocity_bins=0)
    model = Autoencoder(cfg)
    state = model.state_dict()
    if poison is not None:
        state["dec.output.bias"][0] = poison
    torch.save({"model": state, "cfg": dataclasses.asdict(cfg)}, path)
    return path


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), 1e30])
def test_export_and_decode_refuse_non_finite_or_huge_weights(tmp_path, capsys, poison):
    ckpt = _checkpoint(tmp_path / "bad.pt", poison)
    assert main(["export", str(ckpt), "--out", str(tmp_path / "tfjs")]) == 2
    err = capsys.readouterr().err
    assert "dec.output.bias" in err and len(err.splitlines()) == 1 and not (tmp_path / "tfjs").exists(), err
    (tmp_path / "p.csv").write_text("0,1\n0.5,2\n")
    assert main(["decode", str(tmp_path / "p.csv"), "-o", str(tmp_path / "o.mid"), "--model", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie decode: error: ") and len(err.splitlines()) == 1, err


def test_evaluate_out_is_valid_json_without_nan(tmp_path, capsys, monkeypatch):
    ckpt = _checkpoint(tmp_path / "m.pt")
    notes = tmp_path / "n.json.gz"
    perf = [[i * 0.2, 0.1, 30 + i % 20, 64] for i in range(40)]
    notes.write_bytes(gzip.compress(json.dumps({"validation": [perf]}).encode()))
    from pianogenie import evaluate

    real = evaluate.evaluate
    monkeypatch.setattr(
        evaluate, "evaluate", lambda *a, **k: {**real(*a, **k), "loss": float("nan"), "x": [float("inf")]}
    )
    out = tmp_path / "r.json"
    assert main(["evaluate", str(ckpt), "--data", str(notes), "--split", "validation", "--out", str(out)]) == 0
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    obj = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))
    assert obj["loss"] is None and obj["x"] == [None]
    assert "NaN" not in capsys.readouterr().out
