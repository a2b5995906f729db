"""`pianogenie plot RUN`: training curves (loss, contour violation ratio vs step) from `RUN/metrics.jsonl`.

Each line of metrics.jsonl is a JSON object with `step`, `split` ("train", "validation", ...) and
metric values. One panel per metric family that is present: losses (every `loss*` key) and contour
violation ratios (every `contour_violation*` key); one colour per split, one line style per key.
A partly written last line (a run still training) is skipped. Drawn with matplotlib's Agg canvas
(no display needed) and written atomically.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from pianogenie.outputs import atomic_path, image_metadata
from pianogenie.util import UserError

METRICS_FILE = "metrics.jsonl"
DEFAULT_PNG = "training_curves.png"
# panel title -> predicate on metric names
PANELS = {
    "loss": lambda key: key.startswith("loss"),
    "contour violation ratio": lambda key: key.startswith("contour_violation"),
    "velocity MAE (model and baselines)": lambda key: (
        key.startswith("velocity_mae") and not key.endswith("_vs_best_baseline")
    ),
}
FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}  # output suffix -> matplotlib format
SPLIT_COLORS = {"train": "tab:blue", "validation": "tab:orange"}
STYLES = ["-", "--", ":", "-.", (0, (1, 3))]

Series = dict[tuple[str, str], tuple[list[float], list[float]]]  # (split, key) -> (steps, values)


def metrics_path(run: str | Path) -> Path:
    run = Path(run)
    path = run if run.is_file() else run / METRICS_FILE
    if not path.is_file():
        raise UserError(f"no metrics found: {path} does not exist (pass a run directory written by `pianogenie train`)")
    return path


def read_series(path: Path, warn: Callable[[str], None] | None = None) -> Series:
    """Every numeric metric per (split, key), in file order; malformed lines are skipped, and
    `warn` (if given) is told how many."""
    series: Series = defaultdict(lambda: ([], []))
    bad = 0
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            step, split = rec["step"], str(rec.get("split", "train"))
            step = float(step)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError):
            bad += 1
            continue
        for key, value in rec.items():
            if key in ("step", "split") or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                steps, values = series[(split, key)]
                steps.append(step)
                values.append(float(value))
    if bad and warn is not None:
        warn(f"skipped {bad} malformed line(s) in {path}")
    return dict(series)


def plot_curves(series: Series, out: str | Path, title: str = "") -> list[str]:
    """Draw one panel per metric family present into `out` (PNG, PDF or SVG by its suffix);
    returns the panel titles drawn."""
    import warnings

    with warnings.catch_warnings():
        # one point per curve, or a flat curve: matplotlib and numpy warn about axis limits and
        # empty means; the picture is still right, so the user sees no warning
        warnings.simplefilter("ignore")
        return _plot_curves(series, out, title)


def output_format(out: str | Path) -> str:
    fmt = FORMATS.get(Path(out).suffix.lower())
    if fmt is None:
        raise UserError(
            f"-o {out}: unknown image format {Path(out).suffix or '(no suffix)'!r}; use one of {', '.join(FORMATS)}"
        )
    return fmt


def _plot_curves(series: Series, out: str | Path, title: str = "") -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = [(name, sorted({key for _, key in series if pred(key)})) for name, pred in PANELS.items()]
    panels = [(name, keys) for name, keys in panels if keys]
    if not panels:
        raise UserError("the metrics hold no loss or contour_violation values to plot")
    splits = sorted({split for split, _ in series}, key=lambda s: (s not in SPLIT_COLORS, s))
    fig = Figure(figsize=(6.4 * len(panels), 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    for ax, (name, keys) in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels):
        for i, split in enumerate(splits):
            color = SPLIT_COLORS.get(split, f"C{i + 2}")
            for j, key in enumerate(keys):
                if (split, key) not in series:
                    continue
                steps, values = series[(split, key)]
                marker = "o" if len(steps) < 30 and split != "train" else None
                ax.plot(
                    steps,
                    values,
                    linestyle=STYLES[j % len(STYLES)],
                    color=color,
                    marker=marker,
                    markersize=3,
                    label=f"{split} {key}",
                    linewidth=1.2,
                )
        ax.set_xlabel("step")
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    out = Path(out)
    fmt = output_format(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=110, metadata=image_metadata(fmt, "plot"))
    return [name for name, _ in panels]
