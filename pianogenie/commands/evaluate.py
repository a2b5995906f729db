"""`pianogenie evaluate`: score a model on a split (pianogenie.evaluate) and/or the Gold checks
(pianogenie.gold); prints JSON."""

from __future__ import annotations

import argparse
import json
import math

from pianogenie.outputs import add_force, atomic_write_text
from pianogenie.util import UserError, finite_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        description="Score a model on a split of a prepared notes file: reconstruction cross-entropy "
        "(nats/note), perplexity, key accuracy, contour violation ratios (tutorial: sign(dk) != sign(db); "
        "paper: dk*db < 0) and button usage; for a model with a velocity head also velocity_mae, velocity_nll "
        "(nats per note) and the MAE of four baselines (train median, previous note, per-key train mean, mean of "
        "the previous 8), all on the notes after each performance's 8th. Prints JSON.",
    )
    p.add_argument(
        "model",
        metavar="RUN_OR_CHECKPOINT",
        help="run directory (uses best.pt), our checkpoint, or the tutorial's model.pt (with its cfg.json beside it)",
    )
    p.add_argument(
        "--data",
        metavar="NOTES.json.gz",
        help="notes file from `pianogenie prepare` (required unless --gold alone is asked for)",
    )
    p.add_argument("--split", default="test", help="split to score (default: test)")
    p.add_argument(
        "--protocol",
        choices=["all", "first128"],
        default="all",
        help="all: every non-overlapping 128-note window (default); first128: each performance's "
        "first window only (the tutorial's protocol)",
    )
    p.add_argument(
        "--gold",
        metavar="MELODIES.json",
        help="also run the paper's Gold checks on these melodies "
        "(e.g. ../shared/data/gold_melodies.json): gold (encoder buttons vs people's, mean squared "
        "difference over transpositions -6..+6), gold_sweep (gold at other delta times) and "
        "gold_playback (people's buttons through the decoder: interval-equal and direction-agree rates)",
    )
    p.add_argument(
        "--gold-delta-time",
        type=float,
        default=None,
        metavar="SECONDS",
        help="fixed delta time between the melodies' notes (default: 0.256, the paper's code's)",
    )
    p.add_argument(
        "--no-harmony",
        action="store_true",
        help="skip the harmony measures, which a notes file with labels (prepare --labels) otherwise "
        "adds: the decoder driven by the encoder's buttons of the split, chord-tone and in-key rates of "
        "its keys at argmax and temperature 0.25, with the true conditions and with none (a conditioned "
        "model), and of the real notes (human)",
    )
    p.add_argument("--out", metavar="FILE", help="also write the JSON here")
    add_force(p, "result files")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pianogenie.evaluate import evaluate
    from pianogenie.model import load_model
    from pianogenie.notes_file import load_notes
    from pianogenie.outputs import check_output, stamp, written_by
    from pianogenie.velocity import VelocityBaselines

    if args.data is None and args.gold is None:
        raise UserError("pass --data NOTES.json.gz (and/or --gold MELODIES.json)")
    if args.gold_delta_time is not None and not (math.isfinite(args.gold_delta_time) and args.gold_delta_time >= 0):
        raise UserError(f"--gold-delta-time must be a finite number of seconds >= 0, got {args.gold_delta_time}")
    if args.out:  # before the work: an output that cannot be written, or would clobber, fails now
        check_output(
            args.out,
            flag="--out",
            inputs=[args.model, args.data, args.gold],
            what="evaluate result (JSON)",
            ours=written_by("evaluate"),
            force=args.force,
        )
    model, cfg = load_model(args.model)
    metrics: dict = {"model": str(args.model)}
    if args.data is not None:
        data = load_notes(args.data)
        if args.split not in data:
            raise UserError(f"{args.data} has no {args.split!r} split (it has: {', '.join(data) or 'none'})")
        if not data[args.split]:
            raise UserError(f"the {args.split!r} split of {args.data} is empty")
        baselines = VelocityBaselines(data.get("train")) if hasattr(model, "vel") else None
        from pianogenie.evaluate import harmony_metrics
        from pianogenie.notes_file import load_labels

        labels = load_labels(args.data)
        split_labels = labels.get(args.split) if labels else None
        if cfg.conditions and split_labels is None:
            raise UserError(
                f"the model is conditioned on {cfg.conditions}, but {args.data} holds no labels "
                "(prepare it with --labels annotated or estimated)"
            )
        metrics.update(
            {
                "data": str(args.data),
                "split": args.split,
                **evaluate(
                    model,
                    data[args.split],
                    cfg,
                    args.protocol,
                    name=args.split,
                    progress=True,
                    velocity_baselines=baselines,
                    labels=split_labels,
                ),
            }
        )
        if split_labels is not None and not args.no_harmony:
            metrics["harmony"] = harmony_metrics(model, data[args.split], split_labels, cfg)
    if args.gold is not None:
        from pianogenie import gold

        delta_time = gold.DELTA_TIME if args.gold_delta_time is None else args.gold_delta_time
        if not (math.isfinite(delta_time) and delta_time >= 0):
            raise UserError(f"--gold-delta-time must be a finite number of seconds >= 0, got {delta_time}")
        metrics.update(gold.report(model, cfg, args.gold, delta_time))
    metrics = finite_json(metrics)  # JSON has no NaN or Infinity (e.g. a metric of an empty set): null
    print(json.dumps(metrics, indent=2, allow_nan=False))
    if args.out:
        atomic_write_text(args.out, json.dumps(stamp(metrics, "evaluate"), indent=2, allow_nan=False) + "\n")
    return 0
