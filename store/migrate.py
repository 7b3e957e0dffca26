"""Run the Alembic migrations from code: the only way a schema is created.

The script location is the installed ``inferloop.migrations`` package, so this
works from any working directory and from a wheel.
"""

from __future__ import annotations

from importlib import resources

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from .base import create_engine_for


def alembic_config(url: str, connection: sa.Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations and at ``url``."""
    package_dir = resources.files("inferloop.migrations")
    config = Config(str(package_dir / "alembic.ini"))
    config.set_main_option("script_location", str(package_dir))
    # ConfigParser interpolation treats % specially (URL-encoded passwords).
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _run(url: str, action, revision: str) -> None:
    engine = create_engine_for(url)
    try:
        with engine.begin() as connection:
            action(alembic_config(url, connection), revision)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` up to ``revision`` (default: the newest)."""
    _run(url, command.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` down to ``revision`` (``"base"``: empty)."""
    _run(url, command.downgrade, revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None when unmigrated."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
