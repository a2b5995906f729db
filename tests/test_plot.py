"""`pianogenie plot`: curves from metrics.jsonl to PNG, and clear errors for missing or empty metrics."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np

from pianogenie.cli import main
from pianogenie.plot import read_series


def write_metrics(run, records, tail=""):
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return run


def a_run(run):
    records = []
    for step in range(0, 2048, 128):
        records.append(
            {
                "step": step,
                "split": "train",
                "loss": 4.0 / (1 + step / 500),
                "loss_recons": 3.5 / (1 + step / 500),
                "contour_violation_ratio": 0.5 / (1 + step / 300),
                "lr": 3e-4,
                "time": 1.5,
            }
        )
        if step % 512 == 0:
            records.append(
                {
                    "step": step,
                    "split": "validation",
                    "loss": 4.2 / (1 + step / 600),
                    "contour_violation_ratio": 0.55 / (1 + step / 400),
                    "perplexity": 20.0,
                }
            )
    return write_metrics(run, records, tail='{"step": 2048, "split": "tr')  # a line being written


def test_plot_writes_png_with_both_panels(tmp_path, capsys):
    run = a_run(tmp_path / "run")
    assert main(["plot", str(run)]) == 0
    out = capsys.readouterr()
    assert "loss" in out.out and "contour violation ratio" in out.out and "skipped 1 malformed" in out.err
    png = run / "training_curves.png"
    img = matplotlib.image.imread(png)
    assert img.shape[1] > 2 * img.shape[0]  # two panels side by side
    assert img[..., :3].std() > 0.05  # something was drawn
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_plot_reads_series_per_split_and_key(tmp_path, capsys):
    notes = []
    series = read_series(a_run(tmp_path / "run") / "metrics.jsonl", warn=notes.append)
    assert len(notes) == 1 and "skipped 1 malformed line" in notes[0]
    read_series(a_run(tmp_path / "run") / "metrics.jsonl")  # the library prints nothing itself
    assert capsys.readouterr() == ("", "")
    assert len(series[("train", "loss")][0]) == 16
    assert series[("validation", "loss")][0] == [0.0, 512.0, 1024.0, 1536.0]
    assert ("validation", "loss_recons") not in series
    np.testing.assert_allclose(series[("train", "contour_violation_ratio")][1][0], 0.5)


def test_plot_only_losses_and_custom_output(tmp_path, capsys):
    run = write_metrics(tmp_path / "run", [{"step": s, "split": "train", "loss": 1.0 / (s + 1)} for s in range(5)])
    out = tmp_path / "figs" / "curves.png"
    assert main(["plot", str(run), "-o", str(out)]) == 0
    assert "contour" not in capsys.readouterr().out
    img = matplotlib.image.imread(out)
    assert img.shape[1] < 2 * img.shape[0]  # one panel
    assert not (run / "training_curves.png").exists()


def test_plot_missing_empty_or_useless_metrics(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nope")]) == 2
    assert "metrics.jsonl does not exist" in capsys.readouterr().err
    run = write_metrics(tmp_path / "empty", [])
    assert main(["plot", str(run)]) == 2
    assert "holds no metrics" in capsys.readouterr().err
    run = write_metrics(tmp_path / "other", [{"step": 1, "split": "train", "lr": 0.1}])
    assert main(["plot", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("pianogenie plot: error:") and "no loss or contour" in err
    assert not any(p.suffix == ".png" or p.name.startswith(".") for r in tmp_path.iterdir() for p in r.iterdir())


def test_plot_format_follows_the_suffix_and_nothing_is_clobbered(tmp_path, capsys):
    run = a_run(tmp_path / "run")
    for suffix, magic in [(".pdf", b"%PDF"), (".svg", b"<?xml"), (".PNG", b"\x89PNG")]:
        assert main(["plot", str(run), "-o", str(tmp_path / f"c{suffix}")]) == 0
        assert (tmp_path / f"c{suffix}").read_bytes().startswith(magic)
    capsys.readouterr()
    for out, words in [
        (tmp_path / "c.jpg", "unknown image format '.jpg'"),
        (run / "metrics.jsonl", "unknown image"),
        (tmp_path, "unknown image format"),
        (tmp_path / "d.png", "is a folder"),
    ]:
        if out.name == "d.png":
            out.mkdir()
        assert main(["plot", str(run), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("pianogenie plot: error: ") and words in err and len(err.splitlines()) == 1, err
    (tmp_path / "mine.png").write_text("not an image")
    assert main(["plot", str(run), "-o", str(tmp_path / "mine.png")]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and "is not an image this command wrote" in err, err


def test_plot_of_single_points_warns_nothing(tmp_path, capsys):
    import warnings

    run = write_metrics(
        tmp_path / "run",
        [
            {"step": 0, "split": "train", "loss": 1.0},
            {"step": 0, "split": "validation", "contour_violation_ratio": 0.2},
        ],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(["plot", str(run)]) == 0
    assert "Warning" not in capsys.readouterr().err


def test_plot_skips_deeply_nested_lines(tmp_path, capsys):
    run = write_metrics(tmp_path / "run", [{"step": 0, "split": "train", "loss": 1.0}], tail="[" * 100000 + "\n")
    assert main(["plot", str(run)]) == 0
    assert "skipped 1 malformed" in capsys.readouterr().err
