"""Replacing outputs: atomic with respect to signals (inside the temporary file's creation and
between the renames of a replace), rebuilds that never drop a user's edit, an interrupt line that
says what was written, names up to NAME_MAX, and a full disk during train reported in one line."""

from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest
from helpers import random_checkpoint

from pianogenie import outputs, site
from pianogenie.cli import main
from pianogenie.outputs import atomic_path
from pianogenie.util import Interrupted

needs_samples = pytest.mark.skipif(
    not (site.SAMPLES_PACKAGE / "audio").is_dir(),
    reason=f"{site.SAMPLES_PACKAGE} absent: run `npm ci --prefix pianogenie/web`",
)


@pytest.fixture
def raising_sigint():
    """SIGINT raises Interrupted (as under the CLI) for the test's duration."""

    def handler(signum, frame):
        raise Interrupted(signum)

    old = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, old)


def tmp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_signal_inside_mkstemp_leaves_no_temporary_file(tmp_path, monkeypatch, raising_sigint):
    real = tempfile.mkstemp

    def mkstemp_then_signal(*args, **kwargs):
        made = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # arrives the instant the file exists, before it is recorded
        return made

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_signal)
    with pytest.raises(Interrupted), atomic_path(tmp_path / "out.mid") as tmp:
        tmp.write_bytes(b"never")
    assert tmp_files(tmp_path) == [] and not (tmp_path / "out.mid").exists()


def test_signal_between_the_renames_of_a_group_completes_it(tmp_path, monkeypatch, raising_sigint):
    real, calls = os.replace, []

    def replace_then_signal(a, b):
        real(a, b)
        calls.append(b)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    with pytest.raises(Interrupted), outputs.atomic_paths(tmp_path / "a.json.gz", tmp_path / "a.report.json") as (x, y):
        x.write_bytes(b"notes")
        y.write_bytes(b"report")
    assert (tmp_path / "a.json.gz").read_bytes() == b"notes" and (tmp_path / "a.report.json").read_bytes() == b"report"
    assert tmp_files(tmp_path) == []


@needs_samples
def test_build_site_replace_is_atomic_with_respect_to_signals(tmp_path, monkeypatch, raising_sigint):
    out = tmp_path / "www"
    assert main(["build-site", str(out)]) == 0
    before = (out / site.MARKER).read_bytes()
    real, calls = os.replace, []

    def replace_then_signal(a, b):
        real(a, b)
        calls.append(b)
        if len(calls) == 1:  # OUT has just been moved aside: the moment the old code lost the site
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "replace", replace_then_signal)
    site_ = site.build(site.default_model_dirs())
    with pytest.raises(Interrupted):
        site.write(site_, out)
    assert (out / "index.html").is_file() and (out / site.MARKER).read_bytes() == before  # the same build again
    assert tmp_files(tmp_path) == []


@needs_samples
def test_rebuild_refuses_files_edited_since_the_build(tmp_path, capsys):
    out = tmp_path / "www"
    assert main(["build-site", str(out)]) == 0
    (out / "index.html").write_text("<h1>my page</h1>")
    (out / "style.css").write_text("body { color: red }")
    capsys.readouterr()
    assert main(["build-site", str(out)]) == 2
    err = capsys.readouterr().err
    assert "index.html" in err and "style.css" in err and "--force" in err and len(err.splitlines()) == 1, err
    assert (out / "index.html").read_text() == "<h1>my page</h1>"
    assert main(["build-site", str(out), "--force"]) == 0
    assert (out / "index.html").read_bytes() == site.build(site.default_model_dirs()).files["index.html"]
    assert main(["build-site", str(out)]) == 0  # unchanged since: replaced without --force


@needs_samples
@pytest.mark.parametrize("top", ["/", "/proc", "/root", "/usr"])
def test_build_site_refuses_a_system_folder_from_its_top_level(top, capsys):
    start = time.perf_counter()
    assert main(["build-site", top]) == 2
    seconds = time.perf_counter() - start
    err = capsys.readouterr().err
    assert err.startswith("pianogenie build-site: error: ") and len(err.splitlines()) == 1, err
    assert seconds < 5, seconds  # decided from the top level, not by walking the tree (a bound, not a benchmark)


def test_interrupt_line_names_what_was_written(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 0, "split": "train", "loss": 1.0}) + "\n")
    real = os.replace

    def replace_then_signal(a, b):
        real(a, b)
        os.kill(os.getpid(), signal.SIGINT)  # held back until the output is in place

    monkeypatch.setattr(os, "replace", replace_then_signal)
    out = tmp_path / "c.png"
    assert main(["plot", str(run), "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert out.is_file() and f"{out} had been written in full" in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def model_and_presses(tmp_path_factory):
    d = tmp_path_factory.mktemp("names")
    (d / "p.csv").write_text("0,1\n0.5,2\n")
    return random_checkpoint(d / "model.pt"), d / "p.csv"


@pytest.mark.parametrize("length", [242, 250, 255])
def test_output_names_up_to_name_max_are_written(tmp_path, model_and_presses, capsys, length):
    ckpt, presses = model_and_presses
    out = tmp_path / ("n" * (length - 4) + ".mid")
    assert main(["decode", str(presses), "-o", str(out), "--model", str(ckpt), "--seed", "1"]) == 0
    assert out.is_file() and tmp_files(tmp_path) == []
    assert main(["decode", str(presses), "-o", str(out), "--model", str(ckpt), "--seed", "2"]) == 0  # replaced


def test_output_name_beyond_name_max_is_one_line(tmp_path, model_and_presses, capsys):
    ckpt, presses = model_and_presses
    out = tmp_path / ("n" * 252 + ".mid")
    assert main(["decode", str(presses), "-o", str(out), "--model", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "256 bytes long" in err and len(err.splitlines()) == 1, err


def test_full_disk_during_train_is_one_line_and_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    from pianogenie import train

    notes = tmp_path / "notes.json.gz"
    perf = [[i * 0.2, 0.1, 30 + i % 20, 64] for i in range(40)]
    notes.write_bytes(gzip.compress(json.dumps({"train": [perf], "validation": [perf]}).encode()))
    run = tmp_path / "run"

    class FullFile:
        def __init__(self, f):
            self.f = f

        def write(self, text):
            return self.f.write(text)

        def flush(self):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self):
            self.f.close()

    real = train.Trainer._open_logs
    monkeypatch.setattr(train.Trainer, "_open_logs", lambda self: (lambda m, tb: (FullFile(m), tb))(*real(self)))
    argv = [
        "train",
        "--data",
        str(notes),
        "--run-dir",
        str(run),
        "--max_num_steps=4",
        "--batch_size=2",
        "--seq_len=8",
        "--model_rnn_dim=8",
        "--eval_frequency=2",
        "--workers",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after the progress bar's lines
    assert err.startswith(f"pianogenie train: error: cannot write in {run}: No space left on device"), err
    assert "--resume" in err or "run the same command again" in err, err
    monkeypatch.setattr(train.Trainer, "_open_logs", real)
    assert main(argv + (["--resume"] if "--resume" in err else [])) == 0  # what the line says works
