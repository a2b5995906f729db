"""Whether an exported model can play: the one check used where an export is written (`export`,
before anything is renamed into place) and where one is read (`serve --model`, `build-site
--model`). The browser's loader (web/src/model.js) refuses the same set (a node test loads hostile
exports through it).

`check_files(read, where)` takes `read(name) -> bytes` over the folder's files; `check_export(dir)`
reads a folder, with every file a regular file inside it (a link may not lead out) and bounded
sizes. An export plays when:
- cfg.json is a JSON object, weights_manifest.json a list of groups `{paths, weights}` whose
  shards hold exactly the bytes the weights describe;
- every weight is float32 (the app's maths is float32: int32 or bool data would be reinterpreted),
  unquantized, finite and no larger than MAX_ABS_WEIGHT in magnitude (larger ones overflow the
  float32 maths into NaN velocities or a decoder stuck on one key);
- the names and shapes are exactly the decoder's (web/src/decoder.js `decoderWeightSpecs`), plus,
  where there is one, the velocity head's (web/src/velocity.js `velocityWeightSpecs`), and nothing
  else; cfg.json's sizes, where it gives them, agree with the weights (model_rnn_dim,
  model_rnn_num_layers, velocity_hidden, velocity_bins, num_keys);
- cfg.json's num_buttons is an integer from 2 to the number of keys, sos is the decoder's start
  token (num_keys), data_delta_time_max is finite and > 0, lowest_pitch keeps every key in MIDI's
  0..127, and the head's feature_std is > 0 (it divides);
- a conditioned decoder's input is as wide as cfg.json's `conditions` say (or, without the list,
  as some set of conditions makes it); cfg.json's `name` and `description`, where given, are
  printable text of at most MAX_NAME_CHARS and MAX_DESCRIPTION_CHARS characters.
"""

from __future__ import annotations

import array
import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from pianogenie.bounded import NotRegular, depth_within, open_regular
from pianogenie.util import UserError

MAX_JSON_BYTES = 1 << 20  # cfg.json and weights_manifest.json (ours: ~1 kB and ~3 kB)
MAX_WEIGHT_BYTES = 1 << 28  # all shards together (the shipped model: ~0.8 MB)
MAX_ABS_WEIGHT = 1e4  # trained weights stay far below (the shipped model's largest: ~10)
MAX_JSON_DEPTH = 8
NUM_DENSE_EXTRA = 4  # the velocity head's dense inputs besides its state: dt, chord, log dt, b
LOWEST_PITCH = 21
NUM_KEYS = 88


# condition name -> its one-hot widths (none slot included), in decoder input order (pianogenie.labels
# CONDITIONS; web/src/decoder.js CONDITIONS); kept here so the check needs nothing but the standard library
CONDITION_WIDTHS = {"keysig": 13, "chord": 13 + 9, "style": 3}
MAX_NAME_CHARS = 80  # cfg.json `name` (the genie picker's label)
MAX_DESCRIPTION_CHARS = 300  # cfg.json `description` (what it was trained on)


def decoder_specs(rnn_dim: int, num_layers: int, num_keys: int, condition_width: int = 0) -> dict[str, list[int]]:
    """web/src/decoder.js decoderWeightSpecs."""
    g = 4 * rnn_dim
    specs = {
        "dec.input.weight": [rnn_dim, num_keys + 3 + condition_width],
        "dec.input.bias": [rnn_dim],
        "dec.output.weight": [num_keys, rnn_dim],
        "dec.output.bias": [num_keys],
    }
    for layer in range(num_layers):
        specs.update(
            {
                f"dec.lstm.weight_ih_l{layer}": [g, rnn_dim],
                f"dec.lstm.weight_hh_l{layer}": [g, rnn_dim],
                f"dec.lstm.bias_ih_l{layer}": [g],
                f"dec.lstm.bias_hh_l{layer}": [g],
            }
        )
    return specs


def velocity_specs(rnn_dim: int, hidden: int, bins: int, num_state: int, num_keys: int) -> dict[str, list[int]]:
    """web/src/velocity.js velocityWeightSpecs."""
    d = num_state + NUM_DENSE_EXTRA
    return {
        "vel.hidden.weight": [hidden, rnn_dim + num_keys + d],
        "vel.hidden.bias": [hidden],
        "vel.output.weight": [bins, hidden],
        "vel.output.bias": [bins],
        "vel.state_transition": [num_state, num_state],
        "vel.state_input": [num_state, 4],
        "vel.feature_mean": [d],
        "vel.feature_std": [d],
    }


