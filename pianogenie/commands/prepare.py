"""`pianogenie prepare`: any MIDI source -> a notes file or store and its report (pianogenie.prepare
does the work; pianogenie.sources reads the source, whatever its kind)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pianogenie.outputs import add_force
from pianogenie.sources.base import Limits
from pianogenie.util import UserError

DEFAULT_OUTPUT = Path("data/maestro.json.gz")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare",
        description="Parse every performance of a MIDI source into notes (onset s, duration s, key 0..87, "
        "velocity) and write them per split: OUT ending in .json.gz is gzip-compressed JSON in the 2021 "
        "tutorial's format with a report beside it (x.json.gz -> x.report.json); any other OUT is a notes "
        "store folder (binary columns that train reads memory-mapped: for collections of any size) with "
        "report.json inside. The report gives per split the performances and notes written and dropped, "
        "every skipped file and why, the duplicates, and per file the tracks taken. Unreadable files are "
        "skipped with a warning; the exit status stays 0 unless --strict.",
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="SOURCE",
        help="a MAESTRO folder or official zip (its metadata gives the splits), or any folder, zip or "
        "tar(.gz) of MIDI files (.mid/.midi, nested; read in place). "
        "Default: download the official MAESTRO v3 MIDI zip once into the cache folder.",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"notes file (.json.gz) or store folder (any other name) to write (default: {DEFAULT_OUTPUT})",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel parser processes (default: all cores)")
    p.add_argument("--strict", action="store_true", help="fail (and write nothing) if any file has to be skipped")
    p.add_argument("--limit", type=int, default=None, help="prepare only the first N performances of the source")
    g = p.add_argument_group("which notes are the performance")
    g.add_argument(
        "--tracks",
        metavar="NAMES",
        help="take only tracks with these names (comma-separated, any "
        "case), e.g. PIANO,MELODY; default: every non-drum track, merged",
    )
    g.add_argument(
        "--programs",
        metavar="LIST",
        help="take only tracks with these General MIDI programs "
        "(0..127, ranges like 0-7, or families: piano, organ, guitar, bass, strings, ...); with "
        "--tracks, a track matching either is taken. Drum tracks are never taken",
    )
    g = p.add_argument_group("splits, for sources without their own (anything but MAESTRO)")
    g.add_argument(
        "--split-fractions",
        metavar="T,V,E",
        default=None,
        help="train,validation,test fractions of the pieces, hashed by piece name: deterministic, "
        "and a piece never moves when files are added (default: 0.8,0.1,0.1)",
    )
    g.add_argument(
        "--group-by",
        choices=("auto", "folder", "file"),
        default=None,
        help="what a piece is (kept in one split; it depends on the file's path alone, so adding "
        "files never regroups others): auto (default) = the folder holding the file, a folder named "
        "versions (any case) counting as its parent's (POP909's <id>/ with its versions/); a file at "
        "the top of SOURCE is its own piece; folder = exactly the folder holding it; file = each file",
    )
    g.add_argument(
        "--splits",
        type=Path,
        metavar="CSV",
        default=None,
        help="take the splits from a CSV of (path, split) rows, paths relative to SOURCE; files not listed are skipped",
    )
    g.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="leave out MIDI files whose path in SOURCE matches (repeatable), e.g. '*/versions/*'",
    )
    g = p.add_argument_group("condition labels (for models conditioned on key signature, chord, style)")
    g.add_argument(
        "--labels",
        choices=("annotated", "estimated", "none"),
        default="annotated",
        help="store each note's key signature, chord (root, family) and style: annotated (default) = "
        "from the source's annotations where it has them (ASAP *_annotations.txt beside MAESTRO-layout "
        "files: key signatures; POP909 <id>/chord_midi.txt and key_audio.txt: chords and keys), none "
        "elsewhere; estimated = the same, and what no annotation covers estimated (music21's "
        "Krumhansl-Schmuckler key finding over 30 s windows: ~1 s of CPU per 2 minutes of music, "
        "hence not the default; chord templates per beat or 0.5 s); none = no labels. "
        "The report says per file where its labels came from",
    )
    g.add_argument(
        "--style",
        choices=("classical", "pop"),
        default=None,
        help="the style label of every note (default: classical for a MAESTRO-layout source, pop for "
        "any other collection)",
    )
    g = p.add_argument_group("bounds")
    g.add_argument(
        "--max-file-mb",
        type=float,
        default=Limits.max_file_bytes / 2**20,
        help="skip MIDI files larger than this (default: %(default)g)",
    )
    g.add_argument(
        "--max-archive-gb",
        type=float,
        default=Limits.max_archive_bytes / 2**30,
        help="refuse a zip/tar whose members expand to more than this in all (default: %(default)g)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="cache folder for the downloaded zip and load_notes' binary copy of OUT "
        "(default: $PIANOGENIE_CACHE, else ~/.cache/pianogenie)",
    )
    add_force(p, "notes files, stores and reports")
    p.set_defaults(func=run)


def source_options(args: argparse.Namespace):
    """The source options the command line asks for (UserError on bad values)."""
    fractions: tuple[float, ...] = (0.8, 0.1, 0.1)
    if args.split_fractions is not None:
        try:
            fractions = tuple(float(x) for x in args.split_fractions.split(","))
        except ValueError:
            raise UserError(
                f"--split-fractions: expected three numbers like 0.8,0.1,0.1, got {args.split_fractions!r}"
            ) from None
    if not (0 < args.max_file_mb <= 4096) or not (0 < args.max_archive_gb <= 1 << 20):
        raise UserError("--max-file-mb must be in (0, 4096] and --max-archive-gb in (0, 1048576]")
    from pianogenie.sources import SourceOptions, SplitRule

    rule = SplitRule(fractions=fractions, csv=args.splits, group_by=args.group_by or "auto")
    given = args.split_fractions is not None or args.splits is not None or args.group_by is not None
    limits = Limits(max_file_bytes=int(args.max_file_mb * 2**20), max_archive_bytes=int(args.max_archive_gb * 2**30))
    return SourceOptions(splits=rule, limits=limits, exclude=tuple(args.exclude), splits_given=given)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    from pianogenie.midi import TrackSelection

    try:
        tracks = TrackSelection.parse(args.tracks, args.programs)
    except ValueError as e:
        raise UserError(str(e)) from None
    from pianogenie.outputs import check_output, written_by
    from pianogenie.prepare import output_kind, prepare, report_path
    from pianogenie.sources import open_source

    options = source_options(args)
    if output_kind(Path(args.output)) == "json":  # before a download: the full check follows once SOURCE is known
        check_output(args.output, flag="-o", inputs=[args.source], ours=written_by("prepare"), force=args.force)
    else:
        check_output(args.output, flag="-o", folder=True)
    if args.cache_dir is not None:  # for everything this run caches, as $PIANOGENIE_CACHE would
        from pianogenie.download import CACHE_ENV

        os.environ[CACHE_ENV] = str(args.cache_dir)
    if args.source is None:
        from pianogenie.download import fetch_maestro

        source_path = fetch_maestro()
    else:
        source_path = Path(args.source)
    source = open_source(source_path, options)
    try:
        report = prepare(
            source,
            args.output,
            workers=args.workers,
            strict=args.strict,
            limit=args.limit,
            tracks=tracks,
            warn=_warn,
            force=args.force,
            labels=args.labels,
            style=None if args.style is None else harmony_style(args.style),
        )
    finally:
        source.close()
    for split, s in report.splits.items():
        dropped = s["dropped_out_of_range"] + s["dropped_non_positive_duration"]
        dup = f", {s['duplicates']} duplicates" if "duplicates" in s else ""
        print(
            f"{split}: {s['performances']} performances, {s['notes']} notes ({dropped} dropped, "
            f"{s['skipped']} files skipped{dup})"
        )
    where = report_path(args.output) if output_kind(Path(args.output)) == "json" else Path(args.output) / "report.json"
    print(f"wrote {args.output} and {where} in {report.seconds:.1f} s")
    return 0


def harmony_style(name: str) -> int:
    from pianogenie.harmony import style_id

    return style_id(name)


def _warn(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"pianogenie prepare: warning: {message}", file=sys.stderr)  # above the progress bar
