"""The language-model baseline: `train --num_buttons=1` gives the decoder no button information."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import TINY

from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.model import Autoencoder, load_model


@pytest.mark.slow
def test_one_button_decoder_ignores_the_encoder_and_trains(notes_file, tmp_path):
    cfg = Config(num_buttons=1, model_rnn_dim=8)
    model = Autoencoder(cfg)
    k, t = torch.randint(0, 88, (2, 12)), torch.rand(2, 12)
    hat_k, e = model(k, t)
    assert torch.all(e == 0) and torch.all(model.quant(e) == 0)  # the one button's value: the centre
    with torch.no_grad():
        for p in model.enc.parameters():
            p.add_(1.0)
    assert torch.equal(model(k, t)[0], hat_k)  # nothing reaches the decoder from the keys' encoding

    run = tmp_path / "lm"
    assert (
        main(
            [
                "train",
                "--data",
                str(notes_file),
                "--run-dir",
                str(run),
                *TINY,
                "--num_buttons=1",
                "--loss_contour_multiplier=0",
                "--max_num_steps=30",
                "--lr=0.01",
                "--workers",
                "1",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert train[-1]["loss_recons"] < train[0]["loss_recons"] - 0.2  # the decoder alone learns
    assert train[-1]["loss_margin"] == 0  # e = 0 is in range
    _trained, trained_cfg = load_model(run)
    assert trained_cfg.num_buttons == 1
    assert main(["evaluate", str(run), "--data", str(notes_file), "--split", "validation"]) == 0
