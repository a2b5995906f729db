"""`pianogenie prepare`: MAESTRO MIDI -> a notes file and its report (pianogenie.prepare does the work)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pianogenie.outputs import add_force
from pianogenie.util import UserError

DEFAULT_OUTPUT = Path("data/maestro.json.gz")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        description="Parse every performance of a MAESTRO dataset into notes (onset s, duration s, "
        "key 0..87, velocity) and write them, per split, as gzip-compressed JSON in the 2021 tutorial's "
        "format, with a report beside it (maestro.json.gz -> maestro.report.json: per split the performances "
        "and notes written, the notes dropped, every skipped file and why). Unreadable or missing files are "
        "skipped with a warning; the exit status stays 0 unless --strict.",
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="MAESTRO folder (v2 or v3 metadata) or official MAESTRO MIDI zip (read in place). "
        "Default: download the official MAESTRO v3 MIDI zip once into the cache folder.",
    )
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"notes file to write (default: {DEFAULT_OUTPUT})")
    p.add_argument("--workers", type=int, default=None, help="parallel parser processes (default: all cores)")
    p.add_argument("--strict", action="store_true", help="fail (and write nothing) if any file has to be skipped")
    p.add_argument("--limit", type=int, default=None, help="prepare only the first N performances of the metadata")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder for the downloaded zip and load_notes' binary copy of OUT "
        "(default: $PIANOGENIE_CACHE, else ~/.cache/pianogenie)",
    )
    add_force(p, "notes files and reports")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pianogenie.maestro import find_source
    from pianogenie.outputs import check_output, written_by
    from pianogenie.prepare import prepare, report_path

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    check_output(args.output, flag="-o", inputs=[args.source], ours=written_by("prepare"),
                 force=args.force)  # before a download: the full check follows once SOURCE is known
    if args.cache_dir is not None:  # for everything this run caches, as $PIANOGENIE_CACHE would
        from pianogenie.download import CACHE_ENV

        os.environ[CACHE_ENV] = str(args.cache_dir)
    if args.source is None:
        from pianogenie.download import fetch_maestro

        source_path = fetch_maestro()
    else:
        source_path = Path(args.source)
    source = find_source(source_path)
    report = prepare(source, args.output, workers=args.workers, strict=args.strict, limit=args.limit,
                     warn=_warn, force=args.force)
    for split, s in report.splits.items():
        dropped = s["dropped_out_of_range"] + s["dropped_non_positive_duration"]
        print(f"{split}: {s['performances']} performances, {s['notes']} notes ({dropped} dropped, {s['skipped']} files skipped)")
    print(f"wrote {args.output} and {report_path(args.output)} in {report.seconds:.1f} s")
    return 0


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"pianogenie prepare: warning: {message}", file=sys.stderr)  # above the progress bar
