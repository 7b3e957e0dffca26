"""The complete table metadata: every module that defines tables, imported once."""

from __future__ import annotations

import importlib

import sqlalchemy as sa

from .base import Base

# Modules that subclass Base. Optional ones belong to other components and may
# not exist yet in a given checkout.
_TABLE_MODULES = (
    "inferloop.store.tables",
    "inferloop.store.analysis",
    "inferloop.store.alerting",
    "inferloop.store.registry",
    "inferloop.store.feedback_tables",
    "inferloop.store.api_keys",
    "inferloop.store.drift_cells",
)
_OPTIONAL_TABLE_MODULES: tuple[str, ...] = ()


def metadata() -> sa.MetaData:
    """Base.metadata after importing every table module (what migrations compare)."""
    for name in _TABLE_MODULES:
        importlib.import_module(name)
    for name in _OPTIONAL_TABLE_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
    return Base.metadata
