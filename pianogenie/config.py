"""The one training/model configuration: a frozen dataclass, saved as `cfg.json` beside checkpoints.

Field names follow the 2021 tutorial's `cfg.json`, so its file loads here unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import typing

from pianogenie.outputs import atomic_write_text
from pianogenie.util import UserError


@dataclasses.dataclass(frozen=True)
class Config:
    seed: int = 0
    num_buttons: int = 8
    # Data and augmentation
    data_delta_time_max: float = 1.0  # seconds; delta times are clipped to [0, max]
    data_augment_time_stretch_max: float = 0.05  # stretch factor drawn from [1 - x, 1 + x]
    data_augment_transpose_max: int = 6  # semitones, drawn from [-x, x] (kept on the keyboard)
    # Model
    model_rnn_dim: int = 128
    model_rnn_num_layers: int = 2
    # Optimization
    batch_size: int = 32
    seq_len: int = 128
    lr: float = 3e-4  # peak learning rate
    lr_warmup_steps: int = 1000
    lr_min_ratio: float = 0.1  # cosine decay ends at lr * lr_min_ratio at max_num_steps
    grad_clip_norm: float = 1.0
    loss_margin_multiplier: float = 1.0
    loss_contour_multiplier: float = 1.0
    # Contour schedule in one run: from step loss_contour_final_from * max_num_steps on, the contour
    # weight is loss_contour_multiplier_final (1.0 = never; what a second --init stage did before)
    loss_contour_multiplier_final: float = 1.0
    loss_contour_final_from: float = 1.0
    # Velocity head (velocity.py): 0 bins = none; train_keys=false trains it on frozen key weights (with --init)
    velocity_bins: int = 0
    velocity_hidden: int = 128
    loss_velocity_multiplier: float = 1.0
    train_keys: bool = True
    # Decoder conditioning (pianogenie.labels): a comma-separated subset of keysig, chord, style
    # ("" = none, the unconditioned model); each condition is dropped to "none" for a whole training
    # window with probability condition_dropout, so that the model plays with any subset given
    conditions: str = ""
    condition_dropout: float = 0.5
    # Bookkeeping
    summarize_frequency: int = 128
    eval_frequency: int = 1024
    # validation during training scores a fixed, seeded sample of this many windows (0: all of them;
    # `evaluate` always scores all); MAESTRO's and POP909's validation splits hold fewer
    eval_windows: int = 4096
    max_num_steps: int = 50000

    @property
    def condition_names(self) -> tuple[str, ...]:
        """The decoder's conditions, canonical order (pianogenie.labels.CONDITIONS); () = none."""
        return tuple(n for n in self.conditions.split(",") if n)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict, *, strict: bool = True) -> Config:
        """Build from a dict; unknown keys are an error (strict) or ignored; values are type-checked."""
        valid = cls.field_names()
        unknown = sorted(set(d) - set(valid))
        if unknown and strict:
            raise UserError(f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
        hints = typing.get_type_hints(cls)
        if isinstance(d.get("conditions"), list):  # an export's cfg.json lists them
            d = {**d, "conditions": ",".join(map(str, d["conditions"]))}
        kwargs = {}
        for name in valid:
            if name in d:
                kwargs[name] = _coerce(name, d[name], hints[name])
        if "conditions" in kwargs:  # one spelling per set: canonical order, "none" = ""
            from pianogenie.labels import parse_conditions

            kwargs["conditions"] = ",".join(parse_conditions(kwargs["conditions"]))
        return cls(**kwargs).validated()

    @classmethod
    def load(cls, path: str | os.PathLike, *, strict: bool = True) -> Config:
        from pianogenie.bounded import load_json, read_file

        if not str(path):
            raise UserError("config file name is empty")
        d = load_json(read_file(path, "config file", 1 << 20), f"config file {path}", max_depth=4)
        if not isinstance(d, dict):
            raise UserError(f"config file {path} must hold a JSON object")
        try:
            return cls.from_dict(d, strict=strict)
        except UserError as e:
            raise UserError(f"config file {path}: {e}") from None

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    def replace(self, **overrides) -> Config:
        return Config.from_dict({**dataclasses.asdict(self), **overrides})

    def override(self, pairs: list[str]) -> Config:
        """Apply command-line `key=value` (or `--key=value`) overrides."""
        d = {}
        for pair in pairs:
            key, sep, value = pair.lstrip("-").partition("=")
            if not sep:
                raise UserError(f"config override {pair!r} must look like --key=value")
            d[key.replace("-", "_")] = value
        return Config.from_dict({**dataclasses.asdict(self), **d})

    def validated(self) -> Config:
        if (problem := value_problem(self)) is not None:
            raise UserError(f"invalid config: {problem}")
        # What value_problem (ranges of single values) does not cover: bounds between and within keys.
        checks = [
            (self.seq_len >= 2, "seq_len must be >= 2"),
            (0 <= self.lr_min_ratio <= 1, "lr_min_ratio must be in [0, 1]"),
            (
                0 <= self.loss_contour_final_from <= 1,
                "loss_contour_final_from must be in [0, 1] (a fraction of max_num_steps; 1 = never)",
            ),
            (self.data_augment_time_stretch_max < 1, "data_augment_time_stretch_max must be in [0, 1)"),
            (
                self.velocity_bins >= 0
                and (self.velocity_bins == 0 or 128 % self.velocity_bins == 0)
                and self.velocity_hidden >= 1,
                "velocity_bins must be 0 (no velocity head) or divide 128, velocity_hidden >= 1",
            ),
            (self.train_keys or self.velocity_bins > 0, "train_keys=false needs a velocity head (velocity_bins)"),
            (0 <= self.condition_dropout <= 1, "condition_dropout must be in [0, 1]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise UserError(f"invalid config: {msg}")
        if (problem := allocation_problem(self)) is not None:
            raise UserError(f"invalid config: {problem}")
        return self


def _coerce(name: str, value, typ):
    """Accept JSON values and command-line strings, but never silently change a value's meaning."""
    if isinstance(value, str) and typ is str:
        if value.startswith('"'):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise UserError(f"config {name}={value!r}: expected a string") from None
        if not isinstance(value, str) or len(value) > 200:
            raise UserError(f"config {name}={value!r}: expected a string of at most 200 characters")
        return value
    if isinstance(value, str):
        try:
            value = json.loads(value)  # accepts Infinity and NaN: value_problem refuses them
        except (ValueError, RecursionError):
            raise UserError(f"config {name}={value!r}: expected {typ.__name__}") from None
    if typ is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if typ is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if type(value) is not typ:
        raise UserError(f"config {name}={value!r}: expected {typ.__name__}, got {type(value).__name__}")
    return value


MAX_SEED = 2**63 - 1  # torch and numpy seeds are 64-bit; numpy's must be >= 0


def value_problem(cfg: Config) -> str | None:
    """What is wrong with a value's range, or None: every float finite, every size and count >= 1,
    weights and rates >= 0 where a negative is meaningless, the seed a 64-bit non-negative integer."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            return f"{f.name}={value} must be a finite number"
    if not 0 <= cfg.seed <= MAX_SEED:
        return f"seed={cfg.seed} must be an integer in 0..{MAX_SEED}"
    non_negative = [
        "loss_margin_multiplier",
        "loss_contour_multiplier",
        "loss_contour_multiplier_final",
        "loss_velocity_multiplier",
        "lr_warmup_steps",
        "data_augment_transpose_max",
        "data_augment_time_stretch_max",
        "eval_windows",
    ]
    for name in non_negative:
        if getattr(cfg, name) < 0:
            return f"{name}={getattr(cfg, name)} must be >= 0"
    positive = [
        "lr",
        "grad_clip_norm",
        "data_delta_time_max",
        "batch_size",
        "seq_len",
        "model_rnn_dim",
        "model_rnn_num_layers",
        "max_num_steps",
        "eval_frequency",
        "summarize_frequency",
    ]
    for name in positive:
        if getattr(cfg, name) <= 0:
            return f"{name}={getattr(cfg, name)} must be > 0"
    if cfg.num_buttons < 1:
        return f"num_buttons={cfg.num_buttons} must be >= 1 (1: the language-model baseline)"
    for name, top in LIMITS.items():
        if getattr(cfg, name) > top:
            return f"{name}={getattr(cfg, name)} is out of range (at most {top:g})"
    return None


# What one value may be at most: far above any run of this project, far below what cannot be allocated.
LIMITS = {
    "num_buttons": 128,
    "model_rnn_dim": 8192,
    "model_rnn_num_layers": 16,
    "seq_len": 1 << 16,
    "batch_size": 1 << 16,
    "velocity_hidden": 8192,
    "data_augment_transpose_max": 87,
    "data_delta_time_max": 1e6,
    "max_num_steps": 1 << 40,
    "lr_warmup_steps": 1 << 40,
    "eval_frequency": 1 << 40,
    "summarize_frequency": 1 << 40,
}
# What sizes may be together: parameters (encoder + decoder LSTMs, ~16 L H^2), the activations a
# batch keeps for the backward pass (~B T H L per LSTM), the velocity head's (B T hidden). The
# shipped GPU recipe uses ~1 % of each.
MAX_PARAMETERS = 200_000_000
MAX_ACTIVATIONS = 400_000_000


def allocation_problem(cfg: Config) -> str | None:
    """Sizes that each pass LIMITS but together could not be allocated (or would take days)."""
    h, layers, bt = cfg.model_rnn_dim, cfg.model_rnn_num_layers, cfg.batch_size * cfg.seq_len
    params = 16 * layers * h * h + cfg.velocity_hidden * (h + 200) * (cfg.velocity_bins > 0)
    if params > MAX_PARAMETERS:
        return (
            f"model_rnn_dim={h} x model_rnn_num_layers={layers} (with velocity_hidden={cfg.velocity_hidden}) "
            f"is ~{params:.2g} parameters; at most {MAX_PARAMETERS:.2g}"
        )
    for what, n in [
        ("model_rnn_dim x model_rnn_num_layers", bt * h * layers),
        ("velocity_hidden", bt * cfg.velocity_hidden * (cfg.velocity_bins > 0)),
    ]:
        if n > MAX_ACTIVATIONS:
            return (
                f"batch_size={cfg.batch_size} x seq_len={cfg.seq_len} x {what} is ~{n:.2g} activations "
                f"a step; at most {MAX_ACTIVATIONS:.2g} (make the batch, the windows or the model smaller)"
            )
    return None
