"""The model's input rules, in one place: the real value a button feeds the decoder and the delta
time a note feeds both networks. Training (windows, the velocity head's statistics), the numpy play
session, export's golden cases and the browser (through the values export writes into cfg.json)
all follow these. numpy only; the rules work on Python numbers, numpy arrays and torch tensors alike.
"""

from __future__ import annotations

import numpy as np


def button_value(b, num_buttons: int):
    """Button b (0..num_buttons-1) -> the quantizer's bin centre 2b/(n-1) - 1, in [-1, 1]; the
    one-button language-model baseline's single button is the centre 0."""
    if num_buttons == 1:
        return b * 0.0
    return b * (2 / (num_buttons - 1)) - 1


def button_values(num_buttons: int) -> list[float]:
    """Every button's value, in button order (what export writes into cfg.json for the browser)."""
    return [float(button_value(b, num_buttons)) for b in range(num_buttons)]


def delta_time(time: float, last_time: float | None, delta_time_max: float) -> float:
    """The delta time of a note at `time` after one at `last_time`: clipped to [0, max] (a clock
    going backwards counts as simultaneous); the first note (no `last_time`) gets the max."""
    if last_time is None:
        return delta_time_max
    return min(max(time - last_time, 0.0), delta_time_max)


def delta_times(onsets: np.ndarray, delta_time_max: float) -> np.ndarray:
    """Onset delta times `t_i - t_{i-1}` clipped to [0, max] along the last axis (one performance,
    or a batch of windows); the first note's is the max, as every window and session starts."""
    onsets = np.asarray(onsets, dtype=np.float64)
    if onsets.shape[-1] == 0:
        return np.zeros(onsets.shape)
    return np.clip(np.diff(onsets, axis=-1, prepend=-np.inf), 0.0, delta_time_max)
