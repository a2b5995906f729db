"""`pianogenie export`: a trained decoder -> the TensorFlow.js weights format the browser app loads
(`--format magenta`: @magenta/music's checkpoint layout instead, written by magenta.py with the
writers here).

Writes into DIR (atomically: every file under a temporary name, then all renamed at once; only
files a previous export wrote are ever replaced, nothing else in DIR is touched):
- `weights_manifest.json` + `group1-shard*of*.bin`: the `dec.*` weights (and the velocity head's
  `vel.*`, where the model has one) in the TF.js weights
  format (`tf.io.loadWeights` reads it), in their PyTorch layouts and names, float32
  little-endian, shards of at most 4 MiB, exactly as the 2021 tutorial's `tfjs/` folder.
- `cfg.json`: the training config plus what the browser needs (buttons, LSTM sizes, start token,
  delta-time maximum, lowest MIDI pitch).
- `test.json`: a golden case for the JS tests: 128 decoder steps (previous keys, delta times,
  buttons from the model's own encoder) and the logits the model gives, computed in float64 so
  the reference is the maths itself rather than one float32 rounding of it; with a velocity head
  also the velocities played (fed to its history) and its velocity logits and mean velocities.

The format is written directly (it is a JSON list + raw bytes), so TensorFlow is not needed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from pianogenie.constants import LOWEST_PITCH, NUM_KEYS, SOS
from pianogenie.inputs import button_values
from pianogenie.outputs import atomic_paths, check_output, folder_marked, stamp
from pianogenie.util import UserError

FORMAT = "pianogenie-tfjs-v1"
SHARD_BYTES = 4 * 1024 * 1024  # the TF.js converter's default shard size
GOLDEN_STEPS = 128
GOLDEN_SPLIT = "validation"


def decoder_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The `dec.*` (then `vel.*`) entries of the state dict, in order, as float32 arrays."""
    weights = {
        k: v.detach().cpu().to(torch.float32).numpy()
        for k, v in model.state_dict().items()
        if k.startswith(("dec.", "vel."))
    }
    if "dec.input.weight" not in weights:
        raise UserError("the checkpoint holds no decoder weights (dec.*)")
    return weights


def tfjs_weights(weights: dict[str, np.ndarray], shard_bytes: int = SHARD_BYTES) -> tuple[list, list[bytes]]:
    """TF.js weights format: (manifest, shard payloads). Weights are concatenated in manifest order
    and the byte stream is cut into shards, which the TF.js loader concatenates back."""
    specs = [{"name": name, "shape": list(w.shape), "dtype": "float32"} for name, w in weights.items()]
    blob = b"".join(np.ascontiguousarray(w, dtype="<f4").tobytes() for w in weights.values())
    shards = [blob[i : i + shard_bytes] for i in range(0, len(blob), shard_bytes)] or [b""]
    paths = [f"group1-shard{i + 1}of{len(shards)}.bin" for i in range(len(shards))]
    return [{"paths": paths, "weights": specs}], shards


def browser_config(cfg) -> dict:
    """The training config (tutorial field names) plus what the browser needs to play."""
    return {
        **dataclasses.asdict(cfg),
        # what the decoder reads after the button ([] = none); the browser's Decoder.conditions
        "conditions": list(cfg.condition_names),
        "format": FORMAT,
        "num_keys": NUM_KEYS,
        "sos": SOS,
        "lowest_pitch": LOWEST_PITCH,
        # the model's input rules (pianogenie.inputs), so that the browser does not restate them
        "button_values": button_values(cfg.num_buttons),
    }


