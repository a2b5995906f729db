"""Hostile exported models, each with the verdict an export must get: made from the shipped export
(pianogenie/pretrained/tfjs) by one change each. Used by tests/test_export_check.py (Python's check,
where exports are written and served) and by web/test/export_check.test.js (the browser's loader,
web/src/model.js), so both refuse and accept the same set.

`python tests/hostile_exports.py OUT` writes every case into OUT/<name>/ and OUT/index.json:
[{"name", "expect": "ok" | "refuse", "browser": bool}] (browser: false where the case is about the
file system, which the browser never sees: links, names outside the folder).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "pianogenie" / "pretrained" / "tfjs"


def shipped() -> tuple[dict, list[tuple[str, np.ndarray]]]:
    cfg = json.loads((SHIPPED / "cfg.json").read_text())
    manifest = json.loads((SHIPPED / "weights_manifest.json").read_text())
    blob = b"".join((SHIPPED / p).read_bytes() for g in manifest for p in g["paths"])
    weights, at = [], 0
    for w in (w for g in manifest for w in g["weights"]):
        n = int(np.prod(w["shape"]))
        weights.append((w["name"], np.frombuffer(blob, "<f4", n, at).reshape(w["shape"]).copy()))
        at += 4 * n
    return cfg, weights


def write(
    folder: Path,
    cfg,
    weights,
    *,
    dtypes: dict | None = None,
    shapes: dict | None = None,
    cut: int = 0,
    paths: list[str] | None = None,
) -> None:
    """An export of `weights` [(name, array)], with a dtype or shape stated differently from the
    data (`dtypes`, `shapes` by name), the shard `cut` bytes short, or other shard `paths`."""
    folder.mkdir(parents=True)
    dtypes, shapes = dtypes or {}, shapes or {}
    specs = [{"name": n, "shape": shapes.get(n, list(a.shape)), "dtype": dtypes.get(n, "float32")} for n, a in weights]
    blob = b"".join(np.ascontiguousarray(a, "<f4").tobytes() for _, a in weights)
    blob = blob[: len(blob) - cut]
    paths = paths or ["group1-shard1of1.bin"]
    (folder / "cfg.json").write_text(json.dumps(cfg))
    (folder / "weights_manifest.json").write_text(json.dumps([{"paths": paths, "weights": specs}]))
    target = folder / paths[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(blob)


def _set(weights, name, fn):
    return [(n, fn(a.copy()) if n == name else a) for n, a in weights]


def _poke(value):
    def fn(a):
        a.flat[3] = value
        return a

    return fn


def cases() -> dict[str, tuple[str, bool, callable]]:
    """name -> (expected verdict, the browser sees it, make(folder))."""
    cfg, w = shipped()
    dec_only = [(n, a) for n, a in w if n.startswith("dec.")]
    one_layer = [(n, a) for n, a in dec_only if "_l1" not in n]

    def c(**changes):
        return {**cfg, **changes}

    out = {
        "valid": ("ok", True, lambda d: write(d, cfg, w)),
        "valid-no-velocity-head": (
            "ok",
            True,
            lambda d: write(d, {k: v for k, v in cfg.items() if not k.startswith("velocity")}, dec_only),
        ),
        "valid-tutorial-cfg": ("ok", True, lambda d: write(d, {"model_rnn_dim": 128, "num_buttons": 8}, dec_only)),
        "valid-one-layer": ("ok", True, lambda d: write(d, c(model_rnn_num_layers=1), one_layer)),
        "valid-float-integers": ("ok", True, lambda d: write(d, c(num_buttons=8.0, sos=88.0), w)),
        "nan-weight": ("refuse", True, lambda d: write(d, cfg, _set(w, "dec.output.bias", _poke(np.nan)))),
        "inf-weight": ("refuse", True, lambda d: write(d, cfg, _set(w, "vel.hidden.weight", _poke(np.inf)))),
        "huge-weight": ("refuse", True, lambda d: write(d, cfg, _set(w, "dec.input.weight", _poke(1e30)))),
        "int32-data": ("refuse", True, lambda d: write(d, cfg, w, dtypes={"dec.input.bias": "int32"})),
        "bool-data": ("refuse", True, lambda d: write(d, cfg, w, dtypes={"dec.input.bias": "bool"})),
        "swapped-shape": ("refuse", True, lambda d: write(d, cfg, w, shapes={"dec.input.weight": [91, 128]})),
        "one-button": ("refuse", True, lambda d: write(d, c(num_buttons=1), w)),
        "string-buttons": ("refuse", True, lambda d: write(d, c(num_buttons="8"), w)),
        "fractional-buttons": ("refuse", True, lambda d: write(d, c(num_buttons=8.5), w)),
        "wrong-sos": ("refuse", True, lambda d: write(d, c(sos=87), w)),
        "head-not-in-config": ("refuse", True, lambda d: write(d, c(velocity_hidden=64), w)),
        "bins-not-in-config": ("refuse", True, lambda d: write(d, c(velocity_bins=16), w)),
        "rnn-dim-not-in-config": ("refuse", True, lambda d: write(d, c(model_rnn_dim=256), w)),
        "layers-not-in-config": ("refuse", True, lambda d: write(d, c(model_rnn_num_layers=3), w)),
        "incomplete-head": (
            "refuse",
            True,
            lambda d: write(d, cfg, [(n, a) for n, a in w if n != "vel.hidden.weight"]),
        ),
        "head-missing-bias": (
            "refuse",
            True,
            lambda d: write(d, cfg, [(n, a) for n, a in w if n != "vel.output.bias"]),
        ),
        "no-weights": ("refuse", True, lambda d: write(d, cfg, [])),
        "decoder-missing-layer-weight": (
            "refuse",
            True,
            lambda d: write(d, cfg, [(n, a) for n, a in w if n != "dec.lstm.bias_hh_l1"]),
        ),
        "unknown-weight": ("refuse", True, lambda d: write(d, cfg, w + [("enc.extra", np.zeros(4, np.float32))])),
        "zero-feature-std": ("refuse", True, lambda d: write(d, cfg, _set(w, "vel.feature_std", lambda a: a * 0))),
        "lowest-pitch-too-high": ("refuse", True, lambda d: write(d, c(lowest_pitch=100), w)),
        "zero-delta-time-max": ("refuse", True, lambda d: write(d, c(data_delta_time_max=0), w)),
        "cfg-not-an-object": ("refuse", True, lambda d: write(d, [1, 2], w)),
        "truncated-shard": ("refuse", True, lambda d: write(d, cfg, w, cut=8)),
        "shard-outside": ("refuse", False, lambda d: write(d, cfg, w, paths=["../outside.bin"])),
        "cfg-link-outside": ("refuse", False, lambda d: _link_out(d, cfg, w)),
    }
    return out


def _link_out(folder: Path, cfg, weights) -> None:
    write(folder, cfg, weights)
    outside = folder.parent / f"{folder.name}-elsewhere.json"
    outside.write_text(json.dumps(cfg))
    (folder / "cfg.json").unlink()
    os.symlink(outside, folder / "cfg.json")


def make_all(root: Path) -> list[dict]:
    index = []
    for name, (expect, browser, make) in cases().items():
        make(root / name)
        index.append({"name": name, "expect": expect, "browser": browser})
    (root / "index.json").write_text(json.dumps(index, indent=1))
    return index


if __name__ == "__main__":
    make_all(Path(sys.argv[1]))
