"""Keys and scales: parsing, `PianoGenie.press(..., keys=...)`, `look_ahead`, `decode --scale/--keys`."""

from __future__ import annotations

import json

import numpy as np
import pretty_midi
import pytest
from helpers import a_performance

from pianogenie.cli import main
from pianogenie.constants import LOWEST_PITCH, NUM_KEYS
from pianogenie.decode import decode_performance, read_presses
from pianogenie.genie import PianoGenie
from pianogenie.scales import SCALES, allowed_keys, parse_pitch, parse_pitches, parse_scale
from pianogenie.util import UserError


def test_parse_scale():
    assert parse_scale("D minor") == {2, 4, 5, 7, 9, 10, 0}
    assert parse_scale("c major") == {0, 2, 4, 5, 7, 9, 11}
    assert parse_scale("A harmonic minor") == {9, 11, 0, 2, 4, 5, 8}
    assert parse_scale("Bb major pentatonic") == {10, 0, 2, 5, 7}
    assert parse_scale("F# minor pentatonic") == {6, 9, 11, 1, 4}
    assert parse_scale("E blues") == {4, 7, 9, 10, 11, 2}
    assert parse_scale("chromatic") == set(range(12))
    assert parse_scale("Db natural minor") == parse_scale("C# minor")
    for bad in ["", "H major", "D dorianish", "minor", "D"]:
        with pytest.raises(UserError, match="scale"):
            parse_scale(bad)


def test_parse_pitches():
    assert parse_pitch("C4") == 60 and parse_pitch("A0") == 21 and parse_pitch("Bb3") == 58
    assert parse_pitch("B#4") == 72 and parse_pitch("Cb4") == 59 and parse_pitch("108") == 108
    assert parse_pitches("60,62, 64-66") == {60, 62, 64, 65, 66}
    assert parse_pitches("C3-C4") == set(range(48, 61))
    for bad in ["", "x", "128", "70-60", "C4-"]:
        with pytest.raises(UserError):
            parse_pitches(bad)


def test_allowed_keys():
    keys = allowed_keys(parse_scale("C major"), range(60, 73))
    assert [k + LOWEST_PITCH for k in keys] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert allowed_keys() == list(range(NUM_KEYS))
    with pytest.raises(UserError, match="no piano key"):
        allowed_keys([1], [60])


@pytest.mark.parametrize("temperature", [0.0, 0.5, 2.0])
def test_press_plays_only_allowed_keys(ckpt, temperature):
    genie = PianoGenie.load(ckpt, seed=3)
    times, buttons = a_performance(300)
    free = [genie.press(float(t), int(b), temperature) for t, b in zip(times, buttons)]
    keys = allowed_keys(parse_scale("D minor"), range(48, 85))
    genie.reset(seed=3)
    played = [genie.press(float(t), int(b), temperature, keys=keys) for t, b in zip(times, buttons)]
    assert set(played) <= set(keys)
    assert not set(free) <= set(keys)  # unconstrained, the model does leave the scale: the mask did work
    assert len(set(played)) > 1


def test_masked_argmax_is_the_best_allowed_key(ckpt):
    genie = PianoGenie.load(ckpt, seed=0)
    keys = [3, 40, 41, 87]
    logits = genie.step(88, 1.0, -1.0)
    genie.reset()
    assert genie.press(0.0, 0, 0, keys=keys) == keys[int(np.argmax(logits[keys]))]
    for bad in [[], [88], [-1], [1.5], [True]]:
        with pytest.raises(ValueError, match="keys"):
            genie.press(0.0, 0, 0, keys=bad)


def test_look_ahead_predicts_the_argmax_press_and_changes_nothing(ckpt):
    genie = PianoGenie.load(ckpt, seed=5)
    times, buttons = a_performance(40)
    keys = allowed_keys(parse_scale("E blues"))
    for t, b in zip(times[:20], buttons[:20]):
        genie.press(float(t), int(b), 0.7)
    ahead = genie.look_ahead(float(times[20]), keys)
    assert len(ahead) == 8 and set(ahead) <= set(keys)
    # changes nothing: the same run continues exactly as a twin that never looked ahead
    twin = PianoGenie.load(ckpt, seed=5)
    for t, b in zip(times[:20], buttons[:20]):
        twin.press(float(t), int(b), 0.7)
    rest = [(float(t), int(b)) for t, b in zip(times[20:], buttons[20:])]
    assert [genie.press(t, b, 0.7) for t, b in rest] == [twin.press(t, b, 0.7) for t, b in rest]
    # and each look-ahead key is what that button gives at temperature 0
    for b in range(8):
        probe = PianoGenie.load(ckpt, seed=5)
        for t, bb in zip(times[:20], buttons[:20]):
            probe.press(float(t), int(bb), 0.7)
        assert probe.press(float(times[20]), b, 0, keys) == ahead[b]


