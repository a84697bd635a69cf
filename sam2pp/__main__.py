"""`python -m sam2pp` (and `torchrun -m sam2pp`): the `sam2pp` command."""

import sys

from .cli import main

sys.exit(main())
