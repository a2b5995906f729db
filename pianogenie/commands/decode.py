"""`pianogenie decode`: a button performance -> a piano MIDI file (pianogenie.decode does the work)."""

from __future__ import annotations

import argparse
import dataclasses
import math
import secrets
import sys

from pianogenie.config import MAX_SEED
from pianogenie.constants import DEFAULT_DURATION, DEFAULT_VELOCITY
from pianogenie.outputs import add_force
from pianogenie.scales import scale_names
from pianogenie.util import UserError

MAX_KEYS_CHARS = 1000  # --keys and --scale: every one of the 88 keys by name fits in ~400


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "decode",
        description="Decode a button performance into a piano performance, press by press, with the same "
        "single-step session as real-time play. INPUT: a MIDI file from any controller (distinct pitches -> "
        "buttons by pitch order; more than 8 are folded by pitch-order rank), or JSON/CSV rows of "
        "time, button[, duration] (seconds; buttons 0-7). Writes a standard piano MIDI file.",
    )
    p.add_argument("input", metavar="INPUT", help="button performance: .mid/.midi, .json or .csv")
    p.add_argument("-o", "--output", metavar="OUT.mid", required=True, help="MIDI file to write (atomically)")
    p.add_argument(
        "--model",
        metavar="M",
        help="run directory or checkpoint, or a shipped genie by name: classical (the default) or pop",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=0.25,
        help="sampling temperature; 0 = always the most likely key (default 0.25)",
    )
    p.add_argument("--seed", type=int, help="random seed, for a reproducible decode (default: a fresh one, printed)")
    p.add_argument(
        "--duration",
        type=float,
        default=DEFAULT_DURATION,
        help=f"note length in seconds for rows without one (default {DEFAULT_DURATION})",
    )
    p.add_argument(
        "--velocity",
        type=int,
        metavar="N",
        help="play every note at velocity N (1..127), ignoring the input's and the model's "
        "(default: the input's where it has one, else the model's velocity; a model without a "
        f"velocity head plays {DEFAULT_VELOCITY})",
    )
    p.add_argument(
        "--genie-velocity",
        action="store_true",
        help="the model's velocities even where the input has its own (e.g. a MIDI controller's)",
    )
    p.add_argument(
        "--scale",
        metavar='"KEY SCALE"',
        help=f'play only the keys of this scale, e.g. "D minor", "F# blues" (scales: {", ".join(scale_names())})',
    )
    p.add_argument(
        "--keys",
        metavar="PITCHES",
        help="play only these MIDI pitches: numbers or note names, "
        "ranges inclusive, e.g. 48-72 or C3-C6,E6 (with --scale: the scale's keys in these pitches)",
    )
    add_force(p, "MIDI files")
    p.add_argument(
        "--key",
        metavar="KEY",
        help="key signature for a model conditioned on keysig: a major "
        "key (D, Eb, F#), a minor one (Bm, A:min: its relative major's signature) or none",
    )
    p.add_argument(
        "--chords",
        metavar="FILE",
        help="chords for a model conditioned on chord: lines of start "
        "s, end s and a label (POP909's chord_midi.txt: C:maj, A:min7, N, ...); each press plays "
        "under the chord in force at its time",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pretty_midi

    from pianogenie.constants import LOWEST_PITCH
    from pianogenie.decode import decode_with_velocities, performance_midi, read_presses, write_midi
    from pianogenie.genie import MAX_TEMPERATURE, PianoGenie, model_path
    from pianogenie.outputs import check_output, written_by
    from pianogenie.scales import allowed_keys, parse_pitches, parse_scale

    if not (math.isfinite(args.temperature) and 0 <= args.temperature <= MAX_TEMPERATURE):
        raise UserError(f"--temperature must be a number from 0 to {MAX_TEMPERATURE:g}, got {args.temperature}")
    if args.keys is not None and len(args.keys) > MAX_KEYS_CHARS:
        raise UserError(
            f"--keys is {len(args.keys)} characters long; at most {MAX_KEYS_CHARS} (88 keys fit in far fewer)"
        )
    if args.scale is not None and len(args.scale) > MAX_KEYS_CHARS:
        raise UserError(f"--scale is {len(args.scale)} characters long; at most {MAX_KEYS_CHARS}")
    if not (math.isfinite(args.duration) and args.duration > 0):
        raise UserError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.velocity is not None and not 1 <= args.velocity <= 127:
        raise UserError(f"--velocity must be 1..127, got {args.velocity}")
    if args.velocity is not None and args.genie_velocity:
        raise UserError("--velocity and --genie-velocity exclude each other")
    if args.seed is not None and not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be an integer in 0..{MAX_SEED}, got {args.seed}")
    model = None if args.model is None else model_path(args.model)  # a shipped genie's name -> its model.pt
    check_output(
        args.output,
        flag="-o",
        inputs=[args.input, model],
        ours=written_by("decode"),
        what="MIDI file",
        force=args.force,
    )
    keys = None
    if args.scale is not None or args.keys is not None:
        keys = allowed_keys(
            None if args.scale is None else parse_scale(args.scale),
            None if args.keys is None else parse_pitches(args.keys),
        )
    seed = secrets.randbits(32) if args.seed is None else args.seed
    genie = PianoGenie.load(model, seed=seed)
    key = chords = None
    try:
        if args.key is not None:
            genie.condition_ids(key=args.key)
            key = args.key
        if args.chords is not None:
            genie.condition_ids(chord="N")
            from pianogenie.harmony import read_chord_file

            chords = read_chord_file(args.chords)
    except ValueError as e:
        raise UserError(f"{'--key' if args.key is not None and key is None else '--chords'}: {e}") from None
    presses = read_presses(args.input, genie.num_buttons, duration=args.duration, warn=_note)
    if args.velocity is not None:  # the model's history hears the forced velocity, as it was played
        presses = [dataclasses.replace(p, velocity=args.velocity) for p in presses]
    elif not genie.has_velocity and (args.genie_velocity or any(p.velocity is None for p in presses)):
        _note(
            f"{args.model or 'the model'} has no velocity weights; presses without a velocity play at "
            f"{DEFAULT_VELOCITY}"
        )
    played, velocities = decode_with_velocities(
        presses, genie, args.temperature, input_velocity=not args.genie_velocity, keys=keys, key=key, chords=chords
    )
    midi = performance_midi(presses, played, velocities)
    write_midi(midi, args.output, force=args.force)
    pitches = played + LOWEST_PITCH
    print(
        f"wrote {args.output}: {len(midi.instruments[0].notes)} notes from {len(presses)} presses, "
        f"{midi.get_end_time():.2f} s, pitches {pretty_midi.note_number_to_name(int(pitches.min()))}.."
        f"{pretty_midi.note_number_to_name(int(pitches.max()))} (temperature {args.temperature:g}, seed {seed}"
        f"{'' if keys is None else f', {len(keys)} keys allowed'})"
    )
    return 0


def _note(message: str) -> None:
    print(f"pianogenie decode: note: {message}", file=sys.stderr)