def _json(data: bytes, name: str, where: str):
    try:
        obj = json.loads(data, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not JSON")))
    except (ValueError, RecursionError) as e:
        raise UserError(f"{where}: {name} is not valid JSON ({' '.join(str(e).split())[:120]})") from None
    if not depth_within(obj, MAX_JSON_DEPTH):
        raise UserError(f"{where}: {name} nests deeper than {MAX_JSON_DEPTH} levels")
    return obj


def _is_int(v) -> bool:
    """An integer as JSON means it (8 and 8.0 alike: the browser's JSON cannot tell them apart)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return isinstance(v, int) or (math.isfinite(v) and v.is_integer())


class _Weight(NamedTuple):
    shape: list[int]
    values: array.array  # float32, flat


def check_files(read: Callable[[str], bytes], where: str) -> dict:
    """Check the export whose files `read(name)` returns (UserError naming the problem). -> a summary
    {"cfg", "manifest", "shards": [names], "rnn_dim", "num_layers", "num_keys", "velocity": bool}."""
    cfg = _json(read("cfg.json"), "cfg.json", where)
    manifest = _json(read("weights_manifest.json"), "weights_manifest.json", where)
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: cfg.json is not a JSON object")
    if (
        not isinstance(manifest, list)
        or not manifest
        or not all(
            isinstance(g, dict) and isinstance(g.get("paths"), list) and isinstance(g.get("weights"), list)
            for g in manifest
        )
    ):
        raise UserError(f"{where}: weights_manifest.json is not a list of weight groups {{paths, weights}}")
    weights: dict[str, _Weight] = {}
    shards: list[str] = []
    for group in manifest:
        paths = group["paths"]
        if not paths or not all(isinstance(p, str) and _plain_relative(p) for p in paths):
            raise UserError(f"{where}: the manifest names a shard outside the folder or no shard: {paths!r}"[:300])
        shards += paths
        entries: list[tuple[str, list[int]]] = []
        for w in group["weights"]:
            bad = f"{where}: weights_manifest.json: a weight entry is not valid"
            if not isinstance(w, dict) or not isinstance(w.get("name"), str):
                raise UserError(f"{bad} (it has no name)")
            name, shape, dtype = w["name"], w.get("shape"), w.get("dtype")
            if (
                not isinstance(shape, list)
                or len(shape) > 4
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 24 for d in shape)
            ):
                raise UserError(f"{bad} ({name}: shape {shape!r} is not a list of sizes)"[:300])
            if "quantization" in w:
                raise UserError(f"{bad} ({name} is quantized; the app reads float32 weights only)")
            if dtype != "float32":
                raise UserError(f"{bad} ({name}: dtype {dtype!r}; the app reads float32 weights only)"[:300])
            if name in weights or any(name == e[0] for e in entries):
                raise UserError(f"{bad} ({name} appears twice)")
            entries.append((name, shape))
        missing = [p for p in paths if not _exists(read, p)]
        if missing:
            raise UserError(f"{where}: weight shard(s) missing: {', '.join(missing)}")
        blob = b"".join(read(p) for p in paths)
        expected = sum(4 * math.prod(shape) for _, shape in entries)
        if len(blob) != expected:
            raise UserError(
                f"{where}: shard(s) {', '.join(paths)} hold {len(blob)} bytes, the manifest "
                f"describes {expected} (truncated or not this model's weights)"
            )
        values = array.array("f")
        values.frombytes(blob)
        if sys.byteorder == "big":  # the format is little-endian
            values.byteswap()
        offset = 0
        for name, shape in entries:
            n = math.prod(shape)
            weights[name] = _Weight(shape, values[offset // 4 : offset // 4 + n])
            offset += 4 * n
    first = weights.get("dec.input.weight")
    if first is None or len(first.shape) != 2:
        raise UserError(f"{where}: the manifest holds no Piano Genie decoder (dec.input.weight)")
    rnn_dim = first.shape[0]
    num_layers = 0
    while f"dec.lstm.weight_ih_l{num_layers}" in weights:
        num_layers += 1
    bias = weights.get("dec.output.bias")
    num_keys = bias.shape[0] if bias is not None and len(bias.shape) == 1 else NUM_KEYS
    if rnn_dim < 1 or num_layers < 1 or num_keys < 1:
        raise UserError(f"{where}: the decoder has rnn_dim {rnn_dim}, {num_layers} LSTM layers, {num_keys} keys")
    conditions = _conditions(cfg, where, first.shape[1] - num_keys - 3)
    specs = decoder_specs(rnn_dim, num_layers, num_keys, sum(CONDITION_WIDTHS[c] for c in conditions))
    velocity = "vel.hidden.weight" in weights
    if velocity:
        try:
            hidden = weights["vel.hidden.weight"].shape[0]
            bins = weights["vel.output.bias"].shape[0]
            num_state = weights["vel.state_transition"].shape[0]
        except (KeyError, IndexError):
            raise UserError(
                f"{where}: the velocity head is incomplete (vel.hidden.weight, vel.output.bias, vel.state_transition)"
            ) from None
        specs.update(velocity_specs(rnn_dim, hidden, bins, num_state, num_keys))
    for name, shape in specs.items():
        if name not in weights:
            raise UserError(f"{where}: weight {name} is missing")
        if list(weights[name].shape) != shape:
            raise UserError(f"{where}: weight {name} has shape {list(weights[name].shape)}, expected {shape}")
    extra = sorted(set(weights) - set(specs))
    if extra:
        raise UserError(
            f"{where}: the manifest holds weights the app does not use ({', '.join(extra[:3])}"
            f"{' …' if len(extra) > 3 else ''}), e.g. a velocity head without vel.hidden.weight"
        )
    for name, w in weights.items():
        if not all(map(math.isfinite, w.values)):
            raise UserError(f"{where}: weight {name} holds NaN or Inf values")
        if w.values and (top := max(map(abs, w.values))) > MAX_ABS_WEIGHT:
            raise UserError(
                f"{where}: weight {name} holds values up to {top:.3g} in magnitude "
                f"(at most {MAX_ABS_WEIGHT:g} plays without overflowing the app's float32 maths)"
            )
    if velocity and not all(v > 0 for v in weights["vel.feature_std"].values):
        raise UserError(f"{where}: weight vel.feature_std must be > 0 everywhere (the head divides by it)")
    _check_config(
        cfg,
        where,
        rnn_dim,
        num_layers,
        num_keys,
        (weights["vel.hidden.weight"].shape[0], weights["vel.output.bias"].shape[0]) if velocity else None,
    )
    return {
        "cfg": cfg,
        "manifest": manifest,
        "shards": shards,
        "rnn_dim": rnn_dim,
        "num_layers": num_layers,
        "num_keys": num_keys,
        "velocity": velocity,
        "conditions": conditions,
    }


def _conditions(cfg: dict, where: str, width: int) -> tuple[str, ...]:
    """The conditions the decoder reads: cfg.json's `conditions` list where it gives one (names
    of CONDITION_WIDTHS, once each, in that order), else the set whose one-hots make `width`
    extra input columns (every subset has its own width)."""
    names = tuple(CONDITION_WIDTHS)
    if "conditions" in cfg:
        given = cfg["conditions"]
        if (
            not isinstance(given, list)
            or not all(isinstance(c, str) and c in CONDITION_WIDTHS for c in given)
            or list(given) != [c for c in names if c in given]
        ):
            raise UserError(
                f"{where}: cfg.json conditions={given!r}: a list of {', '.join(names)} "
                "(each at most once, in that order)"[:300]
            )
        return tuple(given)
    for m in range(1 << len(names)):
        subset = tuple(n for i, n in enumerate(names) if m & (1 << i))
        if sum(CONDITION_WIDTHS[n] for n in subset) == width:
            return subset
    return ()  # the shape check names the mismatch


def _check_config(
    cfg: dict, where: str, rnn_dim: int, num_layers: int, num_keys: int, head: tuple[int, int] | None
) -> None:
    def given(key, default):
        return cfg.get(key, default)

    buttons = given("num_buttons", 8)
    if not _is_int(buttons) or not 2 <= buttons <= num_keys:
        raise UserError(
            f"{where}: cfg.json num_buttons={buttons!r}: the app needs an integer from 2 to {num_keys}"[:300]
        )
    sos = given("sos", num_keys)
    if not _is_int(sos) or sos != num_keys:
        raise UserError(f"{where}: cfg.json sos={sos!r}, but this decoder's start token is {num_keys}"[:300])
    keys = given("num_keys", num_keys)
    if not _is_int(keys) or keys != num_keys:
        raise UserError(f"{where}: cfg.json num_keys={keys!r}, but the decoder has {num_keys} keys"[:300])
    dt = given("data_delta_time_max", 1.0)
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not (math.isfinite(dt) and dt > 0):
        raise UserError(f"{where}: cfg.json data_delta_time_max={dt!r} must be a finite number > 0"[:300])
    low = given("lowest_pitch", LOWEST_PITCH)
    if not _is_int(low) or not 0 <= low <= 128 - num_keys:
        raise UserError(f"{where}: cfg.json lowest_pitch={low!r}: its {num_keys} keys must lie in MIDI 0..127"[:300])
    for key, most in (("name", MAX_NAME_CHARS), ("description", MAX_DESCRIPTION_CHARS)):
        v = cfg.get(key)
        if v is not None and not (isinstance(v, str) and len(v) <= most and v.isprintable()):
            raise UserError(
                f"{where}: cfg.json {key} must be text of at most {most} printable characters"
                f"{f', got {len(v)}' if isinstance(v, str) and len(v) > most else ''}"
            )
    sizes = {"model_rnn_dim": rnn_dim, "model_rnn_num_layers": num_layers}
    if head is not None:
        sizes.update({"velocity_hidden": head[0], "velocity_bins": head[1]})
    for key, actual in sizes.items():
        if key in cfg and cfg[key] != actual:
            raise UserError(f"{where}: cfg.json {key}={cfg[key]!r}, but the weights have {actual}"[:300])


def _exists(read: Callable[[str], bytes], name: str) -> bool:
    exists = getattr(read, "exists", None)
    return True if exists is None else exists(name)


def _plain_relative(path: object) -> bool:
    """A manifest path that stays inside its folder: plain names joined by "/" (no "..", no root)."""
    if not isinstance(path, str) or not path or path.startswith("/") or "\\" in path or "\0" in path:
        return False
    return all(p and not p.startswith(".") for p in path.split("/"))


def reader(model_dir: Path, where: str) -> Callable[[str], bytes]:
    """`read(name)` over the files of `model_dir`: each a regular file inside the folder (a link
    may not lead out of it), of bounded size; UserError otherwise."""
    root = Path(model_dir).resolve()
    total = [0]

    def read(name: str) -> bytes:
        path = Path(model_dir) / name
        try:
            real = path.resolve(strict=True)
        except FileNotFoundError:
            raise UserError(f"{where}: no {name}; is it a folder written by `pianogenie export`?") from None
        except (OSError, RuntimeError) as e:
            raise UserError(f"{where}: cannot read {name} ({e})") from None
        if not real.is_relative_to(root):
            raise UserError(f"{where}: {name} lies outside the folder (it leads to {real}); refusing to read it")
        cap = MAX_JSON_BYTES if name.endswith(".json") else MAX_WEIGHT_BYTES - total[0]
        try:
            with open_regular(real) as f:
                st = os.fstat(f.fileno())
                if st.st_size > cap:
                    raise UserError(f"{where}: {name} is {st.st_size} bytes, more than an export holds (at most {cap})")
                data = f.read(cap + 1)
        except NotRegular:
            raise UserError(f"{where}: {name} is not a regular file") from None
        except OSError as e:
            raise UserError(f"{where}: cannot read {name} ({e.strerror or e})") from None
        if len(data) > cap:
            raise UserError(f"{where}: {name} holds more than {cap} bytes")
        if not name.endswith(".json"):
            total[0] += len(data)
        return data

    def exists(name: str) -> bool:
        return os.path.isfile(Path(model_dir) / name)

    read.__dict__["exists"] = exists  # a function attribute: _exists looks it up
    return read


def check_export(model_dir: str | os.PathLike, flag: str = "--model") -> dict:
    """`check_files` over the folder `model_dir` (see the module docstring)."""
    model_dir = Path(model_dir)
    where = f"{flag} {model_dir}"
    if not model_dir.is_dir():
        raise UserError(f"{where}: not a folder (make one with `pianogenie export RUN --out DIR`)")
    if (model_dir / "magenta.json").is_file() and not (model_dir / "cfg.json").is_file():
        raise UserError(
            f"{where}: an export for @magenta/music (--format magenta), which this app "
            "does not read; export the model without --format for the app"
        )
    return check_files(reader(model_dir, where), where)