def synthetic_performance(num_notes: int = GOLDEN_STEPS, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in performance: a random walk of keys around middle C with varied
    rhythm (some chords, some long gaps). -> keys (N,) int, onsets (N,) seconds."""
    rng = np.random.default_rng(seed)
    k = np.clip(39 + np.cumsum(rng.integers(-5, 6, num_notes)), 0, NUM_KEYS - 1)
    dt = rng.choice([0.0, 0.06, 0.12, 0.25, 0.5, 1.5], size=num_notes, p=[0.15, 0.2, 0.3, 0.2, 0.1, 0.05])
    return k.astype(np.int64), np.cumsum(dt)


def synthetic_velocities(num_notes: int = GOLDEN_STEPS, seed: int = 0) -> np.ndarray:
    """Deterministic stand-in velocities (N,) 1..127: a slow swell with note-to-note variation."""
    rng = np.random.default_rng(seed + 1)
    swell = 70 + 30 * np.sin(np.arange(num_notes) / 12)
    return np.clip(np.rint(swell + rng.normal(0, 8, num_notes)), 1, 127).astype(np.int64)


def validation_performance(
    data_path: str | os.PathLike, num_notes: int = GOLDEN_STEPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The first `num_notes` notes of the first validation performance long enough.
    -> keys (N,), onsets (N,), velocities (N,), a description of where they came from."""
    from pianogenie.notes_file import load_notes  # the data module is only needed with --data

    splits = load_notes(data_path)
    if GOLDEN_SPLIT not in splits:
        raise UserError(f"{data_path} has no {GOLDEN_SPLIT!r} split (it has: {', '.join(sorted(splits)) or 'none'})")
    for i, notes in enumerate(splits[GOLDEN_SPLIT]):
        if len(notes) >= num_notes:
            notes = np.asarray(notes)[:num_notes]  # (N, 4): onset, duration, key, velocity
            k = notes[:, 2].astype(np.int64)
            if k.min() < 0 or k.max() >= NUM_KEYS:
                raise UserError(f"{data_path}: {GOLDEN_SPLIT} performance {i} has keys outside 0..{NUM_KEYS - 1}")
            v = np.clip(np.rint(notes[:, 3]), 1, 127).astype(np.int64)
            return (
                k,
                notes[:, 0].astype(np.float64),
                v,
                f"{GOLDEN_SPLIT} performance {i} of {Path(data_path).name}, notes 0..{num_notes - 1}",
            )
    raise UserError(f"{data_path}: no {GOLDEN_SPLIT} performance has {num_notes} notes")


def golden_case(model, cfg, k: np.ndarray, onsets: np.ndarray, source: str, v: np.ndarray | None = None) -> dict:
    """Decoder inputs (keys, delta times, encoder buttons) and its float64 logits for one performance;
    with a velocity head and velocities v (N,), the head's float64 logits for each played key and
    mean velocities, its history fed the velocities played."""
    from pianogenie.inputs import button_value, delta_times
    from pianogenie.velocity import history_states, mean_velocity, state_inputs

    dt = delta_times(onsets, cfg.data_delta_time_max)  # (N,) first = max
    with torch.no_grad():
        b = model.buttons(torch.from_numpy(k)[None], torch.from_numpy(dt).float()[None])[0].numpy()  # (N,)
        dec = copy.deepcopy(model.dec).double()
        k_m1 = torch.from_numpy(np.concatenate([[SOS], k[:-1]]))[None]
        b_real = torch.from_numpy(button_value(b.astype(np.float64), cfg.num_buttons))[None]
        h_0 = torch.zeros(cfg.model_rnn_num_layers, 1, cfg.model_rnn_dim, dtype=torch.float64)
        c = golden_conditions(len(k), cfg.condition_names) if cfg.conditions else None  # (N, 4) ids
        logits, _, h = dec(
            k_m1,
            torch.from_numpy(dt)[None],
            b_real,
            (h_0, torch.zeros_like(h_0)),
            return_hidden=True,
            c=None if c is None else torch.from_numpy(c)[None],
        )  # (1, N, 88), (1, N, H)
        velocity = {}
        if hasattr(model, "vel") and v is not None:
            s = history_states(np.array([len(k)]), state_inputs(v, k))  # (N, S)
            hat_v = copy.deepcopy(model.vel).double()(
                h, torch.from_numpy(k)[None], torch.from_numpy(s).double()[None], torch.from_numpy(dt)[None], b_real
            )[0]  # (N, bins)
            velocity = {
                "input_velocities": v.tolist(),
                "output_velocity_logits": hat_v.tolist(),
                "output_velocities": mean_velocity(hat_v).tolist(),
            }
    return {
        "source": source,
        "precision": "float64",
        "input_keys": k_m1[0].tolist(),
        "input_dts": dt.tolist(),
        "input_buttons": b.astype(int).tolist(),
        "output_keys": k.tolist(),
        "output_logits": logits[0].tolist(),
        # a conditioned model's [keysig, chord root, chord family, style] ids per step (pianogenie.labels)
        **({"input_conditions": c.tolist()} if c is not None else {}),
        **velocity,
    }


def golden_conditions(n: int, conditions: tuple[str, ...]) -> np.ndarray:
    """(n, 4) condition ids for a golden case: a chord progression changing every 16 steps with
    stretches of none, a key signature change halfway, style changing every 40 steps; none for
    the conditions the model does not take."""
    from pianogenie.labels import condition_columns

    prog = [(1, 1), (8, 5), (10, 2), (6, 1), (0, 0), (3, 7), (12, 8), (5, 6)]
    i = np.arange(n)
    out = np.zeros((n, 4), np.int64)
    out[:, 0] = np.where(i < n // 2, 4, 0)
    out[:, 1:3] = np.array(prog)[(i // 16) % len(prog)]
    out[:, 3] = (i // 40) % 3
    out[:, [j for j in range(4) if j not in condition_columns(conditions)[0]]] = 0
    return out


_SHARD_NAME = re.compile(r"^group\d+-shard\d+of\d+\.bin$")
# magenta.json: the description an export in @magenta/music's layout writes (magenta.py)
_FIXED_FILES = ("weights_manifest.json", "cfg.json", "test.json", "magenta.json")


def _previous_export_files(out: Path) -> set[str]:
    """The files a previous export wrote into `out` (its manifest's shards and the fixed files);
    only names export itself would write count, whatever else a manifest lists."""
    names = {name for name in _FIXED_FILES if (out / name).is_file()}
    try:
        manifest = json.loads((out / "weights_manifest.json").read_text())
        names |= {
            p
            for group in manifest
            for p in group.get("paths", [])
            if isinstance(p, str) and _SHARD_NAME.match(p) and (out / p).is_file()
        }
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        pass
    return names


def write_export_dir(out: Path, files: dict[str, bytes], inputs: tuple = (), *, force: bool = False) -> None:
    """Write `files` into the folder `out`, all or nothing: every file goes to a temporary name
    first, then all are renamed at once (signals held back). An existing `out` must be empty or a
    previous export (its cfg.json, or magenta.json, carries export's mark; `force` accepts a folder
    without it); only the files that export writes are replaced, and the files of the previous
    export that the new one no longer has are removed (its shards; its cfg.json and test.json when
    a magenta-layout export replaces it, so no stale app config describes the new weights). Any
    other file in `out` is left alone."""
    out = check_output(out, flag="--out", inputs=inputs, folder=True)
    old: set[str] = set()
    created = not out.exists()
    if not created and any(out.iterdir()):
        ours = folder_marked(out, "cfg.json", "export") or folder_marked(out, "magenta.json", "export")
        if not ours and not force:
            raise UserError(
                f"--out {out} is a non-empty folder that holds no export of this command (no cfg.json "
                "or magenta.json with its mark); refusing to write into it (choose another folder, "
                "or pass --force)"
            )
        # a proven previous export: its stale files go; with --force alone, only same-named files are replaced
        old = _previous_export_files(out) if ours else set()

    def in_old(name: str) -> Callable[[Path], bool]:
        return lambda p: name in old

    for name in files:
        check_output(out / name, flag="--out", inputs=inputs, ours=in_old(name), force=force)
    try:
        with atomic_paths(*(out / name for name in files)) as tmps:
            for tmp, data in zip(tmps, files.values()):
                tmp.write_bytes(data)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # the folder this call made (only if empty: nothing else is removed)
        raise
    for stale in sorted(old - set(files)):
        if _SHARD_NAME.match(stale) or stale in _FIXED_FILES:
            (out / stale).unlink(missing_ok=True)


def export(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    data: str | os.PathLike | None = None,
    *,
    force: bool = False,
    name: str | None = None,
    description: str | None = None,
) -> dict:
    """Export a run / checkpoint / tutorial model.pt to `out`. Returns the golden case written.
    `name` and `description` (what it was trained on) go into cfg.json for the app's genie picker."""
    from pianogenie.model import load_model

    check_output(out, flag="--out", inputs=(checkpoint, data), folder=True)  # before any work
    model, cfg = load_model(checkpoint)
    if cfg.num_buttons < 2:  # the browser (model.js) refuses it too: nothing to play with
        raise UserError(
            f"{checkpoint} is a language-model baseline (num_buttons={cfg.num_buttons}): it has no "
            "buttons to play; export a model trained with 2 or more buttons"
        )
    manifest, shards = tfjs_weights(decoder_weights(model))
    if data is not None:
        k, onsets, v, source = validation_performance(data)
    else:
        k, onsets = synthetic_performance()
        v = synthetic_velocities()
        source = "synthetic: deterministic random-walk performance (no --data given)"
    golden = golden_case(model, cfg, k, onsets, source, v)
    shown = {key: " ".join(v.split()) for key, v in (("name", name), ("description", description)) if v is not None}
    files = {
        "weights_manifest.json": json.dumps(manifest).encode(),
        **{path: shard for path, shard in zip(manifest[0]["paths"], shards)},
        "cfg.json": (json.dumps(stamp({**browser_config(cfg), **shown}, "export"), indent=2) + "\n").encode(),
        "test.json": json.dumps(golden).encode(),
    }
    from pianogenie.export_check import check_files

    def read(name: str) -> bytes:
        if name not in files:
            raise UserError(f"export {checkpoint}: the manifest names {name}, which export did not write (a bug)")
        return files[name]

    check_files(read, f"export {checkpoint}")  # the check serve and build-site make: never write what cannot play
    write_export_dir(Path(out), files, inputs=(checkpoint, data), force=force)
    return golden
