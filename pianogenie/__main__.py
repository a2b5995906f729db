"""`python -m pianogenie` (also what `torchrun -m pianogenie train ...` runs)."""

import sys

from pianogenie.cli import main

sys.exit(main())
