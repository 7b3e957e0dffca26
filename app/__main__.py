"""`python -m inferloop.app`: the `inferloop` command line."""

import sys

from .cli import main

sys.exit(main())
