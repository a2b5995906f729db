"""Every input has a bound, and bad input is one line `pianogenie CMD: error: ...`, exit 2: device
files and oversized files, JSON depth and number length, note and press counts, allocation limits
of a config, damaged checkpoints on --resume, hostile gold files, values that were silently
accepted (huge temperatures, unknown JSON keys, fractional gold buttons, --config ""), and the
lines that are not ours (argparse's usage block, torch's and numpy's warnings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import torch

from pianogenie.cli import main
from pianogenie.genie import PianoGenie


def one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if ": note: " not in line]
    assert len(lines) == 1 and lines[0].startswith(f"pianogenie {command}: error: "), err
    assert "usage:" not in err and "Traceback" not in err and "Warning" not in err, err
    return lines[0]


def train_argv(i, run, *extra):
    return [
        "train",
        "--data",
        str(i["notes"]),
        "--run-dir",
        str(run),
        "--max_num_steps=2",
        "--batch_size=2",
        "--seq_len=8",
        "--model_rnn_dim=8",
        "--eval_frequency=1",
        "--workers",
        "1",
        *extra,
    ]


# --- device files and size caps --------------------------------------------------------------------

DEVICE_CASES = {
    "decode INPUT": lambda i, dev: ["decode", dev, "-o", str(i["dir"] / "o.mid"), "--model", str(i["ckpt"])],
    "evaluate --gold": lambda i, dev: ["evaluate", str(i["ckpt"]), "--gold", dev],
    "evaluate --data": lambda i, dev: ["evaluate", str(i["ckpt"]), "--data", dev],
    "train --config": lambda i, dev: [
        "train",
        "--data",
        str(i["notes"]),
        "--run-dir",
        str(i["dir"] / "r"),
        "--config",
        dev,
    ],
    "train --data": lambda i, dev: ["train", "--data", dev, "--run-dir", str(i["dir"] / "r")],
    "export --data": lambda i, dev: ["export", str(i["ckpt"]), "--out", str(i["dir"] / "x"), "--data", dev],
}


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
@pytest.mark.parametrize("dev", ["/dev/zero", "/dev/urandom"])
@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_device_files_are_refused_before_reading(inputs, capsys, case, dev):
    argv = DEVICE_CASES[case](inputs, dev)
    assert main(argv) == 2
    assert "not a regular file" in one_line(capsys, argv[0])


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_a_fifo_with_no_writer_is_refused_not_waited_on(inputs, tmp_path, case):
    """Opening a FIFO for reading blocks until a writer comes: the command must refuse it instead
    (in a subprocess with a timeout, so that a regression fails instead of hanging the suite)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    argv = DEVICE_CASES[case](inputs, str(fifo))
    proc = subprocess.run([sys.executable, "-m", "pianogenie", *argv], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"pianogenie {argv[0]}: error: ") and "not a regular file" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_oversized_input_is_refused_naming_the_cap(inputs, tmp_path, capsys):
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: costs nothing to make
    assert main(["decode", str(big), "-o", str(tmp_path / "o.mid"), "--model", str(inputs["ckpt"])]) == 2
    assert "at most 64 MB" in one_line(capsys, "decode")


@pytest.mark.parametrize(
    "content, says",
    [
        ("[[0, 1e999]]", "out of range"),
        ("[[0, 1" + "0" * 400 + "]]", "characters"),
        ("[" * 50 + "]" * 50, "nested deeper"),
        ('[{"time": 0, "button": 1, "velocty": 90}]', "unknown key"),
        ('{"presses": [[0, NaN]]}', "NaN"),
    ],
)
def test_decode_json_bounds_and_unknown_keys(inputs, tmp_path, capsys, content, says):
    src = tmp_path / "in.json"
    src.write_text(content)
    assert main(["decode", str(src), "-o", str(tmp_path / "o.mid"), "--model", str(inputs["ckpt"])]) == 2
    assert says in one_line(capsys, "decode")


