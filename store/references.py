"""Rows of `drift_references`: which pinned dataset applies to a model [version].

The dataset itself is a Parquet file under the data dir (written by the analyzer's
`register_reference`); a row records where it is, its size and its column kinds.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from .analysis import DriftReference

_REFERENCES = DriftReference.__table__


def _version_is(version: str | None):
    return _REFERENCES.c.version.is_(None) if version is None else _REFERENCES.c.version == version


def pin_reference(
    connection: sa.Connection,
    *,
    model: str,
    version: str | None,
    name: str,
    rows: int,
    column_kinds: Mapping[str, str],
    created_at_ns: int,
    path: str = "",
) -> int:
    """Add an active reference for `model` (`version`, or every version when None); the
    earlier ones of the same scope stop being active. Returns the new reference's id."""
    connection.execute(
        sa.update(_REFERENCES)
        .where(_REFERENCES.c.model == model, _version_is(version))
        .values(active=False)
    )
    return connection.execute(
        sa.insert(_REFERENCES).returning(_REFERENCES.c.id),
        {
            "model": model,
            "version": version,
            "name": name,
            "path": path,
            "rows": rows,
            "column_kinds": dict(column_kinds),
            "created_at_ns": created_at_ns,
            "active": True,
        },
    ).scalar_one()


def set_reference_path(connection: sa.Connection, reference_id: int, path: str) -> None:
    """Record where the reference's dataset file lives."""
    connection.execute(
        sa.update(_REFERENCES).where(_REFERENCES.c.id == reference_id).values(path=path)
    )


def active_reference(connection: sa.Connection, model: str, version: str | None) -> sa.Row | None:
    """The version's own active reference, else the model-wide one."""
    for scope in ([version] if version is not None else []) + [None]:
        row = connection.execute(
            sa.select(_REFERENCES)
            .where(_REFERENCES.c.model == model, _version_is(scope), _REFERENCES.c.active.is_(True))
            .order_by(_REFERENCES.c.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            return row
    return None
