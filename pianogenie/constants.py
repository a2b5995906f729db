"""Base constants of the piano and the model; everything else is derived from these."""

NUM_KEYS = 88  # A0 .. C8
LOWEST_PITCH = 21  # MIDI pitch of A0: key k <-> pitch k + LOWEST_PITCH
HIGHEST_PITCH = LOWEST_PITCH + NUM_KEYS - 1  # 108 = C8
SOS = NUM_KEYS  # start-of-sequence token fed as the "previous key" of the first note
NUM_BUTTONS = 8
DEFAULT_VELOCITY = 80  # what a model without a velocity head plays (MIDI mezzo-forte)
DEFAULT_DURATION = 0.25  # seconds: decode's note length for button rows that give none
DELTA_TIME_MAX = 1.0  # seconds; onset delta times are clipped to [0, DELTA_TIME_MAX]
