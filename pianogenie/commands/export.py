"""`pianogenie export`: a trained decoder -> TensorFlow.js weights for the app (pianogenie.export),
or with `--format magenta` a checkpoint folder for @magenta/music's PianoGenie (pianogenie.magenta)."""

from __future__ import annotations

import argparse

from pianogenie.outputs import add_force
from pianogenie.util import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        description="Write the decoder of RUN_OR_CHECKPOINT in the TensorFlow.js weights format "
        "(weights_manifest.json + shards, loadable by tf.io.loadWeights), with cfg.json for the app "
        "and test.json, a golden 128-step case for the JS tests. Then: pianogenie serve --model DIR. "
        "With --format magenta: a checkpoint folder that @magenta/music's PianoGenie loads instead.",
    )
    p.add_argument(
        "checkpoint",
        metavar="RUN_OR_CHECKPOINT",
        help="a run folder (uses best.pt), one of our checkpoints, or the tutorial's model.pt",
    )
    p.add_argument(
        "--out", required=True, metavar="DIR", help="folder to write (replaced if it holds a previous export)"
    )
    p.add_argument(
        "--data",
        metavar="NOTES",
        help="notes file from `pianogenie prepare`: the golden case uses a real validation "
        "performance (default: a deterministic synthetic one)",
    )
    p.add_argument(
        "--name",
        metavar="TEXT",
        help="the model's name in the app's genie picker (cfg.json name, at most 80 characters), e.g. \"Pop genie\"",
    )
    p.add_argument(
        "--description",
        metavar="TEXT",
        help="what it was trained on, shown under its name (cfg.json description, at most 300 characters)",
    )
    add_force(p, "files of an export folder")
    p.add_argument(
        "--format",
        choices=("tfjs", "magenta"),
        default="tfjs",
        help="tfjs (default): for this app; magenta: a checkpoint folder for @magenta/music's "
        "PianoGenie class (8 buttons, 2 x 128 LSTM; keys only, see docs/magenta.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format == "magenta":
        if args.data is not None:
            raise UserError("--data is for the tfjs format's golden case; --format magenta writes none")
        if args.name is not None or args.description is not None:
            raise UserError("--name and --description go into the tfjs format's cfg.json; --format magenta writes none")
        from pianogenie.magenta import export_magenta

        written = export_magenta(args.checkpoint, args.out, force=args.force)
        for notice in written["notices"]:
            print(f"pianogenie export: note: {notice}")
        print(f"exported decoder to {args.out} for @magenta/music: new mm.{written['class']}(URL of {args.out})")
        return 0
    from pianogenie.export import export

    golden = export(
        args.checkpoint, args.out, args.data, force=args.force, name=args.name, description=args.description
    )
    print(f"exported decoder to {args.out} (golden case: {golden['source']})")
    print(f"play it: pianogenie serve --model {args.out}")
    return 0
