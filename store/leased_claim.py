"""Claiming due rows of an outbox table with a lease: the step every dispatcher starts with.

Any table with `state`, `next_attempt_ns`, `lease_owner` and `lease_expires_ns` columns
works (the alert notifications, the feedback requests). One UPDATE … RETURNING takes
the rows: it starts with a write, so on SQLite it queues for the write lock instead of
failing on a stale read; on PostgreSQL the due rows are selected FOR UPDATE SKIP LOCKED,
so concurrent dispatchers take different rows without waiting.
"""

from __future__ import annotations

import sqlalchemy as sa

PENDING = "pending"


def claim_due_rows(
    connection: sa.Connection,
    table: sa.Table,
    owner: str,
    *,
    now_ns: int,
    lease_ns: int,
    limit: int,
) -> list[sa.Row]:
    """Up to `limit` pending, due, unleased rows of `table`, now `owner`'s until
    `now_ns + lease_ns`, oldest due first."""
    key = list(table.primary_key.columns)
    due = (
        sa.select(*key)
        .where(
            table.c.state == PENDING,
            table.c.next_attempt_ns <= now_ns,
            table.c.lease_expires_ns <= now_ns,
        )
        .order_by(table.c.next_attempt_ns, *key)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = connection.execute(
        sa.update(table)
        .where(sa.tuple_(*key).in_(due))
        .values(lease_owner=owner, lease_expires_ns=now_ns + lease_ns)
        .returning(*table.c)
    ).all()
    return sorted(
        claimed, key=lambda row: (row.next_attempt_ns, *(row._mapping[c.name] for c in key))
    )
