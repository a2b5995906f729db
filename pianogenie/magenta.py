"""`pianogenie export --format magenta`: our decoder as a checkpoint folder that `@magenta/music`'s
`PianoGenie` class (1.23.1, `new PianoGenie(URL)`) loads and plays unchanged.

What the class does (read from its source, `node/piano_genie.js` / `piano_genie/model.ts`):
- It fetches `URL/weights_manifest.json` and its shards with `tf.io.loadWeights`, and reads the
  variables `phero_model/decoder/rnn_input/dense/{kernel,bias}`,
  `phero_model/decoder/rnn/rnn/multi_rnn_cell/cell_{0,1}/lstm_cell/{kernel,bias}` and
  `phero_model/decoder/pitches/dense/{kernel,bias}`: a dense layer, two LSTM cells of 128 units
  (both numbers are fixed in the class: its zero state is `[1, 128]` twice) and a dense layer to 88
  key logits. Dense kernels are `[inputs, outputs]`.
- Its input features, concatenated in this order: the button as `2 * b / 7 - 1` (8 buttons are
  fixed in the class); the previous key one-hot over 89 (index 0 = start, key k at k + 1); the
  delta time one-hot over 33 bins, bin = `int(min(round(float32(dt) * 31.25), 32) + 1e-4)` with
  TF.js's round (half to even), i.e. bins of 32 ms, the last one "1.024 s or more".
- Its LSTM cells are `tf.basicLSTMCell`: `[input, h] @ kernel + bias`, split into the gates
  i, j, f, o (TF's order; j is the candidate), with a forget bias of 1 added to f at run time.

Our decoder (model.py) reads the previous key one-hot over 88 + start (start = 88), the delta time
as one scalar in [0, data_delta_time_max] seconds and the button value, through one linear layer.
A linear layer on a one-hot is a row lookup, so magenta's input kernel is built exactly from ours:
key index 0 <- our start row, key k + 1 <- our key k row, button <- our button row, and dt bin j
<- our delta-time row times `min(j * 0.032, data_delta_time_max)`. The converted model therefore
equals our decoder fed the delta time of its bin (`magenta_delta_time`): same keys, logits equal
up to float32 rounding. The LSTM weights are reordered (PyTorch's i, f, g, o to TF's i, j, f, o),
the input and hidden matrices stacked as `[input rows; hidden rows]`, the two PyTorch biases
summed and 1 taken off the forget gate's, which the class adds back.

Refused, in one line: other than 8 buttons, 128 units or 2 layers (the class cannot run them).
Reduced, with a notice: the velocity head is dropped (the class plays keys only).

Conditioned models (cfg.conditions, pianogenie.labels). `MAGENTA_CLASSES` lists
the conditioned classes and the extra features each appends, in order, after the 123 above:
`PianoGenieKeysig` key signature (12), `PianoGenieChord` chord root (12) + chord family (8),
`PianoGenieKeysigChord` key signature (12) + root (12) + family (8), `PianoGenieKeysigChordFamily`
key signature (12) + family (8). Pitch classes are C=0 .. B=11 (its setters take the enum C=1 ..
B=12, None=0), families are Maj, Min, Aug, Dim, Seven, Maj7, Min7, Min7b5, and "none" is the
all-zero vector (the setter's 0 one-hot encodes to nothing), so there is no "none" row. A
conditioned decoder of ours whose input layer reads each condition as a one-hot with a "none"
slot maps exactly: for each condition, its none row n is added to the input bias and subtracted
from each of its other rows (then the zero vector gives bias + n, and class c gives
bias + n + (row_c - n) = bias + row_c): `condition_rows`. The condition blocks are appended to
`input_rows` in the class's order and the class is chosen with `magenta_class(conditions)`. A
condition the classes lack (style) is fixed to "none" (its none row folded into the bias) with a
one-line notice: a conditioned model is trained with each condition dropped to "none" at times.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from pianogenie.constants import NUM_KEYS, SOS
from pianogenie.util import UserError

FORMAT = "pianogenie-magenta-v1"
DESCRIPTION_FILE = "magenta.json"  # beside the weights: what was converted, for people (magenta reads none of it)

NUM_BUTTONS = 8  # the class scales the button by 7 = 8 - 1
RNN_DIM = 128
RNN_NUM_LAYERS = 2
KEY_FEATURES = NUM_KEYS + 1  # previous key one-hot, index 0 = start
DT_BINS = 33
DT_STEPS_PER_SECOND = 31.25  # the class's bin width, 32 ms
FORGET_BIAS = 1.0

_PREFIX = "phero_model/decoder/"
INPUT_KERNEL = _PREFIX + "rnn_input/dense/kernel"
INPUT_BIAS = _PREFIX + "rnn_input/dense/bias"
OUTPUT_KERNEL = _PREFIX + "pitches/dense/kernel"
OUTPUT_BIAS = _PREFIX + "pitches/dense/bias"


def lstm_names(layer: int) -> tuple[str, str]:
    cell = f"{_PREFIX}rnn/rnn/multi_rnn_cell/cell_{layer}/lstm_cell/"
    return cell + "kernel", cell + "bias"


# Class name -> widths of the condition features it appends after button, key and delta time.
MAGENTA_CLASSES: dict[tuple[str, ...], tuple[str, tuple[int, ...]]] = {
    (): ("PianoGenie", ()),
    ("key",): ("PianoGenieKeysig", (12,)),
    ("chord_root", "chord_family"): ("PianoGenieChord", (12, 8)),
    ("key", "chord_root", "chord_family"): ("PianoGenieKeysigChord", (12, 12, 8)),
    ("key", "chord_family"): ("PianoGenieKeysigChordFamily", (12, 8)),
}


def magenta_class(conditions: tuple[str, ...] = ()) -> str:
    """The @magenta/music class that plays a decoder conditioned on `conditions` (in its order)."""
    if conditions not in MAGENTA_CLASSES:
        raise UserError(
            f"@magenta/music has no PianoGenie class for the conditions {', '.join(conditions)} "
            f"(it has: {'; '.join(', '.join(c) or 'none' for c in MAGENTA_CLASSES)})"
        )
    return MAGENTA_CLASSES[conditions][0]


def magenta_delta_time(dt, delta_time_max: float) -> np.ndarray:
    """The delta time (seconds) our decoder sees for what the class is given: its 32 ms bin,
    clipped to our maximum. Rounding is TF.js's (half to even) on the float32 product, as the
    class computes it; a negative delta time encodes as no bin or bin 0, both 0 here."""
    steps = np.rint(np.asarray(dt, dtype=np.float32) * np.float32(DT_STEPS_PER_SECOND))
    bins = np.clip(steps, 0, DT_BINS - 1)
    return np.minimum(bins.astype(np.float64) / DT_STEPS_PER_SECOND, delta_time_max)


def check_mappable(cfg) -> None:
    """Refuse, in one line, a model the class cannot run."""
    if cfg.num_buttons != NUM_BUTTONS:
        raise UserError(
            f"@magenta/music's PianoGenie plays {NUM_BUTTONS} buttons (it scales the button as "
            f"2*b/{NUM_BUTTONS - 1} - 1); this model has num_buttons={cfg.num_buttons}"
        )
    if cfg.model_rnn_dim != RNN_DIM or cfg.model_rnn_num_layers != RNN_NUM_LAYERS:
        raise UserError(
            f"@magenta/music's PianoGenie runs {RNN_NUM_LAYERS} LSTM layers of {RNN_DIM} units; this "
            f"model has {cfg.model_rnn_num_layers} x {cfg.model_rnn_dim}"
        )


def input_rows(weight: np.ndarray, delta_time_max: float) -> np.ndarray:
    """Our input layer's weight (H, 88 + 1 + 1 + 1: keys, start, delta time, button) -> the
    class's input kernel rows (123, H): button, previous key (start first), delta-time bins."""
    key_rows = weight[:, :NUM_KEYS].T  # (88, H)
    start_row = weight[:, SOS]
    dt_row = weight[:, NUM_KEYS + 1]
    button_row = weight[:, NUM_KEYS + 2]
    dt_of_bin = np.minimum(np.arange(DT_BINS) / DT_STEPS_PER_SECOND, delta_time_max)  # (33,)
    return np.concatenate([button_row[None], start_row[None], key_rows, dt_of_bin[:, None] * dt_row[None]])


