"""The paper's Gold checks (pianogenie/gold.py): tiny melodies and models built in code, then the shared file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import SHARED

from pianogenie import gold
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.constants import NUM_KEYS
from pianogenie.genie import PianoGenie
from pianogenie.model import Autoencoder
from pianogenie.util import UserError

GOLD_FILE = SHARED / "data" / "gold_melodies.json"
PRETRAINED = "pianogenie/pretrained/model.pt"

# Two melodies; the person's buttons go up one per whole tone from D4 (MIDI 62 = key 41).
TINY = {
    "melodies": [
        {"name": "steps", "midi_pitches": [62, 64, 66, 64, 62], "buttons_1_to_8": [1, 2, 3, 2, 1]},
        {"name": "semitones", "midi_pitches": [62, 63, 64], "buttons_1_to_8": [1, 2, 3]},
    ]
}


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "gold.json"
    path.write_text(json.dumps(TINY))
    return path


class WholeToneEncoder(nn.Module):
    """e such that the button is (key - 41) // 2: the people's buttons for `steps`, untransposed."""

    def forward(self, k, t, lengths=None):
        return ((k - 41) // 2).float() * (2 / 7) - 1


class ButtonToKeyDecoder(nn.Module):
    """Plays key 41 + 2 * button whatever came before (logits peaked there)."""

    def step(self, k_m1, t, b, state=None):
        button = torch.round((b + 1) * 3.5).long()
        return nn.functional.one_hot(41 + 2 * button, NUM_KEYS).float(), state


def tiny_model() -> tuple[Autoencoder, Config]:
    cfg = Config(model_rnn_dim=8)
    model = Autoencoder(cfg)
    model.enc, model.dec = WholeToneEncoder(), ButtonToKeyDecoder()
    return model, cfg


def test_gold_compares_encoder_buttons_with_the_peoples_minus_one(tiny_file):
    model, cfg = tiny_model()
    melodies = gold.load_gold(tiny_file)
    assert melodies[0].buttons.tolist() == [0, 1, 2, 1, 0] and melodies[0].keys[0] == 41
    exact = gold.gold(model, cfg, melodies[:1], transpositions=(0,))
    assert exact["mse"] == 0 and exact["exact_rate"] == 1 and exact["mse_vs_1_to_8_as_paper_code"] == 1
    # up a whole tone every button is one higher than the person's: squared difference 1
    shifted = gold.gold(model, cfg, melodies[:1], transpositions=(0, 2))
    assert shifted["mse"] == pytest.approx(0.5) and shifted["mean_abs_diff"] == pytest.approx(0.5)
    # per melody, then averaged over melodies x transpositions: semitones gets buttons 0, 0, 1 vs 0, 1, 2
    both = gold.gold(model, cfg, melodies, transpositions=(0,))
    assert both["per_melody_mse"] == {"steps": 0.0, "semitones": pytest.approx(2 / 3)}
    assert both["mse"] == pytest.approx(1 / 3)
    assert gold.gold(model, cfg, melodies)["transpositions"] == [-6, 6]


def test_gold_playback_rates_per_melody_and_pooled(tiny_file):
    model, cfg = tiny_model()
    result = gold.gold_playback(model, cfg, gold.load_gold(tiny_file))
    # steps: keys 41 43 45 43 41, every interval equal; semitones: +2 +2 against +1 +1, same direction
    assert result["per_melody"]["steps"] == {"interval_equal": 1.0, "direction_agree": 1.0}
    assert result["per_melody"]["semitones"] == {"interval_equal": 0.0, "direction_agree": 1.0}
    assert result["num_intervals"] == 6
    assert result["interval_equal"] == pytest.approx(4 / 6) and result["direction_agree"] == 1.0


def test_playback_decodes_as_real_time_play_does(tiny_file):
    """decode_buttons (batched, padded) gives the keys a PianoGenie session plays at temperature 0
    when the presses are `delta_time` apart: the same first-note convention and inputs."""
    melodies = gold.load_gold(tiny_file)
    from pianogenie.model import load_model

    model, cfg = load_model(PRETRAINED)
    genie = PianoGenie.load(PRETRAINED)
    for m, keys in zip(melodies, gold.decode_buttons(model, cfg, melodies, 0.3)):
        genie.reset()
        played = [genie.press(10 + 0.3 * i, int(b), temperature=0) for i, b in enumerate(m.buttons)]
        assert keys.tolist() == played


def test_gold_delta_times_follow_the_models_rule_to_the_bit():
    """Every note `delta_time` after the last, the first at the maximum, capped at the maximum:
    exactly the float32 values of filling in min(delta_time, max) by hand."""
    rng = np.random.default_rng(0)
    for max_dt in [1.0, 0.5, 2.0 / 3.0]:
        cfg = Config(data_delta_time_max=max_dt)
        values = [0.0, 1e-9, 0.1, 0.256, 0.3, 1 / 3, max_dt, max_dt * (1 - 1e-12), max_dt + 1e-12, 5.0, 1e308]
        for dt in values + list(rng.uniform(0, 1.5, 200)) + list(rng.uniform(0, 1e-3, 50)):
            for n in [1, 2, 17, 300]:
                expected = np.full(n, min(dt, max_dt), dtype=np.float32)
                expected[0] = max_dt
                got = gold.delta_times(n, dt, cfg)
                assert got.dtype == np.float32 and got.tobytes() == expected.tobytes(), (max_dt, dt, n)


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ({"melodies": []}, "at least one melody"),
        ({"melodies": [{"midi_pitches": [60, 62], "buttons_1_to_8": [1]}]}, "one button per note"),
        ({"melodies": [{"midi_pitches": [60, 62], "buttons_1_to_8": [0, 1]}]}, "buttons in 1..8"),
        ({"melodies": [{"midi_pitches": [60, 62]}]}, "needs integer"),
    ],
)
def test_bad_gold_files_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "g.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(UserError, match=message):
        gold.load_gold(path)


