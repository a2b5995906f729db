"""The notes-file format (pianogenie.notes_file): load_notes on the tutorial's files and ours, bad files, and its binary cache."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_files, write_maestro

from pianogenie import notes_file as data
from pianogenie.maestro import find_source
from pianogenie.notes_file import load_notes
from pianogenie.prepare import prepare
from pianogenie.util import UserError


def tutorial_style_file(path: Path, dataset: dict) -> Path:
    """Written as the 2021 tutorial's notebook does: json.dumps (", " separators) + gzip, floats everywhere."""
    with gzip.open(path, "wt") as f:
        json.dump(dataset, f)
    return path


def test_load_notes_reads_tutorial_format(tmp_path):
    rng = np.random.default_rng(0)
    perf = [
        [float(t), 0.1234567891234, float(k), float(v)]
        for t, k, v in zip(np.cumsum(rng.random(50)), rng.integers(0, 88, 50), rng.integers(1, 128, 50))
    ]
    dataset = {"train": [perf, perf[:10]], "validation": [perf[:3]], "test": []}
    loaded = load_notes(tutorial_style_file(tmp_path / "maestro-v2.0.0-simple.json.gz", dataset))
    assert set(loaded) == {"train", "validation", "test"} and loaded["test"] == []
    np.testing.assert_array_equal(loaded["train"][0], np.array(perf))  # exact: full-precision floats
    assert loaded["validation"][0].shape == (3, 4) and loaded["validation"][0].dtype == np.float64


def test_fast_and_general_readers_agree(tmp_path):
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "o.json.gz"
    prepare(src, out, workers=1, progress=False)
    text = gzip.decompress(out.read_bytes())
    general = data._parse_general(out, text)
    fast = data._parse_fast(text)
    assert fast is not None and fast.keys() == general.keys()
    for split in fast:
        for a, b in zip(fast[split], general[split], strict=True):
            np.testing.assert_array_equal(a, b)


def test_notes_json_is_plain_json_and_exact():
    rng = np.random.default_rng(1)
    t = np.round(np.sort(rng.random(500) * 5000), 6)
    notes = np.stack(
        [t, np.round(rng.random(500) * 30 + 1e-6, 6), rng.integers(0, 88, 500), rng.integers(1, 128, 500)], 1
    )
    notes[0, :2] = [0.0, 0.000001]
    text = data.notes_to_json(notes)
    np.testing.assert_array_equal(np.array(json.loads(text)), notes)  # any JSON reader, exact values
    np.testing.assert_array_equal(data._parse_fast(b'{"test":[' + text + b"]}")["test"][0], notes)


@pytest.mark.parametrize(
    "content,words",
    [
        (b"plain text, not gzip", "not a gzip file"),
        (gzip.compress(b"{not json"), "not valid JSON"),
        (gzip.compress(b"[1, 2, 3]"), "wrong structure"),
        (gzip.compress(b'{"training": []}'), "wrong structure"),
        (gzip.compress(b'{"train": {"a": 1}}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80], [1.0, 0.5, 40]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80, 1], [1.0, 0.5, 40]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[["a", 0.5, 39, 80]]]}'), "wrong structure"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 88, 80]]]}'), "train performance 0, note 0: key must be"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 3.5, 80]]]}'), "note 0: key must be an integer"),
        (gzip.compress(b'{"train": [[[0.0, 0.5, 30, 0]]]}'), "note 0: velocity must be"),
        (gzip.compress(b"{}")[:-6], "corrupt gzip"),
        # ragged rows whose numbers add up to whole rows of four (once read as two valid notes)
        (gzip.compress(b'{"train": [[[0,0.1,40],[80,0.2,0.1,41,80]]]}'), "train performance 0, note 0: expected"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80]],[[0,0.1,40],[80,0.2,0.1,41,80]]]}'), "performance 1, note 0"),
        # numbers written as strings or booleans (numpy would convert them)
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,0.1,"41",80]]]}'), "performance 0, note 1: expected"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,0.1,true,80]]]}'), "note 1: expected"),
        (gzip.compress(b'{"validation": [[[0,0.1,40,80]]], "train": [[[0,null,40,80]]]}'), "train performance 0"),
        # negative durations, decreasing onsets, absurd times
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[0.5,-0.1,41,80]]]}'), "note 1: duration must be"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[1,0.1,41,80],[0.5,0.1,41,80]]]}'), "note 2: onset before"),
        (gzip.compress(b'{"train": [[[0,0.1,40,80],[1e308,0.1,41,80]]]}'), "note 1: onset must be"),
        (gzip.compress(b'{"train": [[[-1,0.1,40,80]]]}'), "note 0: onset must be"),
        # deeply nested JSON
        (gzip.compress(b'{"train": ' + b"[" * 100000 + b"]" * 100000 + b"}"), "not valid JSON"),
    ],
)
def test_load_notes_bad_files_name_the_file(tmp_path, content, words):
    path = tmp_path / "bad.json.gz"
    path.write_bytes(content)
    with pytest.raises(UserError, match=words) as e:
        load_notes(path)
    assert str(path) in str(e.value)