def condition_rows(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A condition's columns of a conditioned input layer of ours (H, n + 1: n classes, then
    "none") -> the class's rows for it (n, H), whose "none" is the all-zero vector, and the shift
    (H,) to add to the input bias: the none column folded in, and taken off every class's row."""
    none = block[:, -1]
    return (block[:, :-1] - none[:, None]).T, none


def lstm_kernel_bias(
    w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray, b_hh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One PyTorch LSTM layer (gates i, f, g, o stacked on rows) -> TF's basic LSTM cell kernel
    ([input; hidden] rows, gates i, j, f, o on columns) and bias, less the forget bias it adds."""
    i, f, g, o = np.split(np.concatenate([w_ih, w_hh], axis=1), 4)  # each (H, in + H)
    bi, bf, bg, bo = np.split(b_ih + b_hh, 4)
    return np.concatenate([i, g, f, o]).T, np.concatenate([bi, bg, bf - FORGET_BIAS, bo])


# our label columns -> the class's condition names (pianogenie.labels.LABEL_COLUMNS order)
_MAGENTA_NAME = {"keysig": "key", "chord_root": "chord_root", "chord_family": "chord_family", "style": "style"}


def _column_names(cfg) -> list[str]:
    from pianogenie.labels import LABEL_COLUMNS, condition_columns

    return [LABEL_COLUMNS[c] for c in condition_columns(cfg.condition_names)[0]]


def _column_sizes(cfg) -> tuple[int, ...]:
    from pianogenie.labels import condition_columns

    return condition_columns(cfg.condition_names)[1]


def magenta_conditions(cfg) -> tuple[str, ...]:
    """The class's conditions (MAGENTA_CLASSES keys) a model with cfg.conditions maps to: style dropped."""
    return tuple(_MAGENTA_NAME[n] for n in _column_names(cfg) if n != "style")


def magenta_weights(model: torch.nn.Module, cfg) -> tuple[dict[str, np.ndarray], list[str]]:
    """The decoder in the class's variables (float32, manifest order) and the notices of what was
    left out. Computed in float64, rounded once."""
    check_mappable(cfg)
    magenta_class(magenta_conditions(cfg))  # a class exists for them (every subset of ours has one)
    sd = {k: v.detach().cpu().to(torch.float64).numpy() for k, v in model.state_dict().items() if k.startswith("dec.")}
    if "dec.input.weight" not in sd:
        raise UserError("the checkpoint holds no decoder weights (dec.*)")
    w_in = sd["dec.input.weight"]
    rows, bias, notices = (
        [input_rows(w_in[:, : NUM_KEYS + 3], cfg.data_delta_time_max)],
        sd["dec.input.bias"].copy(),
        [],
    )
    offset = NUM_KEYS + 3
    for name, size in zip(_column_names(cfg), _column_sizes(cfg)):
        block = w_in[:, offset : offset + size]  # ours: id 0 = none first
        offset += size
        if name == "style":  # no magenta input: played as "none", its none column folded into the bias
            bias += block[:, 0]
            notices.append("the style condition is dropped (@magenta/music has no style input): it plays as style none")
            continue
        r, shift = condition_rows(np.concatenate([block[:, 1:], block[:, :1]], axis=1))
        rows.append(r)
        bias += shift
    weights = {INPUT_KERNEL: np.concatenate(rows), INPUT_BIAS: bias}
    for layer in range(RNN_NUM_LAYERS):
        kernel, bias = lstm_kernel_bias(
            *(sd[f"dec.lstm.{p}_l{layer}"] for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        )
        weights.update(zip(lstm_names(layer), (kernel, bias)))
    weights[OUTPUT_KERNEL] = sd["dec.output.weight"].T
    weights[OUTPUT_BIAS] = sd["dec.output.bias"]
    if any(k.startswith("vel.") for k in model.state_dict()):
        notices.append("the velocity head is dropped: @magenta/music's PianoGenie plays keys only")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}, notices


def export_magenta(checkpoint: str | os.PathLike, out: str | os.PathLike, *, force: bool = False) -> dict:
    """Write the checkpoint's decoder into the folder `out` as the class's checkpoint (same
    atomic, previous-export-only replacement as the TF.js export). Returns what was written:
    {"class", "notices", "variables"}."""
    from pianogenie.export import tfjs_weights, write_export_dir
    from pianogenie.model import load_model
    from pianogenie.outputs import check_output, stamp

    check_output(out, flag="--out", inputs=(checkpoint,), folder=True)  # before any work
    model, cfg = load_model(checkpoint)
    weights, notices = magenta_weights(model, cfg)
    manifest, shards = tfjs_weights(weights)
    info = {
        "format": FORMAT,
        "class": magenta_class(magenta_conditions(cfg)),
        "package": "@magenta/music 1.23.1",
        "delta_time": f"bins of {1000 / DT_STEPS_PER_SECOND:g} ms, bin j plays as min(j * 0.032, "
        f"{cfg.data_delta_time_max:g}) s in this model",
        "notices": notices,
        "source_config": {
            k: getattr(cfg, k)
            for k in (
                "num_buttons",
                "model_rnn_dim",
                "model_rnn_num_layers",
                "data_delta_time_max",
                "velocity_bins",
                "conditions",
            )
        },
    }
    files = {
        "weights_manifest.json": json.dumps(manifest).encode(),
        **dict(zip(manifest[0]["paths"], shards)),
        DESCRIPTION_FILE: (json.dumps(stamp(info, "export"), indent=2) + "\n").encode(),  # export's mark
    }
    write_export_dir(Path(out), files, inputs=(checkpoint,), force=force)
    return {"class": info["class"], "notices": notices, "variables": list(weights)}
