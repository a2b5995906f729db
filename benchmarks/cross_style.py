"""Cross-style table: every model scored on every notes file's split, next to a unigram key model.

    .venv/bin/python benchmarks/cross_style.py \
        --model classical=pianogenie/pretrained/model.pt --model pop=pianogenie/pretrained/pop/model.pt \
        --data maestro=data/maestro.json.gz:validation --data pop909=data/pop909.json.gz:test [--json OUT]

Each cell is `evaluate`'s default protocol (every non-overlapping 128-note window, no augmentation):
perplexity, key accuracy and contour violation ratio. The unigram row is the train split's key
frequencies (add-one smoothed) scored on the same notes: what a genie that ignores the buttons and
the context would get.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np


def unigram(train: list[np.ndarray], test: list[np.ndarray]) -> dict:
    counts = np.ones(88)
    for p in train:
        counts += np.bincount(p[:, 2].astype(np.int64), minlength=88)
    logp = np.log(counts / counts.sum())
    keys = np.concatenate([p[:, 2].astype(np.int64) for p in test])
    return {
        "perplexity": math.exp(-float(logp[keys].mean())),
        "key_accuracy": float((keys == int(np.argmax(counts))).mean()),
        "contour_violation_ratio": None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    ap.add_argument("--data", action="append", required=True, metavar="NAME=NOTES:SPLIT")
    ap.add_argument("--json", help="also write the table as JSON here")
    args = ap.parse_args(argv)

    from pianogenie.evaluate import evaluate
    from pianogenie.model import load_model
    from pianogenie.notes_file import load_notes

    models = dict(m.split("=", 1) for m in args.model)
    table: dict[str, dict[str, dict]] = {}
    for spec in args.data:
        name, rest = spec.split("=", 1)
        path, split = rest.rsplit(":", 1)
        notes = load_notes(path)
        for model_name, ckpt in models.items():
            model, cfg = load_model(ckpt)
            model.eval()
            m = evaluate(model, notes[split], cfg, name=split)
            table.setdefault(model_name, {})[name] = {
                k: m[k] for k in ("perplexity", "key_accuracy", "contour_violation_ratio")
            }
        table.setdefault("unigram", {})[name] = unigram(notes["train"], notes[split])

    cols = [s.split("=", 1)[0] + " (" + s.rsplit(":", 1)[1] + ")" for s in args.data]
    print("| model | " + " | ".join(f"{c}: perplexity / key acc. / contour viol." for c in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for model_name, row in table.items():
        cells = []
        for spec in args.data:
            m = row[spec.split("=", 1)[0]]
            cv = "—" if m["contour_violation_ratio"] is None else f"{m['contour_violation_ratio']:.4f}"
            cells.append(f"{m['perplexity']:.3f} / {100 * m['key_accuracy']:.1f} % / {cv}")
        print(f"| {model_name} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(table, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
