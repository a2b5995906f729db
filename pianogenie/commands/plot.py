"""`pianogenie plot`: a run's training curves as an image (pianogenie.plot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pianogenie.outputs import add_force
from pianogenie.plot import DEFAULT_PNG, METRICS_FILE  # (plot imports matplotlib only to draw)
from pianogenie.util import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "plot",
        description="Plot train and validation loss and contour violation ratio against step from "
        f"RUN/{METRICS_FILE}, as written by `pianogenie train`.",
    )
    p.add_argument("run", metavar="RUN", help=f"run directory (or its {METRICS_FILE})")
    p.add_argument(
        "-o",
        "--output",
        metavar="IMAGE",
        help=f"image to write, PNG, PDF or SVG by its suffix (default RUN/{DEFAULT_PNG})",
    )
    p.add_argument("--title", help="figure title (default: the run folder's name)")
    add_force(p, "images")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pianogenie.outputs import check_output, written_by
    from pianogenie.plot import metrics_path, output_format, plot_curves, read_series

    path = metrics_path(args.run)
    out = Path(args.output) if args.output else path.parent / DEFAULT_PNG
    output_format(out)
    check_output(out, flag="-o", inputs=[path], ours=written_by("plot"), what="image", force=args.force)
    series = read_series(path, warn=lambda msg: print(f"pianogenie plot: note: {msg}", file=sys.stderr))
    if not series:
        raise UserError(f"{path} holds no metrics yet (no lines with a step and numeric values)")
    panels = plot_curves(series, out, title=args.title if args.title is not None else path.parent.name)
    print(f"wrote {out} ({', '.join(panels)}; splits {', '.join(sorted({s for s, _ in series}))})")
    return 0
