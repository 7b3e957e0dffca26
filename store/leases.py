"""Work leases: one row per model, so that several workers split the models between them.

A worker claims a model only if no one holds an unexpired lease on it and it was not
analysed within the last interval, in one conditional UPDATE; so no run is done twice.
"""

from __future__ import annotations

import sqlalchemy as sa

from .analysis import AnalyzerLease
from .dialect import dialect_insert

_LEASES = AnalyzerLease.__table__


def claim_model(
    connection: sa.Connection,
    model: str,
    owner: str,
    *,
    now_ns: int,
    lease_ns: int,
    interval_ns: int,
) -> bool:
    """Take `model` for `lease_ns` if it is free and due; True when this worker got it."""
    connection.execute(
        dialect_insert(connection, _LEASES)
        .values(model=model, expires_at_ns=0)
        .on_conflict_do_nothing()
    )
    result = connection.execute(
        sa.update(_LEASES)
        .where(
            _LEASES.c.model == model,
            sa.or_(_LEASES.c.expires_at_ns <= now_ns, _LEASES.c.owner == owner),
            sa.or_(_LEASES.c.last_run_ns.is_(None), _LEASES.c.last_run_ns <= now_ns - interval_ns),
        )
        .values(owner=owner, expires_at_ns=now_ns + lease_ns)
    )
    return result.rowcount == 1


def finish_model(connection: sa.Connection, model: str, owner: str, *, now_ns: int) -> None:
    """Record the run and give the lease back."""
    connection.execute(
        sa.update(_LEASES)
        .where(_LEASES.c.model == model, _LEASES.c.owner == owner)
        .values(last_run_ns=now_ns, expires_at_ns=now_ns, owner=None)
    )