def test_evaluate_gold_cli_and_the_one_button_baseline(tiny_file, tmp_path, capsys):
    assert main(["evaluate", PRETRAINED, "--gold", str(tiny_file), "--out", str(tmp_path / "g.json")]) == 0
    result = json.loads((tmp_path / "g.json").read_text())
    assert set(result) >= {"gold", "gold_sweep", "gold_playback"}
    assert list(result["gold_sweep"]) == ["0.125", "0.256", "0.5", "1"]
    assert result["gold"]["mse"] == result["gold_sweep"]["0.256"]
    assert main(["evaluate", PRETRAINED]) == 2
    assert "pass --data" in capsys.readouterr().err
    # the language-model baseline has no buttons to compare
    model = Autoencoder(Config(num_buttons=1, model_rnn_dim=8))
    with pytest.raises(UserError, match="8-button model"):
        gold.gold(model, Config(num_buttons=1, model_rnn_dim=8), gold.load_gold(tiny_file))


def test_shared_gold_melodies_on_the_shipped_model():
    if not GOLD_FILE.is_file():
        pytest.skip(f"shared data not available: {GOLD_FILE} is absent")
    from pianogenie.model import load_model

    melodies = gold.load_gold(GOLD_FILE)
    assert len(melodies) == 8 and sum(len(m.keys) - 1 for m in melodies) == 271
    model, cfg = load_model(PRETRAINED)
    score = gold.gold(model, cfg, melodies)
    # The encoder follows people better than the best constant button does (~3.0 here; the
    # constant that minimises the melody-averaged mse is the mean of the melodies' mean buttons).
    c = np.mean([m.buttons.mean() for m in melodies])
    constant_mse = np.mean([np.mean((m.buttons - c) ** 2) for m in melodies])
    assert score["mse"] < constant_mse
    playback = gold.gold_playback(model, cfg, melodies)
    assert playback["direction_agree"] > 0.6  # chance for up/down/repeat would be about 1/3
