"""The top floor: the `inferloop` command line, the embedded all-in-one runner, the demo.

These modules import the components and wire them together; no component imports
them (a layout test keeps it so). `python -m inferloop.app` is the CLI.
"""

from .cli import build_parser, main
from .embedded import EmbeddedServer, build_platform, run_embedded

__all__ = ["EmbeddedServer", "build_parser", "build_platform", "main", "run_embedded"]
