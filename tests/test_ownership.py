"""Ownership is proof: every command refuses to replace a look-alike of its own output (a real file
of the same format that it did not write), replaces its own output on a re-run, and replaces the
look-alike with --force."""

from __future__ import annotations

import json

import pytest
from helpers import foreign_image, foreign_midi, foreign_tarball

from pianogenie.cli import main
from pianogenie.outputs import written_by

# command -> (argv for output `out`, the look-alike's name, its bytes)
CASES = {
    "plot-png": (lambda i, out: ["plot", str(i["run"]), "-o", str(out)], "holiday.png", lambda: foreign_image("png")),
    "plot-pdf": (lambda i, out: ["plot", str(i["run"]), "-o", str(out)], "thesis.pdf", lambda: foreign_image("pdf")),
    "plot-svg": (lambda i, out: ["plot", str(i["run"]), "-o", str(out)], "logo.svg", lambda: foreign_image("svg")),
    "decode": (
        lambda i, out: ["decode", str(i["csv"]), "-o", str(out), "--model", str(i["ckpt"])],
        "my_song.mid",
        foreign_midi,
    ),
    "prepare": (
        lambda i, out: ["prepare", str(i["maestro"]), "-o", str(out), "--workers", "1"],
        "backup.json.gz",
        foreign_tarball,
    ),
    "prepare-report": (
        lambda i, out: ["prepare", str(i["maestro"]), "-o", str(out.with_name("x.json.gz")), "--workers", "1"],
        "x.report.json",
        lambda: json.dumps({"source": "mine", "output": "mine", "splits": {}}).encode(),
    ),
    "evaluate": (
        lambda i, out: [
            "evaluate",
            str(i["ckpt"]),
            "--data",
            str(i["notes"]),
            "--split",
            "validation",
            "--out",
            str(out),
        ],
        "results.json",
        lambda: json.dumps({"model": "mine", "gold": {}, "data": "x", "split": "validation"}).encode(),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_look_alike_is_refused_own_output_replaced_force_replaces(inputs, tmp_path, capsys, case):
    argv, name, content = CASES[case]
    lookalike = tmp_path / name
    data = content()
    lookalike.write_bytes(data)
    assert main(argv(inputs, lookalike)) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and "--force" in err and len(err.splitlines()) == 1, err
    assert lookalike.read_bytes() == data
    assert main(argv(inputs, lookalike) + ["--force"]) == 0
    capsys.readouterr()
    command = argv(inputs, lookalike)[0]
    assert lookalike.read_bytes() != data and written_by(command)(lookalike)
    assert main(argv(inputs, lookalike)) == 0  # its own output: a re-run replaces it


def test_export_refuses_a_folder_holding_another_export(inputs, tmp_path, capsys):
    other = tmp_path / "tfjs"
    other.mkdir()
    files = {"cfg.json": b'{"num_buttons": 8}', "weights_manifest.json": b"[]", "group1-shard1of1.bin": b"x" * 8}
    for n, b in files.items():
        (other / n).write_bytes(b)
    assert main(["export", str(inputs["ckpt"]), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "refusing to write into it" in err and len(err.splitlines()) == 1, err
    assert {n: (other / n).read_bytes() for n in files} == files
    assert main(["export", str(inputs["ckpt"]), "--out", str(other), "--force"]) == 0
    assert main(["export", str(inputs["ckpt"]), "--out", str(other)]) == 0  # now its own


@pytest.mark.parametrize("holding", ["tutorial", "pretrained", "metrics"])
def test_train_refuses_a_folder_holding_another_model(inputs, tmp_path, capsys, holding):
    other = tmp_path / "pytorch"
    other.mkdir()
    files = {
        "tutorial": {"cfg.json": b'{"seq_len": 128}', "model.pt": b"PK"},
        "pretrained": {"cfg.json": b'{"seq_len": 128}', "best.pt": b"PK"},
        "metrics": {"metrics.jsonl": b'{"step": 1}\n'},
    }[holding]
    for n, b in files.items():
        (other / n).write_bytes(b)
    argv = [
        "train",
        "--data",
        str(inputs["notes"]),
        "--run-dir",
        str(other),
        "--max_num_steps=1",
        "--batch_size=2",
        "--seq_len=8",
        "--model_rnn_dim=8",
        "--eval_frequency=1",
        "--workers",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to write into it" in err and len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in other.iterdir()} == files  # cfg.json, metrics.jsonl untouched
    assert main(argv + ["--resume"]) == 2
    assert {p.name: p.read_bytes() for p in other.iterdir()} == files


def test_train_reruns_and_resumes_its_own_run(inputs, tmp_path, capsys):
    run = tmp_path / "run"
    argv = [
        "train",
        "--data",
        str(inputs["notes"]),
        "--run-dir",
        str(run),
        "--max_num_steps=1",
        "--batch_size=2",
        "--seq_len=8",
        "--model_rnn_dim=8",
        "--eval_frequency=1",
        "--workers",
        "1",
    ]
    assert main(argv) == 0
    assert written_by("train")(run / "pianogenie-run.json")
    assert main(argv + ["--resume", "--max_num_steps=2"]) == 0


def test_prepare_store_folder_needs_its_mark(inputs, tmp_path, capsys):
    store = tmp_path / "notes"
    argv = ["prepare", str(inputs["maestro"]), "-o", str(store), "--workers", "1"]
    assert main(argv) == 0 and written_by("prepare")(store / "report.json")
    assert main(argv) == 0  # its own store: replaced
    report = json.loads((store / "report.json").read_text())
    del report["written_by"]  # the same store, but with nothing to prove who wrote it
    (store / "report.json").write_text(json.dumps(report))
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to replace it" in err and len(err.splitlines()) == 1, err
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    assert main(argv + ["--force"]) == 0
