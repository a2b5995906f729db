"""Note arrays -> model inputs: random augmented training windows and deterministic evaluation windows.

All performances of a split are concatenated once, so a batch is a few vectorised numpy
gathers instead of a Python loop over notes. A split of a notes store (`pianogenie.store`) is
already concatenated on disk: its columns, condition labels included, are used memory-mapped, as
they are, so a batch reads only the pages its windows touch and nothing grows with the dataset
(but the velocity head's history states, which are computed over the whole split in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from pianogenie.constants import NUM_KEYS
from pianogenie.inputs import delta_times
from pianogenie.labels import drop_conditions, transpose_labels
from pianogenie.util import UserError
from pianogenie.velocity import history_states, key_offset_response, state_inputs

ONSET, DURATION, KEY, VELOCITY = range(4)  # columns of a performance's (N, 4) note array


@dataclass
class Batch:
    k: torch.Tensor  # (B, T) long keys 0..87 (padding repeats the last note)
    t: torch.Tensor  # (B, T) float delta times, first of each window = max
    lengths: torch.Tensor  # (B,) long number of real notes per row
    mask: torch.Tensor  # (B, T) bool, True on real notes
    # Only from Notes(..., velocity=True): what the velocity head learns from (velocity.py)
    v: torch.Tensor | None = None  # (B, T) long velocities 1..127
    s: torch.Tensor | None = None  # (B, T, S) float velocity history states before each note
    pos: torch.Tensor | None = None  # (B, T) long index of each note in its performance
    # Only from Notes(..., labels=...): per-note condition ids (B, T, 4), pianogenie.labels.LABEL_COLUMNS
    c: torch.Tensor | None = None

    def _fields(self) -> tuple:
        return (self.k, self.t, self.lengths, self.mask, self.v, self.s, self.pos, self.c)

    def to(self, device, non_blocking: bool = False) -> Batch:
        """Every tensor on `device` except lengths, which stay on the CPU, where pack_padded_sequence
        wants them and where reading them costs no device sync."""
        return self.map(lambda x: x.to(device, non_blocking=non_blocking))

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
        """A Batch with `fn` applied to every tensor but lengths (absent ones stay None)."""
        return replace(
            self,
            **{f.name: fn(x) for f in fields(self) if f.name != "lengths" and (x := getattr(self, f.name)) is not None},
        )

    def split(self, n: int) -> list[Batch]:
        """n shards along the batch dimension (fewer if the batch is smaller)."""
        cols = [[None] * n if x is None else x.tensor_split(n) for x in self._fields()]
        return [Batch(*p) for p in zip(*cols) if len(p[0])]


class LabelColumns:
    """Per-note condition ids kept as their four (N,) columns, a store's memmaps: `[idx]` gathers
    each column and stacks them, (..., 4) int8, the values an (N, 4) array's `[idx]` would give,
    reading only the pages the windows touch."""

    def __init__(self, columns: Sequence[np.ndarray]):
        self.columns = list(columns)

    def __getitem__(self, idx: np.ndarray) -> np.ndarray:
        return np.stack([c[idx] for c in self.columns], axis=-1)


def _lengths(seq: Sequence[np.ndarray]) -> np.ndarray:
    """Each item's length; a store's from its lengths column, without reading its performances."""
    from pianogenie.store import StoreLabels, StoreSplit

    if isinstance(seq, (StoreSplit, StoreLabels)):
        return seq.lengths
    return np.array([len(a) for a in seq], dtype=np.int64)


class Notes:
    """One split's performances, concatenated for fast window gathers."""

    def __init__(
        self,
        performances: Sequence[np.ndarray],
        name: str = "split",
        velocity: bool = False,
        labels: Sequence[np.ndarray] | None = None,
    ):
        """`labels`: per performance its (N, 4) condition ids (`pianogenie.notes_file.load_labels`;
        a store's StoreLabels are gathered from memory-mapped, as LabelColumns), or None."""
        from pianogenie.store import StoreLabels, StoreSplit

        self.labels: np.ndarray | LabelColumns | None = None
        if labels is not None:
            sizes = _lengths(performances)
            if len(labels) != len(performances) or not np.array_equal(_lengths(labels), sizes):
                raise UserError(f"the {name} split's labels do not match its notes")
            if isinstance(labels, StoreLabels):
                # a store holds no empty performance: its note indices are those of the concatenation
                self.labels = LabelColumns(labels.columns)
            else:
                kept = [a for a, n in zip(labels, sizes) if n > 0]
                self.labels = np.concatenate(kept).astype(np.int8) if kept else None
        if isinstance(performances, StoreSplit):
            self._from_store(performances, name, velocity)
            return
        performances = [p for p in performances if len(p) > 0]
        if not performances:
            raise UserError(f"the {name} split holds no notes")
        self.lengths = np.array([len(p) for p in performances], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        notes = np.concatenate(performances)
        self.onsets = notes[:, ONSET].astype(np.float64)
        self.keys = notes[:, KEY].astype(np.int64)
        if self.keys.min() < 0 or self.keys.max() >= NUM_KEYS:
            raise UserError(f"the {name} split has keys outside 0..{NUM_KEYS - 1}")
        self.velocity = velocity
        if velocity:  # history states over whole performances: a window's first notes know the past
            self.velocities = np.clip(np.rint(notes[:, VELOCITY]), 0, 127).astype(np.int64)
            self.states = history_states(self.lengths, state_inputs(self.velocities, self.keys))  # (N, S)
            self.pos = np.arange(len(notes)) - np.repeat(self.starts, self.lengths)
            self.key_response = key_offset_response(int(self.lengths.max()))  # (max length, S)

    def _from_store(self, split, name: str, velocity: bool) -> None:
        if not len(split):
            raise UserError(f"the {name} split holds no notes")
        # prepare validated every key and velocity before writing them: no scan of the whole split here
        self.lengths, self.starts = split.lengths, split.starts
        self.onsets, self.keys = split.onsets, split.keys  # float64 and uint8 memmaps
        self.velocity = velocity
        if velocity:
            self.velocities = np.asarray(split.velocities, dtype=np.int64)
            self.states = history_states(
                self.lengths, state_inputs(self.velocities, np.asarray(self.keys, dtype=np.int64))
            )
            self.pos = np.arange(len(self.keys)) - np.repeat(self.starts, self.lengths)
            self.key_response = key_offset_response(int(self.lengths.max()))

    def index(self, start: np.ndarray, length: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        """Global note indices (B, T) of windows of `length[i] <= seq_len` notes from `start[i]`, and
        the (B, T) mask of real notes; padding repeats a window's last note."""
        pos = np.arange(seq_len)
        mask = pos[None, :] < length[:, None]
        return start[:, None] + np.minimum(pos[None, :], length[:, None] - 1), mask

    def gather(
        self,
        idx: np.ndarray,
        mask: np.ndarray,
        delta_time_max: float,
        stretch: np.ndarray | None = None,
        transpose: np.ndarray | None = None,
        condition_dropout: tuple | None = None,
    ) -> Batch:
        """The windows `idx` as a Batch; `condition_dropout` = (rng, p): labels dropped to none per
        window and condition (pianogenie.labels.drop_conditions)."""
        k = self.keys[idx].astype(np.int64)  # (B, T) (a store's keys are uint8)
        onsets = np.asarray(self.onsets[idx], dtype=np.float64)
        if stretch is not None:
            onsets = onsets * stretch[:, None]
        if transpose is not None:
            k = k + transpose[:, None]
        t = delta_times(onsets, delta_time_max)  # each window starts fresh, as real-time play does
        batch = Batch(
            torch.from_numpy(k),
            torch.from_numpy(t.astype(np.float32)),
            torch.from_numpy(mask.sum(axis=1)),
            torch.from_numpy(mask),
        )
        if self.labels is not None:
            c = self.labels[idx].astype(np.int64)  # (B, T, 4)
            if transpose is not None:  # key signature and chord root move with the keys
                c = transpose_labels(c, transpose)
            if condition_dropout is not None:
                c = drop_conditions(c, *condition_dropout)
            batch.c = torch.from_numpy(c)
        if self.velocity:
            pos = self.pos[idx]
            s = self.states[idx]  # (B, T, S)
            if transpose is not None:  # the key columns of the state move with the transposition
                s = s + transpose[:, None, None].astype(np.float32) * self.key_response[pos]
            batch.v, batch.s, batch.pos = (
                torch.from_numpy(self.velocities[idx]),
                torch.from_numpy(s),
                torch.from_numpy(pos),
            )
        return batch


class TrainWindows:
    """Uniformly random windows (every window start equally likely), time-stretched and transposed."""

    def __init__(self, notes: Notes, seq_len: int):
        self.notes, self.seq_len = notes, seq_len
        # Window starts per performance: N - T + 1 for long ones, one short window for short ones.
        self.num_starts = np.maximum(notes.lengths - seq_len + 1, 1)
        self.cum_starts = np.cumsum(self.num_starts)

    def sample(
        self,
        rng: np.random.Generator,
        batch_size: int,
        delta_time_max: float,
        stretch_max: float = 0.0,
        transpose_max: int = 0,
        condition_dropout: float = 0.0,
    ) -> Batch:
        w = rng.integers(0, self.cum_starts[-1], size=batch_size)
        perf = np.searchsorted(self.cum_starts, w, side="right")
        offset = w - (self.cum_starts[perf] - self.num_starts[perf])
        length = np.minimum(self.notes.lengths[perf], self.seq_len)
        start = self.notes.starts[perf] + offset
        idx, mask = self.notes.index(start, length, self.seq_len)
        stretch = rng.uniform(1 - stretch_max, 1 + stretch_max, size=batch_size)
        transpose = np.zeros(batch_size, dtype=np.int64)
        if transpose_max:
            # A shift that keeps every note of the window on the keyboard: clamping at the
            # edges would invent repeated notes that the performer never played.
            keys = self.notes.keys[idx].astype(np.int64)
            low = np.maximum(-transpose_max, -keys.min(axis=1))  # (B,)
            high = np.minimum(transpose_max, NUM_KEYS - 1 - keys.max(axis=1))
            transpose = rng.integers(low, high + 1)
        # the dropout's draws come last and only with labels: unlabelled runs draw as before
        drop = (rng, condition_dropout) if self.notes.labels is not None else None
        return self.notes.gather(idx, mask, delta_time_max, stretch, transpose, drop)


def eval_windows(
    notes: Notes, seq_len: int, protocol: str = "all", sample: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(start, length) of evaluation windows: every non-overlapping full window ("all"), or each
    performance's first window ("first128", the 2021 tutorial's protocol). A performance shorter
    than one window contributes one short window. With `sample` > 0 and more windows than that,
    a fixed subset of `sample` of them, drawn with `seed` (the same at every evaluation of a run),
    in their original order."""
    if protocol not in ("all", "first128"):
        raise UserError(f"unknown evaluation protocol {protocol!r} (expected 'all' or 'first128')")
    n = np.asarray(notes.lengths, dtype=np.int64)
    count = np.ones_like(n) if protocol == "first128" else np.maximum(n // seq_len, 1)
    perf = np.repeat(np.arange(len(n)), count)
    j = np.arange(len(perf)) - np.repeat(np.cumsum(count) - count, count)  # window number in its performance
    starts = np.asarray(notes.starts, dtype=np.int64)[perf] + j * seq_len
    lengths = np.minimum(n[perf], seq_len)
    if 0 < sample < len(starts):
        pick = np.sort(np.random.default_rng([seed, len(starts)]).choice(len(starts), size=sample, replace=False))
        starts, lengths = starts[pick], lengths[pick]
    return starts, lengths