def test_load_notes_missing_file(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        load_notes(tmp_path / "nope.json.gz")


# ---------------------------------------------------------------------------------------------
# load_notes' binary cache


def cache_files() -> list[Path]:
    from pianogenie.download import cache_dir

    return sorted((cache_dir() / "notes").glob("*.npz"))


def test_prepare_primes_the_cache_and_load_uses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    src = find_source(write_maestro(tmp_path / "m", tiny_files()))
    out = tmp_path / "o.json.gz"
    prepare(src, out, workers=1, progress=False)
    assert len(cache_files()) == 1
    parsed = data._parse_general(out, gzip.decompress(out.read_bytes()))
    monkeypatch.setattr(data, "_parse_fast", lambda text: pytest.fail("the cache should have answered"))
    cached = load_notes(out)
    assert cached.keys() == parsed.keys()
    for split in parsed:
        for a, b in zip(cached[split], parsed[split], strict=True):
            np.testing.assert_array_equal(a, b)


def test_cache_keeps_only_the_most_recently_used_entries(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    paths = []
    for i in range(data._CACHE_KEEP + 1):
        path = tmp_path / f"n{i}.json.gz"
        path.write_bytes(gzip.compress(b'{"train": [[[0.0, 0.5, %d, 80]]]}' % i))
        paths.append(path)
    entry = [data._cache_path(p.read_bytes()) for p in paths]
    for i, path in enumerate(paths[:-1]):
        load_notes(path)
        os.utime(entry[i], (1000 * (i + 1),) * 2)  # n0 oldest
    load_notes(paths[0])  # a hit makes n0 the most recent, so n1 is now the oldest
    load_notes(paths[-1])
    assert set(cache_files()) == set(entry) - {entry[1]}


def test_cache_follows_contents_and_survives_damage(tmp_path, monkeypatch):
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "n.json.gz"
    path.write_bytes(gzip.compress(b'{"train": [[[0.0, 0.5, 39, 80]]], "test": []}'))
    first = load_notes(path)
    assert len(cache_files()) == 1 and first["test"] == []
    path.write_bytes(gzip.compress(b'{"train": [[[1.0, 0.5, 40, 81], [2.0, 0.25, 41, 82]]]}'))
    second = load_notes(path)  # other contents: not the old cache entry
    np.testing.assert_array_equal(second["train"][0], [[1.0, 0.5, 40, 81], [2.0, 0.25, 41, 82]])
    assert len(cache_files()) == 2
    for f in cache_files():
        f.write_bytes(b"damaged")
    np.testing.assert_array_equal(load_notes(path)["train"][0], second["train"][0])


def test_unwritable_cache_does_not_stop_loading(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("PIANOGENIE_CACHE", str(blocker))
    path = tmp_path / "n.json.gz"
    path.write_bytes(gzip.compress(b'{"validation": [[[0.0, 0.5, 39, 80]]]}'))
    assert load_notes(path)["validation"][0].shape == (1, 4)


def test_cache_tells_apart_multi_member_gzip_files_that_end_alike(tmp_path, monkeypatch):
    """Same length, same last member (so the same gzip trailer), different first members."""
    monkeypatch.setenv("PIANOGENIE_CACHE", str(tmp_path / "cache"))
    tail = gzip.compress(b"]]]}", mtime=0)
    heads = [gzip.compress(b'{"train":[[[0,0.5,%d,80' % k, mtime=0) for k in (40, 41)]
    assert len(heads[0]) == len(heads[1]) and heads[0] != heads[1]
    paths = []
    for i, h in enumerate(heads):
        paths.append(tmp_path / f"n{i}.json.gz")
        paths[-1].write_bytes(h + tail)
    assert paths[0].read_bytes()[-8:] == paths[1].read_bytes()[-8:]
    assert load_notes(paths[0])["train"][0][0, 2] == 40
    assert load_notes(paths[1])["train"][0][0, 2] == 41  # not the first file's notes from the cache


def test_a_gzip_bomb_is_refused_before_it_fills_memory(tmp_path):
    from pianogenie.notes_file import _decompress

    two = gzip.compress(b'{"train": [') + gzip.compress(b"[[0, 1, 40, 64]]]}")  # prepare writes members
    assert _decompress(tmp_path / "n.json.gz", two) == b'{"train": [[[0, 1, 40, 64]]]}'
    bomb = gzip.compress(b" " * 100_000)
    with pytest.raises(UserError, match="would exceed"):
        _decompress(tmp_path / "n.json.gz", bomb, limit=10_000)
    with pytest.raises(UserError, match="corrupt gzip data"):
        _decompress(tmp_path / "n.json.gz", bomb[:-20])
