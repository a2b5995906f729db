"""`python -m pianogenie` (also what `torchrun -m pianogenie train ...` runs)."""

import os
import signal
import sys


def _early_exit(signum, frame):
    # a signal while the CLI is still being imported: nothing is written yet, so leave at once
    # (an exception raised inside a C extension's import can crash the interpreter)
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    print(f"pianogenie {command}: interrupted ({signal.Signals(signum).name}); nothing partial was written",
          file=sys.stderr, flush=True)
    os._exit(128 + signum)


for _s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_s, _early_exit)

from pianogenie.cli import main  # noqa: E402 (after the handlers, so that imports are covered)

sys.exit(main())
