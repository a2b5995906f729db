"""Condition labels stored by prepare, and the conditioned decoder: labels from annotations or
estimators, JSON and store layouts, transposition and dropout of labels, and a conditioned model
that extends an unconditioned one exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import SHARED, build_midi, write_maestro

from pianogenie import harmony
from pianogenie.cli import main
from pianogenie.config import Config
from pianogenie.genie import PianoGenie
from pianogenie.labels import drop_conditions, parse_chord, parse_conditions, parse_key, parse_style, transpose_labels
from pianogenie.model import Autoencoder, extend_to_conditions, losses
from pianogenie.notes_file import load_labels, load_notes
from pianogenie.util import UserError
from pianogenie.windows import Notes, TrainWindows

C_MAJOR = [(i * 0.5, 0.45, p, 80) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 62, 65, 69, 65, 62] * 3)]


def song(shift: int) -> bytes:
    return build_midi([(t, d, p + shift, v) for t, d, p, v in C_MAJOR])


def pop_layout(root: Path) -> Path:
    """Two annotated songs (POP909's files) and one without annotations."""
    for i, (chords, key) in enumerate(
        [("0.0\t3.0\tG:7\n3.0\t9.0\tA:min\n", "0.0\t9.0\tEb:maj\n"), ("0.0\t9.0\tN\n", "0.0\t9.0\tA:min\n")]
    ):
        d = root / "POP909" / f"{i:03d}"
        d.mkdir(parents=True)
        (d / f"{i:03d}.mid").write_bytes(song(i))
        (d / "chord_midi.txt").write_text(chords)
        (d / "key_audio.txt").write_text(key)
    (root / "plain").mkdir()
    (root / "plain" / "x.mid").write_bytes(song(2))  # D major notes, no annotations
    return root


def prepare(args, capsys):
    code = main(["prepare", *map(str, args), "--workers", "1", "--split-fractions", "1,0,0"])
    capsys.readouterr()
    assert code == 0


def test_vocabulary_parsers():
    assert parse_chord("G7") == (8, 5) and parse_chord("G:7") == (8, 5)
    assert parse_chord("Am") == (10, 2) == parse_chord("A:min")
    assert parse_chord("Bbmaj7") == (11, 6) and parse_chord("F#m7b5") == (7, 8) and parse_chord("C/E") == (1, 1)
    assert parse_chord("N") == (0, 0) == parse_chord("none") and parse_chord((3, 2)) == (3, 2)
    assert parse_key("D") == 3 and parse_key("Eb") == 4 and parse_key("Bm") == 3 and parse_key("A:min") == 1
    assert parse_key(5) == 5 and parse_style("pop") == 2 and parse_style(1) == 1
    for bad in ("H7", "Cxyz", ""):
        with pytest.raises(ValueError):
            parse_chord(bad)
    with pytest.raises(ValueError):
        parse_key("Q")
    assert parse_conditions("chord, keysig") == ("keysig", "chord") and parse_conditions("none") == ()
    with pytest.raises(UserError):
        parse_conditions("keysig,tempo")
    assert Config().replace(conditions="style,keysig").conditions == "keysig,style"


def test_transposition_moves_pitch_classes_and_keeps_none():
    c = np.array([[[1, 12, 5, 2], [0, 0, 0, 1], [12, 8, 1, 2]]])
    out = transpose_labels(c, np.array([1]))
    assert out.tolist() == [[[2, 1, 5, 2], [0, 0, 0, 1], [1, 9, 1, 2]]]  # B + 1 = C; families, style unchanged
    assert transpose_labels(c, np.array([-13]))[0, 0].tolist() == [12, 11, 5, 2]


def test_dropout_drops_whole_windows_per_condition():
    c = np.ones((4000, 5, 4), np.int64)
    out = drop_conditions(c, np.random.default_rng(0), 0.5)
    per_window = out[:, 0, :]
    assert (out == out[:, :1, :]).all()  # a window's notes all dropped or none of them
    assert (per_window[:, 1] == per_window[:, 2]).all()  # chord root and family together
    rates = (per_window == 0).mean(0)
    assert np.allclose(rates, 0.5, atol=0.04)
    assert abs(np.corrcoef(per_window[:, 0], per_window[:, 3])[0, 1]) < 0.08  # independent conditions
    assert (drop_conditions(c, np.random.default_rng(0), 0.0) == 1).all()


def test_prepare_stores_labels_from_annotations_or_estimates(tmp_path, capsys):
    src = pop_layout(tmp_path / "src")
    out = tmp_path / "n.json.gz"
    prepare([src, "-o", out, "--labels", "estimated"], capsys)
    notes, labels = load_notes(out), load_labels(out)
    report = json.loads((tmp_path / "n.report.json").read_text())
    by_name = {f["midi_filename"]: f for f in report["files"]}
    names = [f["midi_filename"] for f in report["files"]]
    assert [a.shape for a in labels["train"]] == [(len(n), 4) for n in notes["train"]]
    assert all(a.dtype == np.int8 for a in labels["train"])
    first = labels["train"][names.index("POP909/000/000.mid")]
    onsets = notes["train"][names.index("POP909/000/000.mid")][:, 0]
    assert (first[:, 0] == harmony.parse_key_label("Eb:maj")).all()
    assert (first[onsets < 3.0, 1:3] == [8, 5]).all() and (first[onsets >= 3.0, 1:3] == [10, 2]).all()
    assert (first[:, 3] == 2).all()  # pop: a collection's default style
    assert by_name["POP909/000/000.mid"]["labels"]["chord"] == "annotated: POP909/000/chord_midi.txt"
    second = labels["train"][names.index("POP909/001/001.mid")]
    assert (second[:, 0] == 1).all() and (second[:, 1:3] == 0).all()  # A minor = C's signature; N = none
    plain = labels["train"][names.index("plain/x.mid")]
    assert by_name["plain/x.mid"]["labels"]["keysig"].startswith("estimated")
    assert np.bincount(plain[:, 0]).argmax() == parse_key("D")  # D major arpeggios
    assert (plain[:, 1] > 0).all()
    # the notes file is still the tutorial's layout plus one key; the store holds the same labels
    store = tmp_path / "store"
    prepare([src, "-o", store, "--style", "classical", "--labels", "estimated"], capsys)
    s_labels = load_labels(store)
    assert [a[:, :3].tolist() for a in s_labels["train"]] == [a[:, :3].tolist() for a in labels["train"]]
    assert all((a[:, 3] == 1).all() for a in s_labels["train"])
    assert [a.tolist() for a in load_notes(store)["train"]] == [a.tolist() for a in notes["train"]]


def test_label_modes(tmp_path, capsys):
    src = pop_layout(tmp_path / "src")
    prepare([src, "-o", tmp_path / "none.json.gz", "--labels", "none"], capsys)
    assert load_labels(tmp_path / "none.json.gz") is None
    assert "labels" not in json.loads((tmp_path / "none.report.json").read_text())
    prepare([src, "-o", tmp_path / "a.json.gz"], capsys)  # the default: annotated
    report = json.loads((tmp_path / "a.report.json").read_text())
    names = [f["midi_filename"] for f in report["files"]]
    plain = load_labels(tmp_path / "a.json.gz")["train"][names.index("plain/x.mid")]
    assert (plain[:, :3] == 0).all() and (plain[:, 3] == 2).all()


def test_maestro_layout_reads_asap_key_signatures(tmp_path, capsys):
    root = write_maestro(tmp_path / "m", {"a/x.midi": ("train", song(0))})
    (root / "a" / "x_annotations.txt").write_text("0.0\t0.0\tdb,4/4,-2\n1.0\t1.0\tb\n2.0\t2.0\tdb,,3\n")
    out = tmp_path / "m.json.gz"
    code = main(["prepare", str(root), "-o", str(out), "--workers", "1"])
    capsys.readouterr()
    assert code == 0
    (lab,), (n,) = load_labels(out)["train"], load_notes(out)["train"]
    assert (lab[n[:, 0] < 2.0, 0] == harmony.keysig_from_sharps(-2)).all()  # Bb
    assert (lab[n[:, 0] >= 2.0, 0] == harmony.keysig_from_sharps(3)).all()  # A
    assert (lab[:, 3] == 1).all()  # classical


def tiny_cfg(**kw) -> Config:
    return Config(model_rnn_dim=16, batch_size=4, seq_len=16, **kw)


def test_conditioned_model_extends_an_unconditioned_one_exactly():
    torch.manual_seed(0)
    plain = Autoencoder(tiny_cfg())
    cond = Autoencoder(tiny_cfg(conditions="keysig,chord,style"))
    assert cond.dec.input.weight.shape[1] == plain.dec.input.weight.shape[1] + 13 + 13 + 9 + 3
    cond.load_state_dict(extend_to_conditions(plain.state_dict(), cond))
    k = torch.randint(0, 88, (2, 10))
    t = torch.rand(2, 10)
    c = torch.randint(0, 3, (2, 10, 4))
    a, _ = plain(k, t)
    b, _ = cond(k, t, c=c)
    assert torch.allclose(a, b)
    with torch.no_grad():
        cond.dec.input.weight[:, -2] += 1.0  # style 1 (classical): the conditions now matter
    d, _ = cond(k, t, c=c)
    assert not torch.allclose(a, d)


def test_conditioned_windows_transpose_labels_with_the_keys():
    # every note is middle C under C labels; the second half has no chord (none)
    perf = np.column_stack([np.arange(40) * 0.1, np.full(40, 0.1), np.full(40, 39), np.full(40, 80)])
    lab = np.column_stack([np.ones(40), np.r_[np.ones(20), np.zeros(20)], np.full(40, 2), np.full(40, 2)]).astype(
        np.int8
    )
    notes = Notes([perf], labels=[lab])
    batch = TrainWindows(notes, 16).sample(np.random.default_rng(1), 64, 1.0, 0.0, 6, condition_dropout=0.0)
    shift = batch.k.numpy() - 39  # (B, T), one shift per window
    assert len(np.unique(shift[:, 0])) > 5
    c = batch.c.numpy()
    assert (c[..., 0] == shift % 12 + 1).all()
    has_chord = c[..., 1] > 0
    assert has_chord.any() and (~has_chord).any()
    assert (c[..., 1][has_chord] == (shift % 12 + 1)[has_chord]).all()
    assert (c[..., 2] == 2).all() and (c[..., 3] == 2).all()
    cfg = tiny_cfg(conditions="keysig,chord")
    terms, _, _ = losses(Autoencoder(cfg), batch, cfg)
    assert torch.isfinite(terms["loss"])
    dropped = TrainWindows(notes, 16).sample(np.random.default_rng(1), 64, 1.0, 0.0, 6, condition_dropout=1.0)
    assert (dropped.c[..., :3] == 0).all() and (dropped.k == batch.k).all()


@pytest.mark.skipif(not (SHARED / "data" / "pop909").is_dir(), reason="shared data not available: POP909 absent")
def test_real_pop909_song_labels(tmp_path, capsys):
    src = SHARED / "data" / "pop909"
    out = tmp_path / "p.json.gz"
    code = main(["prepare", str(src), "-o", str(out), "--exclude", "*/versions/*", "--limit", "3", "--workers", "1"])
    capsys.readouterr()
    assert code == 0
    labels = load_labels(out)
    a = np.concatenate([x for v in labels.values() for x in v])
    assert (a[:, 0] > 0).all() and (a[:, 1] > 0).mean() > 0.8 and (a[:, 3] == 2).all()


def test_harmony_metrics_count_chord_tones_and_key_tones():
    from pianogenie.evaluate import evaluate, harmony_metrics

    # every real note is C4 (key 39); the first half under C major (C in it), the second under D minor
    perf = np.column_stack([np.arange(64) * 0.2, np.full(64, 0.2), np.full(64, 39), np.full(64, 80)])
    lab = np.zeros((64, 4), np.int8)
    lab[:32, 1:3], lab[32:, 1:3] = (1, 1), (3, 2)
    lab[:, 0] = np.r_[np.full(48, 1), np.full(16, 3)]  # C major's signature, then D major's (no C natural)
    cfg = tiny_cfg(conditions="keysig,chord")
    model = Autoencoder(cfg).eval()
    with torch.no_grad():  # a decoder that always plays E4 (key 43): in C major, not in D minor, in both keys
        model.dec.output.weight.zero_()
        model.dec.output.bias.fill_(-10.0)
        model.dec.output.bias[43] = 10.0
    h = harmony_metrics(model, [perf], [lab], cfg)
    assert h["human"] == {"chord_tone_rate": 0.5, "in_key_rate": 0.75}
    for setting in ("true_conditions", "no_conditions"):
        for temp in ("argmax", "temperature_0.25"):
            assert h[setting][temp] == {"chord_tone_rate": 0.5, "in_key_rate": 1.0}
    assert h["chord_notes"] == 64 and h["key_notes"] == 64
    model = Autoencoder(cfg).eval()
    with torch.no_grad():
        model.dec.input.weight[:, 91:] = 0.0  # the conditions unused: both perplexities agree
    m = evaluate(model, [perf], cfg, labels=[lab])
    assert m["perplexity_no_conditions"] == pytest.approx(m["perplexity"], rel=1e-6)  # no condition weights used
    with torch.no_grad():
        model.dec.input.weight[:, 91 + 13 + 1] += 3.0  # chord root C moves the decoder's state
    m2 = evaluate(model, [perf], cfg, labels=[lab])
    assert m2["perplexity_no_conditions"] == pytest.approx(m["perplexity_no_conditions"])
    assert m2["perplexity"] != pytest.approx(m["perplexity"])
    plain_cfg = tiny_cfg()
    plain = harmony_metrics(Autoencoder(plain_cfg), [perf], [lab], plain_cfg)
    assert "true_conditions" not in plain and "no_conditions" in plain


def conditioned_checkpoint(tmp_path: Path, conditions: str = "keysig,chord", seed: int = 0) -> tuple[Path, Autoencoder]:
    import dataclasses

    torch.manual_seed(seed)
    cfg = Config(conditions=conditions)
    model = Autoencoder(cfg).eval()
    with torch.no_grad():
        model.dec.input.weight[:, 91:].normal_(0, 1.0)  # conditions that matter
    path = tmp_path / f"cond-{seed}.pt"
    torch.save({"model": model.state_dict(), "cfg": dataclasses.asdict(cfg)}, path)
    return path, model


def torch_keys(model, dts, buttons, c) -> list[int]:
    from pianogenie.constants import SOS

    state, prev, out = None, torch.tensor([SOS]), []
    for dt, b, ci in zip(dts, buttons, c):
        logits, state = model.dec.step(
            prev,
            torch.tensor([dt], dtype=torch.float32),
            torch.tensor([b * 2 / 7 - 1], dtype=torch.float32),
            state,
            c=torch.tensor([ci]),
        )
        prev = logits.argmax(-1)
        out.append(int(prev))
    return out


def test_python_press_follows_conditions_like_the_torch_decoder(tmp_path):
    from pianogenie.genie import PianoGenie

    path, model = conditioned_checkpoint(tmp_path)
    genie = PianoGenie.load(path, seed=0)
    rng = np.random.default_rng(0)
    n = 60
    buttons, dts = rng.integers(0, 8, n), rng.uniform(0, 0.5, n).round(3)
    chords = ["G7", "C:maj", None, "Am", "F#m7b5", "N"]
    seq = [chords[i // 10] for i in range(n)]
    ids = [(0, 0, 0, 0) if ch is None else (4, *parse_chord(ch), 0) for ch in seq]
    times = np.cumsum(dts)
    got = []
    for t, b, ch in zip(times, buttons, seq):
        got.append(genie.press(float(t), int(b), 0.0, key=None if ch is None else "Eb", chord=ch))
    # the first press's delta time is the max; the torch reference gets the same
    want = torch_keys(model, np.r_[1.0, np.diff(times)], buttons, ids)
    assert got == want
    genie.reset()
    plain = [genie.press(float(t), int(b), 0.0) for t, b in zip(times, buttons)]
    assert plain != got  # absent = none: another performance
    assert plain == torch_keys(model, np.r_[1.0, np.diff(times)], buttons, [(0, 0, 0, 0)] * n)
    with pytest.raises(ValueError, match="cannot follow style"):
        genie.press(10.0, 0, style="pop")
    unconditioned = PianoGenie.load(None)
    with pytest.raises(ValueError, match="takes no conditions"):
        unconditioned.press(0.0, 0, key="D")


def test_decode_with_key_and_chords(tmp_path, capsys):
    path, _ = conditioned_checkpoint(tmp_path)
    presses = tmp_path / "p.csv"
    presses.write_text("".join(f"{i * 0.25},{i % 8}\n" for i in range(32)))
    chords = tmp_path / "chords.txt"
    chords.write_text("0.0\t4.0\tG:7\n4.0\t8.0\tC:maj\n")

    def decode(*extra, model=path, out="o.mid"):
        code = main(
            [
                "decode",
                str(presses),
                "-o",
                str(tmp_path / out),
                "--model",
                str(model),
                "--seed",
                "1",
                "--temperature",
                "0",
                *extra,
            ]
        )
        return code, capsys.readouterr()

    assert decode("--key", "G", "--chords", str(chords))[0] == 0
    assert decode(out="plain.mid")[0] == 0
    import pretty_midi

    a = [n.pitch for n in pretty_midi.PrettyMIDI(str(tmp_path / "o.mid")).instruments[0].notes]
    b = [n.pitch for n in pretty_midi.PrettyMIDI(str(tmp_path / "plain.mid")).instruments[0].notes]
    assert a != b
    code, cap = decode("--key", "G", model=SHARED.parent / "nonexistent", out="x.mid")
    assert code == 2
    from pianogenie.genie import DEFAULT_MODEL

    code, cap = decode("--key", "G", model=DEFAULT_MODEL, out="x.mid")
    assert code == 2 and "takes no conditions" in cap.err and len(cap.err.strip().splitlines()) == 1
    code, cap = decode("--chords", str(chords), model=DEFAULT_MODEL, out="x.mid")
    assert code == 2 and "takes no conditions" in cap.err
    chords.write_text("0.0\t4.0\tG:weird\n")
    code, cap = decode("--chords", str(chords), out="x.mid")
    assert code == 2 and "chord" in cap.err and len(cap.err.strip().splitlines()) == 1


@pytest.mark.slow
def test_train_reads_the_notes_labels_for_a_conditioned_model(tmp_path, capsys):
    root = write_maestro(
        tmp_path / "m", {f"a/x{i}.midi": (split, song(i)) for i, split in enumerate(["train", "train", "validation"])}
    )
    for i in range(3):
        (root / "a" / f"x{i}_annotations.txt").write_text("0.0\t0.0\tdb,4/4,-2\n")
    data = tmp_path / "m.json.gz"
    assert main(["prepare", str(root), "-o", str(data), "--workers", "1"]) == 0
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--run-dir",
            str(run),
            "--conditions=keysig",
            "--model_rnn_dim=8",
            "--batch_size=2",
            "--seq_len=8",
            "--max_num_steps=2",
            "--eval_frequency=2",
            "--summarize_frequency=1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    genie = PianoGenie.load(run)
    assert genie.conditions == ("keysig",)
    assert 0 <= genie.press(0.0, 3, key="Bb") < 88
