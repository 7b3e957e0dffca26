"""Logging set-up shared by the CLI's long-running commands."""

from __future__ import annotations

import logging
import os

LOG_LEVEL_ENV = "INFERLOOP_LOG_LEVEL"


def configure_logging(level: str | None = None) -> None:
    """Log to stderr with timestamps; the level comes from the argument, then the environment."""
    chosen = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").upper()
    logging.basicConfig(
        level=chosen,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Alembic narrates every plugin and revision at INFO; the CLI reports the outcome itself.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, logging.getLogger().level))