def test_press_count_is_capped(inputs, tmp_path, capsys, monkeypatch):
    from pianogenie import decode

    monkeypatch.setattr(decode, "MAX_PRESSES", 50)
    assert main(["decode", str(inputs["csv"]), "-o", str(tmp_path / "o.mid"), "--model", str(inputs["ckpt"])]) == 2
    assert "at most 50" in one_line(capsys, "decode")


# --- silently accepted before ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        ["--temperature", "3e38"],
        ["--temperature", "1e39", "--scale", "C major"],
        ["--keys", "6" * 5000],
        ["--scale", "C " + "x" * 5000],
    ],
)
def test_decode_values_that_were_silently_accepted(inputs, tmp_path, capsys, extra):
    argv = ["decode", str(inputs["csv"]), "-o", str(tmp_path / "o.mid"), "--model", str(inputs["ckpt"]), *extra]
    assert main(argv) == 2
    one_line(capsys, "decode")
    assert not (tmp_path / "o.mid").exists()


@pytest.mark.parametrize("temperature", [1e4, 3e38, float("inf")])
def test_press_keeps_to_its_keys_or_refuses_the_temperature(inputs, temperature):
    genie = PianoGenie.load(inputs["ckpt"], seed=1)
    keys = list(range(39, 44))
    if temperature > 1e4:
        with pytest.raises(ValueError, match="temperature"):
            genie.press(0.0, 3, temperature, keys)
        return
    played = {genie.press(0.1 * i, i % 8, temperature, keys) for i in range(200)}
    assert played <= set(keys), played


@pytest.mark.parametrize(
    "melody, says",
    [
        ({"midi_pitches": [60, 62], "buttons_1_to_8": [True, 2]}, "integers"),
        ({"midi_pitches": [60, 62], "buttons_1_to_8": [1.5, 2]}, "integers"),
        ({"midi_pitches": [60, 62], "buttons_1_to_8": ["1", 2]}, "integers"),
        ({"midi_pitches": [60.7, 62], "buttons_1_to_8": [1, 2]}, "integers"),
        ({"midi_pitches": ["60", 62], "buttons_1_to_8": [1, 2]}, "integers"),
        ({"midi_pitches": [[60, 61], 62], "buttons_1_to_8": [1, 2]}, "nested deeper"),
        ({"midi_pitches": [60, 62], "buttons_1_to_8": [10**29, 2]}, "buttons in 1..8"),
        ({"midi_pitches": [60, 62], "buttons_1_to_8": [10**49, 2]}, "characters"),
        ({"midi_pitches": [60] * 20_001, "buttons_1_to_8": [1] * 20_001}, "at most"),
    ],
)
def test_hostile_gold_melodies(inputs, tmp_path, capsys, melody, says):
    gold = tmp_path / "gold.json"
    gold.write_text(json.dumps({"melodies": [melody]}))
    assert main(["evaluate", str(inputs["ckpt"]), "--gold", str(gold)]) == 2
    assert says in one_line(capsys, "evaluate")


def test_gold_folder_nesting_and_delta_time(inputs, tmp_path, capsys):
    assert main(["evaluate", str(inputs["ckpt"]), "--gold", str(tmp_path)]) == 2
    assert "is a folder" in one_line(capsys, "evaluate")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["evaluate", str(inputs["ckpt"]), "--gold", str(deep)]) == 2
    assert "nested deeper" in one_line(capsys, "evaluate")
    for value in ("inf", "nan", "-1"):
        assert main(["evaluate", str(inputs["ckpt"]), "--gold", str(inputs["gold"]), f"--gold-delta-time={value}"]) == 2
        assert "--gold-delta-time" in one_line(capsys, "evaluate")


def test_empty_config_name_is_refused(inputs, tmp_path, capsys):
    assert main(train_argv(inputs, tmp_path / "run", "--config", "")) == 2
    assert "--config is empty" in one_line(capsys, "train")
    assert not (tmp_path / "run").exists()


