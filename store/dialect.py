"""The dialect-aware INSERT that idempotent writes need (ON CONFLICT DO NOTHING / UPDATE).

SQLAlchemy's core `insert()` has no ON CONFLICT clause; the PostgreSQL and SQLite
dialects each have their own `insert()` that does. The store supports exactly these
two back ends, so every upsert in the code base goes through this one function.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def dialect_insert(connection: sa.Connection, table: sa.Table):
    """An INSERT on `table` that supports `on_conflict_do_nothing()` / `_do_update()`."""
    name = connection.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the store supports PostgreSQL and SQLite, not {name!r}")
