"""Conditioned training from a notes store: its label columns are gathered memory-mapped, and the
batches, evaluation and harmony figures are those of the same data as gzip JSON."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import build_midi

from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.evaluate import evaluate, harmony_metrics
from pianogenie.notes_file import load_labels, load_notes
from pianogenie.prefetch import BatchSource
from pianogenie.store import StoreLabels, StoreSplit
from pianogenie.train import Trainer
from pianogenie.util import UserError
from pianogenie.windows import LabelColumns, Notes


def song(shift: int, bars: int) -> bytes:
    """Arpeggios of C, F, G and A minor moved by `shift` semitones: estimated keys and chords vary."""
    chords = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (69, 72, 76)]
    notes = [(4.0 * b + 0.5 * j, 0.45, chords[b % 4][j % 3] + shift, 60 + 7 * j) for b in range(bars) for j in range(8)]
    return build_midi(notes)


def labelled(tmp_path: Path, capsys) -> tuple[Path, Path]:
    """The same tiny collection prepared with estimated labels as a store and as gzip JSON."""
    src = tmp_path / "src"
    for i, (shift, bars) in enumerate([(0, 6), (2, 3), (-3, 9), (5, 1), (7, 4)]):
        (src / f"p{i}").mkdir(parents=True)
        (src / f"p{i}" / "x.mid").write_bytes(song(shift, bars))
    store, js = tmp_path / "store", tmp_path / "n.json.gz"
    for out in (store, js):
        args = ["prepare", str(src), "-o", str(out), "--labels", "estimated", "--workers", "1"]
        code = main([*args, "--split-fractions", "1,0,0"])
        capsys.readouterr()
        assert code == 0
    return store, js


def same_batch(x, y) -> bool:
    return all(
        (u is None and v is None) or (u is not None and v is not None and u.dtype == v.dtype and bool((u == v).all()))
        for u, v in zip(x._fields(), y._fields())
    )


def test_conditioned_store_batches_equal_the_json_ones_and_labels_stay_mapped(tmp_path, capsys):
    store, js = labelled(tmp_path, capsys)
    cfg = Config(model_rnn_dim=16, batch_size=16, seq_len=16, conditions="keysig,chord,style")
    trainers = {}
    for name, path in (("store", store), ("json", js)):
        data, labels = load_notes(path), load_labels(path)
        trainers[name] = Trainer(cfg, data, tmp_path / name, device="cpu", progress=False, labels=labels)
    s_labels, j_labels = load_labels(store), load_labels(js)
    assert isinstance(s_labels["train"], StoreLabels)  # still the per-performance arrays, read on demand
    assert [a.tolist() for a in s_labels["train"]] == [a.tolist() for a in j_labels["train"]]

    # the store's labels stay its four memory-mapped columns: no array of all the notes' labels
    notes = trainers["store"].windows.notes
    assert isinstance(notes.labels, LabelColumns) and not isinstance(notes.labels, np.ndarray)
    assert len(notes.labels.columns) == 4 and all(isinstance(c, np.memmap) for c in notes.labels.columns)
    assert isinstance(trainers["json"].windows.notes.labels, np.ndarray)

    for seed in range(4):  # time stretch, transposition and condition dropout all drawn
        x = BatchSource(trainers["store"].windows, np.random.default_rng(seed), cfg).next()
        y = BatchSource(trainers["json"].windows, np.random.default_rng(seed), cfg).next()
        assert x.c is not None and x.c.dtype == y.c.dtype and same_batch(x, y)
    varied = BatchSource(trainers["store"].windows, np.random.default_rng(0), cfg.replace(condition_dropout=0.0))
    c = varied.next().c
    assert len(np.unique(c[..., 0])) > 1 and len(np.unique(c[..., 1])) > 1  # labels that could differ

    model = trainers["store"].model
    a = evaluate(model, load_notes(store)["train"], cfg, labels=s_labels["train"])
    b = evaluate(model, load_notes(js)["train"], cfg, labels=j_labels["train"])
    assert a == b and "perplexity_no_conditions" in a
    h_store = harmony_metrics(model, load_notes(store)["train"], s_labels["train"], cfg, temperatures=(0.0,))
    assert h_store == harmony_metrics(model, load_notes(js)["train"], j_labels["train"], cfg, temperatures=(0.0,))


def test_store_labels_must_match_the_notes(tmp_path, capsys):
    store, js = labelled(tmp_path, capsys)
    split = load_notes(store)["train"]
    assert isinstance(split, StoreSplit)
    labels = load_labels(store)["train"]
    with pytest.raises(UserError, match="labels do not match"):
        Notes(split[1:], "train", labels=labels)
    # a store's labels with the same notes read from the JSON: gathered from the same columns
    notes = Notes(load_notes(js)["train"], "train", labels=labels)
    assert isinstance(notes.labels, LabelColumns)
    idx = np.arange(int(split.lengths.sum()))
    assert np.array_equal(notes.labels[idx], np.concatenate(list(load_labels(js)["train"])))
