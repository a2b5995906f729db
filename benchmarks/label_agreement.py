"""Agreement of the harmony estimators (pianogenie/harmony.py) with the annotated sets.

Key signature on ASAP's 939 maestro-asap performances (annotations from the scores): for each of
music21's key finders and both profile weightings, the whole-performance key, and the windowed key
(`estimate_keys`) for the default finder, against the key signature in force at each note's onset:

- per note: share of notes whose estimated key signature id equals the annotated one (the ids are
  key signatures, so a relative major/minor confusion already counts as agreement);
- "±1 fifth": also accepting a neighbour on the circle of fifths (one sharp or flat off: the
  dominant or subdominant key, the commonest key-finding error);
- per performance: the whole-performance key vs the key signature over most of the performance's notes.

Chords on POP909's songs (chord_midi.txt), estimated per annotated beat (beat_midi.txt) and per
0.5 s window, all tracks' notes: root, family and both, per time (a 10 ms grid over the annotated
spans) and per note (the label at each onset), over the annotated chords (label not N).

With `--music21-chords N`, also the reason chords are matched to templates rather than named by
music21: on each annotated chord span of a seeded sample of N songs, music21's own chord naming
(`Chord.root()`, `Chord.commonName`, its quality for other sets) of the pitch classes that sound for
at least a tenth of the span's note time, against the templates on the same spans.

    nice .venv/bin/python benchmarks/label_agreement.py [--asap DIR] [--pop909 DIR] [--songs N] [--seed S]
        [--music21-chords N]

`--songs N` / `--performances N` take a seeded sample of POP909 songs / ASAP performances (default: all).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pianogenie import harmony as h  # noqa: E402
from pianogenie.midi import parse_midi  # noqa: E402

SHARED = REPO.parent / "shared" / "data"


def fifths(keysig: np.ndarray) -> np.ndarray:
    """Key signature ids -> sharps -5..6 (position on the circle of fifths)."""
    pc = keysig - 1
    return ((pc * 7) % 12 + 5) % 12 - 5


def near(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = np.abs(fifths(a) - fifths(b)) % 12
    return (a > 0) & (b > 0) & (np.minimum(d, 12 - d) <= 1)


def asap_performances(root: Path) -> list[Path]:
    return sorted(root.rglob("*_annotations.txt"))


def keys(root: Path, n_perfs: int | None = None, seed: int = 0) -> None:
    combos = [(m, w) for m in h.KEY_METHODS for w in h.KEY_WEIGHTINGS]
    hit = {c: 0 for c in combos}
    hit_near = {c: 0 for c in combos}
    perf_hit = {c: 0 for c in combos}
    win_hit = win_near = 0
    notes_total = perfs = 0
    t0 = time.perf_counter()
    files = asap_performances(root)
    if n_perfs is not None and n_perfs < len(files):
        files = sorted(random.Random(seed).sample(files, n_perfs))
    for ann_path in files:
        midi = ann_path.with_name(ann_path.name.replace("_annotations.txt", ".midi"))
        if not midi.is_file():
            continue
        notes = parse_midi(midi.read_bytes()).notes
        if len(notes) == 0:
            continue
        ref, _, _ = h.note_labels(notes, h.read_asap_annotations(ann_path).keysig)
        main = np.bincount(ref, minlength=13).argmax()
        end = float((notes[:, 0] + notes[:, 1]).max())
        for w in h.KEY_WEIGHTINGS:
            profile = h._key_profiles(notes, np.array([0.0, end + 1e-9]), w)[0]
            for m in h.KEY_METHODS:
                k = h.key_from_profile(profile, m)
                hit[(m, w)] += int((ref == k).sum())
                hit_near[(m, w)] += int((near(ref, np.full_like(ref, k)) | (ref == k)).sum())
                perf_hit[(m, w)] += int(k == main)
        est, _, _ = h.note_labels(notes, h.estimate_keys(notes))
        win_hit += int((est == ref).sum())
        win_near += int(((est == ref) | near(est, ref)).sum())
        notes_total += len(notes)
        perfs += 1
    print(f"key signature vs ASAP: {perfs} performances, {notes_total} notes, {time.perf_counter() - t0:.0f} s")
    print(f"  {'finder':<10} {'weighting':<9} {'per note':>9} {'±1 fifth':>9} {'per perf':>9}")
    for c in sorted(combos, key=lambda c: -hit[c]):
        print(
            f"  {c[0]:<10} {c[1]:<9} {hit[c] / notes_total:9.3f} {hit_near[c] / notes_total:9.3f} "
            f"{perf_hit[c] / perfs:9.3f}"
        )
    print(
        f"  windowed estimate_keys(window_s=30, bellman, count): per note {win_hit / notes_total:.3f}, "
        f"±1 fifth {win_near / notes_total:.3f}"
    )


def chords(root: Path, n_songs: int | None, seed: int) -> None:
    songs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "chord_midi.txt").is_file())
    if n_songs is not None and n_songs < len(songs):
        songs = sorted(random.Random(seed).sample(songs, n_songs))
    modes = ("per beat", "per 0.5 s")
    # [mode][time|note] -> [root, family, both] hits, and the count
    hits = {m: {u: np.zeros(3) for u in ("time", "note")} for m in modes}
    counts = {"time": 0, "note": 0}
    t0 = time.perf_counter()
    for song in songs:
        notes = parse_midi((song / f"{song.name}.mid").read_bytes()).notes
        ref_root, ref_fam = h.read_chord_file(song / "chord_midi.txt")
        beats = h.read_beat_file(song / "beat_midi.txt")
        grid = np.arange(ref_root.start[0], ref_root.end[-1], 0.01) if len(ref_root.start) else np.zeros(0)
        at = {"time": grid, "note": notes[:, 0]}
        refs = {u: (ref_root.at(t), ref_fam.at(t)) for u, t in at.items()}
        for mode in modes:
            est_root, est_fam = h.estimate_chords(notes, beats=beats if mode == "per beat" else None)
            for u, t in at.items():
                rr, rf = refs[u]
                er, ef = est_root.at(t), est_fam.at(t)
                keep = rr > 0
                hits[mode][u] += [(er == rr)[keep].sum(), (ef == rf)[keep].sum(), ((er == rr) & (ef == rf))[keep].sum()]
        for u in at:
            counts[u] += int((refs[u][0] > 0).sum())
    sample = f"seeded sample of {len(songs)} (seed {seed})" if n_songs is not None else f"all {len(songs)}"
    print(
        f"chords vs POP909 chord_midi.txt: {sample} songs, {time.perf_counter() - t0:.0f} s; "
        f"over annotated chords (not N): {counts['time'] / 100:.0f} s, {counts['note']} notes"
    )
    print(f"  {'windows':<10} {'unit':<5} {'root':>6} {'family':>7} {'both':>6}")
    for mode in modes:
        for u in ("time", "note"):
            r, f, b = hits[mode][u] / counts[u]
            print(f"  {mode:<10} {u:<5} {r:6.3f} {f:7.3f} {b:6.3f}")


# music21's names of the 8 families' chords (Chord.commonName); other sets fall back to Chord.quality
M21_FAMILIES = {
    "major triad": 1,
    "minor triad": 2,
    "augmented triad": 3,
    "diminished triad": 4,
    "dominant seventh chord": 5,
    "major seventh chord": 6,
    "minor seventh chord": 7,
    "half-diminished seventh chord": 8,
}
M21_QUALITIES = {"major": 1, "minor": 2, "augmented": 3, "diminished": 4}


def music21_chords(root: Path, n_songs: int, seed: int) -> None:
    from music21 import chord as m21chord

    songs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "chord_midi.txt").is_file())
    songs = sorted(random.Random(seed).sample(songs, min(n_songs, len(songs))))
    hits = {"music21": np.zeros(3), "templates": np.zeros(3)}
    spans = 0
    t0 = time.perf_counter()
    for song in songs:
        notes = parse_midi((song / f"{song.name}.mid").read_bytes()).notes
        ref_root, ref_fam = h.read_chord_file(song / "chord_midi.txt")
        keep = ref_root.value > 0
        starts, ends = ref_root.start[keep], ref_root.end[keep]
        rr, rf = ref_root.value[keep], ref_fam.value[keep]
        mids = (starts + ends) / 2
        est_root, est_fam = h.estimate_chords(notes, beats=np.unique(np.concatenate([starts, ends])))
        tr, tf = est_root.at(mids), est_fam.at(mids)
        for i, (a, b) in enumerate(zip(starts, ends)):
            profile = h.pitch_class_profiles(notes, np.array([a, b]))[0]
            pcs = [pc for pc in range(12) if profile[pc] > 0 and profile[pc] >= profile.sum() / 10]
            if pcs:
                c = m21chord.Chord(pcs)
                mr = c.root().pitchClass + 1
                mf = M21_FAMILIES.get(c.commonName, M21_QUALITIES.get(c.quality, h.NONE))
            else:
                mr = mf = h.NONE
            hits["music21"] += [mr == rr[i], mf == rf[i], mr == rr[i] and mf == rf[i]]
        hits["templates"] += [(tr == rr).sum(), (tf == rf).sum(), ((tr == rr) & (tf == rf)).sum()]
        spans += len(rr)
    print(
        f"chord naming on annotated spans: seeded sample of {len(songs)} songs (seed {seed}), {spans} spans, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    print(f"  {'namer':<10} {'root':>6} {'family':>7} {'both':>6}")
    for name, hit in hits.items():
        r, f, b = hit / max(spans, 1)
        print(f"  {name:<10} {r:6.3f} {f:7.3f} {b:6.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--asap", type=Path, default=SHARED / "maestro-asap")
    ap.add_argument("--pop909", type=Path, default=SHARED / "pop909" / "POP909")
    ap.add_argument("--songs", type=int, default=None, help="seeded sample of POP909 songs (default all)")
    ap.add_argument("--performances", type=int, default=None, help="seeded sample of ASAP performances (default all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-keys", action="store_true")
    ap.add_argument("--skip-chords", action="store_true")
    ap.add_argument(
        "--music21-chords",
        type=int,
        default=None,
        metavar="N",
        help="music21's chord naming vs the templates on N songs",
    )
    args = ap.parse_args()
    for p in ((args.asap,) if not args.skip_keys else ()) + ((args.pop909,) if not args.skip_chords else ()):
        if not p.is_dir():
            sys.exit(f"label_agreement: error: {p} is not a folder")
    if not args.skip_keys:
        keys(args.asap, args.performances, args.seed)
    if not args.skip_chords:
        chords(args.pop909, args.songs, args.seed)
    if args.music21_chords:
        music21_chords(args.pop909, args.music21_chords, args.seed)


if __name__ == "__main__":
    main()
