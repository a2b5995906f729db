"""`PianoGenie`: a real-time play session in Python, the browser's `press` semantics on a numpy decoder.

    genie = PianoGenie.load()            # the shipped model (or a run dir / checkpoint path)
    key = genie.press(time, button)      # 0..87 (pitch = key + 21); time in seconds, button 0..7
    key = genie.press(time, button, 0.25, keys=allowed)  # only among `allowed` keys (pianogenie.scales)
    ahead = genie.look_ahead(time)       # the key each button would play now (session unchanged)
    key = genie.press(time, button, key="D", chord="G7")  # a conditioned model (cfg.conditions)

Each press feeds the decoder exactly what it saw in training: the previous key (SOS before the first
press), the delta time since the previous press clipped to [0, cfg.data_delta_time_max] (the first
press gets the max), and the button's real value 2b/(n-1) - 1.

The decoder step itself, its weights packed for batch-1 numpy, is packed.PackedDecoder; this
module is the session around it: validation, the clock, the key mask, the conditions, sampling and
look-ahead. A conditioned decoder (cfg.conditions: keysig, chord, style; pianogenie.labels) takes
them per press (see `condition_ids`); the packed step folds them into its previous-key table.
With a velocity head each press also sets `genie.velocity`, the mean of the head's distribution for
the key just chosen; without one it is the fixed DEFAULT_VELOCITY.
Sampling at temperature T uses the Gumbel-max trick, argmax(logits + T * g) with g ~ Gumbel(0, 1)
drawn from the session's seeded generator in blocks (one row per sampled press, whatever T), which
is exactly softmax(logits / T) sampling; T = 0 is argmax and draws nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pianogenie.config import Config
from pianogenie.constants import LOWEST_PITCH, NUM_KEYS, SHIPPED_GENIES, SOS
from pianogenie.inputs import button_values, delta_time
from pianogenie.packed import PackedDecoder
from pianogenie.util import UserError
from pianogenie.velocity import CHORD_DT, DEFAULT_VELOCITY

DEFAULT_MODEL = Path(__file__).resolve().parent / "pretrained" / "model.pt"
_NOISE_BLOCK = 1024  # Gumbel rows drawn at once: one refill per 1024 sampled presses (< 1 % of presses)

MAX_TEMPERATURE = 1e4  # a temperature of 100 already samples all but uniformly


def default_model_path() -> Path:
    """The checkpoint shipped inside the package; a clear error while none is shipped."""
    if not DEFAULT_MODEL.is_file():
        raise UserError(
            f"no shipped model found at {DEFAULT_MODEL}; pass --model with a run directory "
            "or checkpoint (e.g. one written by `pianogenie train`)"
        )
    return DEFAULT_MODEL


def shipped_genie(name: str) -> Path | None:
    """The folder of the shipped genie called `name` (`classical`, `pop`), or None for any other name."""
    return SHIPPED_GENIES.get(name) if isinstance(name, str) else None


def model_path(model: str | os.PathLike | None) -> Path:
    """--model: None = the shipped default; a shipped genie's name (unless a file or folder of that
    name exists here) = its model.pt; anything else, the path as given."""
    if model is None:
        return default_model_path()
    folder = shipped_genie(str(model))
    if folder is not None and not Path(model).exists():
        path = DEFAULT_MODEL if folder == DEFAULT_MODEL.parent else folder / "model.pt"
        if not path.is_file():
            raise UserError(f"the shipped {model} genie is missing from this installation ({path})")
        return path
    return Path(model)


class PianoGenie:
    """One player's session: decoder state, previous key and press time, and a seeded RNG.

    There is no `release`: the decoder only sees onsets, so how long a note sounds is the caller's
    business (`decode` takes it from the input; the browser from the button being held)."""

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        cfg: Config,
        seed: int | None = None,
        velocity_weights: dict[str, np.ndarray] | None = None,
    ):
        """`weights`: the decoder's parameters as float arrays under their PyTorch names without the
        `dec.` prefix (`input.weight`, `lstm.weight_ih_l0`, ..., `output.bias`), PyTorch layouts;
        `velocity_weights`: the velocity head's (`vel.*` without the prefix), or None."""
        self.cfg = cfg
        self.net = PackedDecoder(weights, cfg, velocity_weights)
        self.has_velocity = self.net.has_velocity
        self.conditions, self._cond_cols = self.net.conditions, self.net.cond_cols
        self.num_buttons = cfg.num_buttons
        # button -> its real value 2b/(n-1) - 1; the lookup also validates (1.0 and np.int64(1) hash as 1)
        self._button_value = dict(enumerate(button_values(cfg.num_buttons)))
        self._dt_max = float(cfg.data_delta_time_max)
        self._noisy = np.empty(NUM_KEYS, np.float32)
        self._masked = np.empty(NUM_KEYS, np.float32)
        # the last `keys` mask and the keys it was built from
        self._mask: np.ndarray | None = None
        self._mask_keys: tuple[int, ...] | None = None
        self.reset(seed)

    # ----------------------------------------------------------------------------------------------
    # Construction

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, *, seed: int | None = None) -> PianoGenie:
        """Load a run directory, our checkpoint or the tutorial's `model.pt`, or a shipped genie by
        name (`classical`, `pop`: SHIPPED_GENIES); None = the shipped default."""
        from pianogenie.model import load_model  # torch is needed to read weights, never to play

        model, cfg = load_model(model_path(path))
        return cls.from_model(model, cfg, seed=seed)

    @classmethod
    def from_model(cls, model, cfg: Config, *, seed: int | None = None) -> PianoGenie:
        """From an in-memory `Autoencoder` (or anything with a `.dec` Decoder, and maybe a `.vel` head)."""
        weights = {name: p.detach().cpu().double().numpy() for name, p in model.dec.state_dict().items()}
        vel = getattr(model, "vel", None)
        vel_weights = (
            None if vel is None else {n: p.detach().cpu().double().numpy() for n, p in vel.state_dict().items()}
        )
        return cls(weights, cfg, seed=seed, velocity_weights=vel_weights)

    # ----------------------------------------------------------------------------------------------
    # Session

    def reset(self, seed: int | None = None) -> None:
        """Forget the performance so far (state, previous key and time). The RNG keeps running so
        that repeated takes differ, unless a new `seed` is given (or on first construction)."""
        self.net.reset()
        self.k_m1 = SOS
        self.last_time: float | None = None
        self.velocity = DEFAULT_VELOCITY  # of the last press
        if seed is not None or not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(seed)
            self._gumbel = np.empty((0, NUM_KEYS), np.float32)  # a block of Gumbel(0, 1) rows
            self._noise_i = 0  # next row
            self._noise_t: float | None = None  # the temperature that _noise is scaled by

    def condition_ids(self, key=None, chord=None, style=None) -> tuple:
        """This model's condition column ids (pianogenie.labels.condition_columns) for a key signature
        (`D`, `Eb`, `Bm`, id), a chord (`G7`, `Am`, `C:maj`, (root, family) ids) and a style (`pop`,
        id); None = none. A condition the model does not take is a ValueError."""
        from pianogenie.labels import CHORD_FAMILY, CHORD_ROOT, KEYSIG, STYLE, parse_chord, parse_key, parse_style

        given = {"keysig": key, "chord": chord, "style": style}
        extra = [n for n, v in given.items() if v is not None and n not in self.conditions]
        if extra:
            takes = ", ".join(self.conditions) if self.conditions else "no conditions"
            raise ValueError(
                f"this model takes {takes}; it cannot follow {', '.join(extra)} (train one with --conditions)"
            )
        ids = [0, 0, 0, 0]
        if key is not None:
            ids[KEYSIG] = parse_key(key)
        if chord is not None:
            ids[CHORD_ROOT], ids[CHORD_FAMILY] = parse_chord(chord)
        if style is not None:
            ids[STYLE] = parse_style(style)
        return tuple(ids[c] for c in self._cond_cols)

    def press(
        self,
        time: float,
        button: int,
        temperature: float = 0.25,
        keys: Iterable[int] | None = None,
        velocity: int | None = None,
        key=None,
        chord=None,
        style=None,
    ) -> int:
        """Press `button` (0..num_buttons-1) at `time` seconds: the key played, 0..87. `self.velocity`
        is then the press's velocity: the model's (or the fixed default without a velocity head), or
        `velocity` (1..127) when given, e.g. a MIDI controller's; the model's velocity history
        records what was played either way.

        Times may start anywhere; a time earlier than the previous press counts as simultaneous.
        `keys`: the allowed keys (indices 0..87, e.g. from `pianogenie.scales.allowed_keys`), or None
        for all; the key is then sampled (temperature 0: the argmax) among those keys only.
        `key`, `chord`, `style`: the conditions of this press for a conditioned model (see
        `condition_ids`); absent = none. A model without that condition refuses them (ValueError).
        """
        if self._cond_cols or key is not None or chord is not None or style is not None:
            self.net.set_condition_ids(self.condition_ids(key, chord, style))
        b = self._button_value.get(button) if not isinstance(button, bool) else None
        if b is None:
            raise ValueError(f"button must be an integer 0..{self.num_buttons - 1}, got {button!r}")
        if not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        if not 0 <= temperature <= MAX_TEMPERATURE:  # also rejects NaN
            # beyond the bound the sampling is uniform anyway, and the float32 noise it scales would
            # overflow to +-inf, outweighing the -inf that keeps disallowed keys out
            raise ValueError(f"temperature must be in 0..{MAX_TEMPERATURE:g}, got {temperature!r}")
        if velocity is not None and not (isinstance(velocity, (int, np.integer)) and 1 <= velocity <= 127):
            raise ValueError(f"velocity must be an integer 1..127, got {velocity!r}")
        last, self.last_time = self.last_time, time
        dt = delta_time(time, last, self._dt_max)
        mask = None if keys is None else self._key_mask(keys)
        net = self.net
        if self.has_velocity:
            net.write_dense(dt, dt < CHORD_DT, math.log(dt + 1e-3), b)
        logits = net.step(self.k_m1, dt, b)
        if mask is not None:  # -inf on the keys not allowed: argmax and Gumbel-max pick among the rest
            logits = np.add(logits, mask, self._masked)
        if temperature > 0:
            if self._noise_i == len(self._gumbel):
                self._gumbel = self._rng.gumbel(size=(_NOISE_BLOCK, NUM_KEYS)).astype(np.float32)
                self._noise_i, self._noise_t = 0, None
            if temperature != self._noise_t:  # noise pre-scaled by T, redone only when T changes
                self._noise, self._noise_t = self._gumbel * np.float32(temperature), temperature
            noisy = self._noisy
            np.add(self._noise[self._noise_i], logits, noisy)
            self._noise_i += 1
            k = int(noisy.argmax())
        else:
            k = int(logits.argmax())
        self.k_m1 = k
        if self.has_velocity:
            net.keep_history()
            v = net.velocity(k) if velocity is None else int(velocity)
            self.velocity = v
            x = v / 127
            net.write_u(x, x * x, k / NUM_KEYS, 1.0)  # u_i enters s_{i+1} at the next press
        else:
            self.velocity = DEFAULT_VELOCITY if velocity is None else int(velocity)
        return k

    def velocity_logits(self, k: int) -> np.ndarray:
        """The velocity head's (bins,) logits for key k after the last press (a copy)."""
        return self.net.velocity_logits(k)

    def press_pitch(
        self, time: float, button: int, temperature: float = 0.25, keys: Iterable[int] | None = None
    ) -> int:
        """`press`, returning the MIDI pitch (21..108) instead of the key."""
        return self.press(time, button, temperature, keys) + LOWEST_PITCH

    def look_ahead(self, time: float, keys: Iterable[int] | None = None) -> list[int]:
        """The key each button would play if pressed at `time` (argmax among `keys`), one per button.
        Leaves the session exactly as it was: state, previous key and time, and the RNG."""
        if not math.isfinite(time):
            raise ValueError(f"time must be a finite number of seconds, got {time!r}")
        mask = self._key_mask(keys)
        dt = delta_time(time, self.last_time, self._dt_max)
        net = self.net
        saved = net.save()
        out = []
        for button in range(self.num_buttons):
            logits = net.step(self.k_m1, dt, self._button_value[button])
            out.append(int((logits if mask is None else np.add(logits, mask, self._masked)).argmax()))
            net.restore(saved)
        return out

    def _key_mask(self, keys: Iterable[int] | None) -> np.ndarray | None:
        """(88,) float32: 0 on allowed keys, -inf elsewhere; rebuilt only when the key set changes."""
        if keys is None:
            return None
        keys = tuple(keys)
        if keys != self._mask_keys:
            if not keys or not all(
                isinstance(k, (int, np.integer)) and not isinstance(k, bool) and 0 <= k < NUM_KEYS for k in keys
            ):
                raise ValueError(f"keys must be a non-empty set of key indices 0..{NUM_KEYS - 1}, got {keys!r}")
            mask = np.full(NUM_KEYS, -np.inf, np.float32)
            mask[list(keys)] = 0.0
            self._mask, self._mask_keys = mask, keys
        return self._mask

    def step(self, k_m1: int, dt: float, b: float) -> np.ndarray:
        """One raw decoder step (previous key 0..88, delta time, real button value): a copy of the
        (88,) logits. Advances the state but not `k_m1`/`last_time`: `press` is the session API."""
        return self.net.step(int(k_m1), float(dt), float(b)).copy()
