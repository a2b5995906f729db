"""The model shipped in the package: present, consistent between its PyTorch and TF.js forms, played
by default, and good at its job on real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pianogenie.cli import main
from pianogenie.genie import PianoGenie
from pianogenie.model import load_model

PRETRAINED = Path(__file__).resolve().parents[1] / "pianogenie" / "pretrained"


def test_shipped_checkpoint_and_tfjs_export_hold_the_same_decoder():
    model, cfg = load_model(PRETRAINED / "model.pt")
    manifest = json.loads((PRETRAINED / "tfjs" / "weights_manifest.json").read_text())
    blob = b"".join((PRETRAINED / "tfjs" / p).read_bytes() for group in manifest for p in group["paths"])
    state = model.state_dict()
    offset = 0
    for w in (w for group in manifest for w in group["weights"]):
        n = int(np.prod(w["shape"]))
        value = np.frombuffer(blob, dtype="<f4", count=n, offset=offset).reshape(w["shape"])
        offset += 4 * n
        np.testing.assert_array_equal(value, state[w["name"]].numpy())
    assert offset == len(blob)
    assert {w["name"] for group in manifest for w in group["weights"]} == {
        k for k in state if k.startswith(("dec.", "vel."))
    }
    assert any(k.startswith("vel.") for k in state), "the shipped model has a velocity head"
    assert json.loads((PRETRAINED / "tfjs" / "cfg.json").read_text())["num_buttons"] == cfg.num_buttons


def test_the_shipped_model_is_the_default_and_reproduces_its_golden_case():
    genie = PianoGenie.load()  # no path: the shipped model
    golden = json.loads((PRETRAINED / "tfjs" / "test.json").read_text())
    n = genie.cfg.num_buttons
    err = 0.0
    for k_m1, dt, b, expected in zip(
        golden["input_keys"], golden["input_dts"], golden["input_buttons"], golden["output_logits"]
    ):
        logits = genie.step(k_m1, dt, 2 * b / (n - 1) - 1)
        err = max(err, float(np.abs(logits - np.array(expected)).max()))
    assert err < 1e-4


def test_shipped_velocity_head_sits_on_the_h200_key_model_unchanged():
    """The velocity head was trained on frozen key weights: every key-path weight is the H200 run's."""
    h200 = PRETRAINED.parents[2] / "shared" / "runs" / "gpu-large-batch" / "stage2.pt"
    if not h200.is_file():
        pytest.skip(f"shared run absent: {h200}")
    shipped, _ = load_model(PRETRAINED / "model.pt")
    keys, _ = load_model(h200)
    for name, w in keys.state_dict().items():
        np.testing.assert_array_equal(shipped.state_dict()[name].numpy(), w.numpy(), err_msg=name)


@pytest.mark.slow
def test_shipped_model_contour_on_real_validation_performances(maestro_dir, tmp_path, capsys):
    """On real held-out music, higher buttons mean higher keys for the shipped model."""
    notes = tmp_path / "notes.json.gz"
    assert main(["prepare", str(maestro_dir), "-o", str(notes), "--limit", "60"]) == 0
    capsys.readouterr()
    from pianogenie.notes_file import load_notes

    data = load_notes(notes)
    split = "validation" if data.get("validation") else "train"
    assert (
        main(
            ["evaluate", str(PRETRAINED / "model.pt"), "--data", str(notes), "--split", split, "--protocol", "first128"]
        )
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["contour_violation_ratio"] < 0.2
    assert metrics["perplexity"] < 10  # a unigram key model scores about 58
