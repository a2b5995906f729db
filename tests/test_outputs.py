"""Every command that writes, against outputs it cannot write: one line naming the path and the
reason, exit status 2, nothing partial left behind."""

from __future__ import annotations

import errno
import os

import pytest

from pianogenie.cli import main

COMMANDS = {
    "prepare": lambda i, out: ["prepare", str(i["maestro"]), "-o", str(out / "n.json.gz"), "--workers", "1"],
    "decode": lambda i, out: ["decode", str(i["csv"]), "-o", str(out / "o.mid"), "--model", str(i["ckpt"])],
    "export": lambda i, out: ["export", str(i["ckpt"]), "--out", str(out / "tfjs")],
    "evaluate": lambda i, out: [
        "evaluate",
        str(i["ckpt"]),
        "--data",
        str(i["notes"]),
        "--split",
        "validation",
        "--out",
        str(out / "r.json"),
    ],
    "plot": lambda i, out: ["plot", str(i["run"]), "-o", str(out / "c.png")],
    "train": lambda i, out: [
        "train",
        "--data",
        str(i["notes"]),
        "--run-dir",
        str(out / "run"),
        "--max_num_steps=1",
        "--batch_size=2",
        "--seq_len=8",
        "--model_rnn_dim=8",
        "--eval_frequency=1",
        "--workers",
        "1",
    ],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_full_disk_is_one_line_and_leaves_nothing(inputs, tmp_path, monkeypatch, capsys, command):
    out = tmp_path / "out"
    out.mkdir()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)  # every output's final rename: the disk filled up
    assert main(COMMANDS[command](inputs, out)) == 2
    # (decode with a model without a velocity head also prints its one-line note first)
    err = "".join(line for line in capsys.readouterr().err.splitlines(keepends=True) if ": note: " not in line)
    assert err.startswith(f"pianogenie {command}: error: cannot write {out}") and "No space left" in err, err
    assert len(err.splitlines()) == 1, err
    leftovers = [p for p in out.rglob("*") if p.is_file() and p.suffix in (".tmp", ".mid", ".png", ".gz", ".json")]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_parent_that_is_a_file_is_one_line(inputs, tmp_path, capsys, command):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    assert main(COMMANDS[command](inputs, blocker)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"pianogenie {command}: error: ") and str(blocker) in err and "not a folder" in err, err
    assert len(err.splitlines()) == 1 and blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("what, says", [("image", "not an image"), ("MIDI file", "not a MIDI file")])
def test_a_look_alike_is_named_with_its_article(tmp_path, what, says):
    from pianogenie.outputs import check_output
    from pianogenie.util import UserError

    (tmp_path / "x").write_text("someone else's")
    with pytest.raises(UserError, match=f"exists and is {says} this command wrote"):
        check_output(tmp_path / "x", ours=lambda path: False, what=what)