def contour_ratio(buttons, keys) -> float:
    """Of the steps where the button moves, the share where the key moves the same way (or stays)."""
    db, dk = np.diff(buttons), np.diff(keys)
    moves = db != 0
    return float(((np.sign(db[moves]) * dk[moves]) >= 0).mean())


def test_scale_keeps_the_contour_with_the_shipped_model(capsys):
    """Temperature 0, the shipped model, a zig-zag button walk: with "D minor" a higher button still
    gives a higher-or-equal key in most steps. The ratio is printed next to the unconstrained one."""
    rng = np.random.default_rng(0)
    n = 300
    buttons = np.abs(np.cumsum(rng.choice([-2, -1, 1, 2], n)) % 15 - 7)  # rising and falling runs over 0..7
    times = np.cumsum(rng.uniform(0.08, 0.4, n))
    genie = PianoGenie.load(seed=0)
    ratios = {}
    for name, keys in [
        ("unconstrained", None),
        ("D minor", allowed_keys(parse_scale("D minor"))),
        ("C major pentatonic", allowed_keys(parse_scale("C major pentatonic"))),
    ]:
        genie.reset()
        played = [genie.press(float(t), int(b), 0, keys) for t, b in zip(times, buttons)]
        if keys is not None:
            assert set(played) <= set(keys)
        ratios[name] = contour_ratio(buttons, played)
    with capsys.disabled():
        print("\n[contour, shipped model, T=0] " + ", ".join(f"{k}: {v:.3f}" for k, v in ratios.items()))
    assert ratios["unconstrained"] >= 0.8
    assert ratios["D minor"] >= 0.7 and ratios["C major pentatonic"] >= 0.7


def test_decode_cli_scale_and_keys(ckpt, tmp_path, capsys):
    times, buttons = a_performance(120)
    src = tmp_path / "perf.json"
    src.write_text(json.dumps([[float(t - times[0]), int(b)] for t, b in zip(times, buttons)]))
    out = tmp_path / "out.mid"
    pcs = parse_scale("D minor")
    assert main(["decode", str(src), "-o", str(out), "--model", str(ckpt), "--scale", "D minor", "--seed", "1"]) == 0
    assert "keys allowed" in capsys.readouterr().out
    pitches = [n.pitch for n in pretty_midi.PrettyMIDI(str(out)).instruments[0].notes]
    assert pitches and all(p % 12 in pcs for p in pitches)
    # --keys alone, and both together (the scale's pitches inside the range)
    assert main(["decode", str(src), "-o", str(out), "--model", str(ckpt), "--keys", "C4-C5", "--seed", "1"]) == 0
    assert {n.pitch for n in pretty_midi.PrettyMIDI(str(out)).instruments[0].notes} <= set(range(60, 73))
    assert (
        main(
            [
                "decode",
                str(src),
                "-o",
                str(out),
                "--model",
                str(ckpt),
                "--scale",
                "D minor",
                "--keys",
                "50-70",
                "--temperature",
                "1",
                "--seed",
                "1",
            ]
        )
        == 0
    )
    pitches = [n.pitch for n in pretty_midi.PrettyMIDI(str(out)).instruments[0].notes]
    assert all(p % 12 in pcs and 50 <= p <= 70 for p in pitches)
    # the CLI decodes what the Python API decodes
    genie = PianoGenie.load(ckpt, seed=1)
    keys = decode_performance(read_presses(src), genie, 1.0, allowed_keys(pcs, range(50, 71)))
    assert set(pitches) == set((keys + LOWEST_PITCH).tolist())


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scale", "H major"], "unknown scale"),
        (["--keys", "200"], "outside 0..127"),
        (["--keys", "C4-A3"], "runs downwards"),
        (["--scale", "C major", "--keys", "61"], "no piano key"),
    ],
)
def test_decode_cli_bad_scale_or_keys(ckpt, tmp_path, capsys, args, message):
    src = tmp_path / "perf.json"
    src.write_text("[[0, 1], [0.5, 2]]")
    out = tmp_path / "out.mid"
    assert main(["decode", str(src), "-o", str(out), "--model", str(ckpt), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie decode: error:") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_scale_tables_are_sane():
    for name, steps in SCALES.items():
        assert steps[0] == 0 and list(steps) == sorted(set(steps)) and all(0 <= s < 12 for s in steps), name
