"""Base constants of the piano and the model; everything else is derived from these."""

from pathlib import Path

_PRETRAINED = Path(__file__).resolve().parent / "pretrained"

NUM_KEYS = 88  # A0 .. C8
LOWEST_PITCH = 21  # MIDI pitch of A0: key k <-> pitch k + LOWEST_PITCH
HIGHEST_PITCH = LOWEST_PITCH + NUM_KEYS - 1  # 108 = C8
SOS = NUM_KEYS  # start-of-sequence token fed as the "previous key" of the first note
NUM_BUTTONS = 8
DEFAULT_VELOCITY = 80  # what a model without a velocity head plays (MIDI mezzo-forte)
DEFAULT_DURATION = 0.25  # seconds: decode's note length for button rows that give none
DELTA_TIME_MAX = 1.0  # seconds; onset delta times are clipped to [0, DELTA_TIME_MAX]

# The genies the package ships, by the name `decode --model`, `serve --model` and `build-site
# --model` take: each folder holds model.pt and its export tfjs/ (what the site serves); the first
# is the default. Here, not in genie.py, because serve and build-site run without numpy.
SHIPPED_GENIES = {"classical": _PRETRAINED, "pop": _PRETRAINED / "pop"}