# --- allocation limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "override",
    [
        "--velocity_hidden=10000000",
        "--model_rnn_dim=65536",
        "--batch_size=1048576",
        "--seq_len=1048576",
        "--model_rnn_dim=8192 --model_rnn_num_layers=16",
        "--batch_size=65536 --seq_len=65536",
        "--velocity_bins=32 --velocity_hidden=8192 --batch_size=8192 --seq_len=8192",
        "--max_num_steps=" + "9" * 400,
    ],
)
def test_sizes_that_cannot_be_allocated_are_refused(inputs, tmp_path, capsys, override):
    assert main(train_argv(inputs, tmp_path / "run") + override.split()) == 2
    assert "invalid config" in one_line(capsys, "train") or "config" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- damaged checkpoints on --resume ---------------------------------------------------------------


def _damage(state: dict, how: str) -> dict:
    state = dict(state)
    if how == "no model":
        del state["model"]
    elif how == "wrong shapes":
        state["model"] = {k: torch.zeros(3, 3) for k in state["model"]}
    elif how == "garbage optimizer":
        state["optimizer"] = {
            "state": {0: {"exp_avg": torch.zeros(7)}},
            "param_groups": state["optimizer"]["param_groups"],
        }
    elif how == "optimizer not a mapping":
        state["optimizer"] = [1, 2, 3]
    elif how == "garbage rng":
        state["rng"] = {"torch": torch.zeros(3, dtype=torch.uint8), "numpy": "not json"}
    elif how == "garbage scheduler":
        state["scheduler"] = {"last_epoch": "x", "_step_count": None, "base_lrs": "no"}
    elif how == "step a string":
        state["step"] = "2"
    elif how == "negative step":
        state["step"] = -5
    elif how == "nan best":
        state["best_val_loss"] = float("nan")
    elif how == "nan weights":
        state["model"] = {k: torch.full_like(v, float("nan")) for k, v in state["model"].items()}
    return state


DAMAGES = [
    "no model",
    "wrong shapes",
    "garbage optimizer",
    "optimizer not a mapping",
    "garbage rng",
    "garbage scheduler",
    "step a string",
    "negative step",
    "nan best",
    "nan weights",
]


@pytest.fixture(scope="module")
def finished_run(inputs, tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main(train_argv(inputs, run)) == 0
    return run


@pytest.mark.slow
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_last_pt_on_resume_is_one_line(inputs, finished_run, tmp_path, capsys, how):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    state = torch.load(run / "last.pt", weights_only=True)
    torch.save(_damage(state, how), run / "last.pt")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(train_argv(inputs, run, "--resume", "--max_num_steps=4")) == 2
    one_line(capsys, "train")
    after = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    assert after == before  # cfg.json, metrics.jsonl and the checkpoints as they were


def test_pickle_protocol_4_checkpoint_is_refused_for_the_right_reason_without_a_warning(inputs, tmp_path, capsys):
    state = torch.load(inputs["ckpt"], weights_only=True)
    p4 = tmp_path / "p4.pt"
    torch.save(state, p4, pickle_protocol=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["decode", str(inputs["csv"]), "-o", str(tmp_path / "o.mid"), "--model", str(p4)]) == 2
    line = one_line(capsys, "decode")
    assert "pickle protocol 4" in line and "objects other than tensors" not in line, line
    assert not [w for w in caught if "pickle" in str(w.message)], [str(w.message) for w in caught]


# --- lines that are not ours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, says",
    [
        (["decode", "in.csv", "-o", "o.mid", "--bogus"], "unrecognized arguments: --bogus"),
        (["decode"], "required"),
        (["decode", "in.csv", "-o", "o.mid", "--temperature", "warm"], "invalid float value"),
        (["evaluate", "m.pt", "--protocol", "nope"], "invalid choice"),
    ],
)
def test_argparse_errors_are_one_line_with_the_command(argv, says, capsys):
    assert main(argv) == 2
    assert says in one_line(capsys, argv[0])


def test_library_warnings_do_not_leak(monkeypatch, capsys):
    import numpy as np

    import pianogenie.commands.plot as plot

    def noisy(args):
        np.log(np.zeros(1))  # numpy's "divide by zero" RuntimeWarning
        warnings.warn("a library's warning", UserWarning, stacklevel=2)
        return 0

    monkeypatch.setattr(plot, "run", noisy)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="warn"):
            assert main(["plot", "somewhere"]) == 0
    assert caught == [] and capsys.readouterr().err == ""
