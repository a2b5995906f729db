"""Hostile input, seeded and bounded: random bytes, truncations and byte flips of real files fed to
`prepare` (as MIDI files and as metadata), `decode` and `load_notes`.

Every case must end with exit status 0 or 2 (never the CLI's last-resort 1, never an exception
escaping), every line on stderr must be one of ours (`pianogenie CMD: ...`), and nothing may be
left but the outputs asked for. PIANOGENIE_FUZZ_CASES sets the count per target (default 40).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import warnings
from pathlib import Path

import pytest
from helpers import build_midi, foreign_image, foreign_midi, foreign_tarball, random_checkpoint, write_maestro

from pianogenie.cli import main
from pianogenie.notes_file import load_notes
from pianogenie.util import UserError

CASES = int(os.environ.get("PIANOGENIE_FUZZ_CASES", "40"))


def mutate(rng: random.Random, real: bytes) -> bytes:
    """One hostile variant of `real`: random bytes, a truncation, byte flips, or a spliced copy."""
    kind = rng.randrange(5)
    if kind == 4:  # nesting deeper than any parser's recursion limit
        return rng.choice([b"[", b'{"a":', b'{"presses":[', b'{"train":[']) * 100_000
    if kind == 0:
        return rng.randbytes(rng.choice([0, 1, 4, 14, 100, 2000]))
    if kind == 1:
        return real[: rng.randrange(len(real) + 1)]
    data = bytearray(real)
    if kind == 2:
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    a, b = sorted(rng.randrange(len(data) + 1) for _ in range(2))  # kind 3: splice
    return bytes(data[:a] + data[b:] + data[a:b])


def assert_our_lines(err: str, command: str) -> None:
    for line in err.strip().splitlines():
        assert line.startswith(f"pianogenie {command}: "), err
    errors = [line for line in err.splitlines() if ": error: " in line]
    assert len(errors) <= 1, err


def real_midi(rng: random.Random) -> bytes:
    notes = [(i * 0.25, 0.2, rng.randint(21, 108), rng.randint(1, 127)) for i in range(rng.randint(1, 40))]
    return build_midi(notes, tempos=[(0, 500000), (960, 400000)])


@pytest.mark.slow
def test_fuzz_prepare(tmp_path, capsys):
    rng = random.Random(10)
    for case in range(CASES):
        root = tmp_path / f"c{case}"
        files = {f"p{i}.midi": (rng.choice(["train", "validation"]), mutate(rng, real_midi(rng))) for i in range(3)}
        files["good.midi"] = ("train", real_midi(rng))
        write_maestro(root / "m", files, formats=(rng.choice(["json", "csv"]),))
        if rng.random() < 0.3:  # the metadata itself damaged
            meta = next((root / "m").glob("maestro-v3.0.0.*"))
            meta.write_bytes(mutate(rng, meta.read_bytes()))
        before = sorted(p.relative_to(root) for p in root.rglob("*"))
        out = root / "out" / "notes.json.gz"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no library warning leaks to the user either
            code = main(["prepare", str(root / "m"), "-o", str(out), "--workers", str(rng.choice([1, 2]))])
        err = capsys.readouterr().err
        assert code in (0, 2), (case, err)
        assert_our_lines(err, "prepare")
        after = sorted(p.relative_to(root) for p in root.rglob("*"))
        expected = before + (
            [Path("out"), Path("out/notes.json.gz"), Path("out/notes.report.json")] if code == 0 else []
        )
        assert after == sorted(expected) or (code == 2 and after == sorted(before + [Path("out")])), (case, after)
        if code == 0:
            assert len(load_notes(out)["train"]) >= 1


@pytest.mark.slow
def test_fuzz_decode(tmp_path, capsys):
    rng = random.Random(11)
    ckpt = random_checkpoint(tmp_path / "model.pt")
    reals = {
        ".csv": "time,button,duration\n" + "".join(f"{i * 0.2:.2f},{i % 8},0.1\n" for i in range(30)),
        ".json": json.dumps([[i * 0.2, i % 8] for i in range(30)]),
        ".mid": build_midi([(i * 0.5, 0.4, 60 + i % 8, 80) for i in range(30)]),
    }
    for case in range(CASES):
        suffix = rng.choice(sorted(reals))
        real = reals[suffix] if isinstance(reals[suffix], bytes) else reals[suffix].encode()
        work = tmp_path / f"c{case}"
        work.mkdir()
        src = work / f"in{suffix if rng.random() < 0.8 else '.bin'}"
        src.write_bytes(mutate(rng, real))
        out = work / "out.mid"
        code = main(["decode", str(src), "-o", str(out), "--model", str(ckpt), "--seed", str(case)])
        err = capsys.readouterr().err
        assert code in (0, 2), (case, src.read_bytes()[:200], err)
        assert_our_lines(err, "decode")
        assert sorted(p.name for p in work.iterdir()) == sorted([src.name] + (["out.mid"] if code == 0 else []))
        if code == 0:
            import pretty_midi

            pretty_midi.PrettyMIDI(str(out))  # whatever decode writes reads back


def test_fuzz_load_notes(tmp_path):
    rng = random.Random(12)
    text = json.dumps(
        {
            "train": [[[i * 0.5, 0.25, 30 + i % 40, 64] for i in range(50)]],
            "validation": [[[0.0, 0.5, 39, 80], [0.5, 0.5, 41, 81]]],
        }
    ).encode()
    for case in range(CASES):
        path = tmp_path / f"n{case}.json.gz"
        if rng.random() < 0.5:  # damaged JSON inside valid gzip: the parser's checks
            path.write_bytes(gzip.compress(mutate(rng, text)))
        else:  # damaged gzip
            path.write_bytes(mutate(rng, gzip.compress(text)))
        try:
            notes = load_notes(path)
        except UserError as e:
            assert str(path) in str(e) and "\n" not in str(e), e
            continue
        for perfs in notes.values():  # accepted: then it is valid
            for a in perfs:
                assert a.ndim == 2 and a.shape[1] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"n{i}.json.gz" for i in range(CASES))


def test_last_resort_net_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    import pianogenie.commands.plot as plot

    def bug(args):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(plot, "run", bug)
    monkeypatch.delenv("PIANOGENIE_DEBUG", raising=False)
    assert main(["plot", "somewhere"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("pianogenie plot: unexpected error: ZeroDivisionError: division by zero")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert main(["--debug", "plot", "somewhere"]) == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("PIANOGENIE_DEBUG", "1")
    assert main(["plot", "somewhere"]) == 1
    assert "Traceback" in capsys.readouterr().err


# --- ownership: look-alikes of every output type -----------------------------------------------------


@pytest.mark.slow
def test_fuzz_look_alikes_are_never_overwritten(tmp_path, capsys):
    """Random look-alikes (random bytes, damaged foreign files, damaged own outputs): a command either
    refuses (exit 2, the file untouched) or the file carried its mark before (or was empty)."""
    from pianogenie.outputs import written_by

    rng = random.Random(13)
    ckpt = random_checkpoint(tmp_path / "model.pt")
    (tmp_path / "p.csv").write_text("0,1\n0.5,2\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 0, "split": "train", "loss": 1.0}) + "\n")
    notes = tmp_path / "n.json.gz"
    perf = [[i * 0.2, 0.1, 30 + i % 20, 64] for i in range(40)]
    notes.write_bytes(gzip.compress(json.dumps({"validation": [perf]}).encode()))
    argv = {
        "decode": lambda out: ["decode", str(tmp_path / "p.csv"), "-o", str(out), "--model", str(ckpt), "--seed", "1"],
        "plot": lambda out: ["plot", str(run), "-o", str(out)],
        "evaluate": lambda out: [
            "evaluate",
            str(ckpt),
            "--data",
            str(notes),
            "--split",
            "validation",
            "--out",
            str(out),
        ],
    }
    suffix = {"decode": ".mid", "plot": rng.choice([".png", ".pdf", ".svg"]), "evaluate": ".json"}
    foreign = {
        "decode": foreign_midi(),
        "evaluate": json.dumps({"model": "x", "data": "y", "split": "validation"}).encode(),
    }
    own = {}
    for command in argv:
        out = tmp_path / f"own{suffix[command]}"
        assert main(argv[command](out)) == 0
        own[command] = out.read_bytes()
        out.unlink()
    capsys.readouterr()
    for case in range(max(CASES // 4, 6)):
        command = rng.choice(sorted(argv))
        sfx = suffix[command]
        real = foreign.get(command) or foreign_image(sfx[1:])
        content = mutate(rng, rng.choice([real, own[command], foreign_tarball()]))
        out = tmp_path / f"c{case}{sfx}"
        out.write_bytes(content)
        marked = written_by(command)(out)
        code = main(argv[command](out))
        err = capsys.readouterr().err
        assert code in (0, 2), (case, err)
        if code == 2:
            assert out.read_bytes() == content, case
        else:
            assert marked, (case, command, content[:40])  # replaced only with proof
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- hostile exports -----------------------------------------------------------------------------------


def test_fuzz_exports(tmp_path):
    """Byte flips and truncations of the shipped export's files: export_check accepts (and then every
    weight is finite and bounded) or refuses in one line; never anything else."""
    import numpy as np

    from pianogenie import export_check
    from pianogenie.site import PRETRAINED_TFJS

    rng = random.Random(14)
    files = {p.name: p.read_bytes() for p in PRETRAINED_TFJS.iterdir() if p.is_file()}
    for case in range(CASES):
        d = tmp_path / f"e{case}"
        d.mkdir()
        target = rng.choice(["cfg.json", "weights_manifest.json", "group1-shard1of1.bin"])
        for name, data in files.items():
            if name == target and target.endswith(".bin") and rng.random() < 0.7:  # flip float bytes
                data = bytearray(data)
                for _ in range(rng.randint(1, 6)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
                data = bytes(data)
            elif name == target:
                data = mutate(rng, data)
            (d / name).write_bytes(data)
        try:
            summary = export_check.check_export(d)
        except UserError as e:
            assert "\n" not in str(e) and str(d) in str(e), e
            continue
        blob = (d / "group1-shard1of1.bin").read_bytes()
        values = np.frombuffer(blob, "<f4")
        assert np.isfinite(values).all() and np.abs(values).max() <= export_check.MAX_ABS_WEIGHT, case
        assert summary["num_layers"] >= 1


# --- allocation limits -------------------------------------------------------------------------------


def test_fuzz_config_sizes():
    """Random sizes: a config is refused in one line, or every size and product is within its bound."""
    from pianogenie.config import LIMITS, MAX_ACTIVATIONS, MAX_PARAMETERS, Config

    rng = random.Random(15)
    keys = ["model_rnn_dim", "model_rnn_num_layers", "batch_size", "seq_len", "velocity_hidden", "velocity_bins"]
    for case in range(CASES * 5):
        overrides = [
            f"--{k}={rng.choice([1, 2, 8, 32, 128, 1024, 8192, 65536, 10 ** rng.randint(1, 30)])}"
            for k in rng.sample(keys, rng.randint(1, len(keys)))
        ]
        try:
            cfg = Config().override(overrides)
        except UserError as e:
            assert "\n" not in str(e) and str(e), e
            continue
        for k, top in LIMITS.items():
            assert getattr(cfg, k) <= top, (case, overrides)
        h, layers, bt = cfg.model_rnn_dim, cfg.model_rnn_num_layers, cfg.batch_size * cfg.seq_len
        assert 16 * layers * h * h <= MAX_PARAMETERS and bt * h * layers <= MAX_ACTIVATIONS, (case, overrides)
