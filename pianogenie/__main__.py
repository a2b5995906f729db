"""`python -m pianogenie` (also what `torchrun -m pianogenie train ...` runs).

The package's __init__ has already installed start-up signal handlers (one line, 130/143)."""

import sys

from pianogenie.cli import main

sys.exit(main())
