"""Alert rules added through the API: stored, listed and removed; evaluated before the file's."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from .alerting import AlertRule
from .dialect import dialect_insert

_RULES = AlertRule.__table__


def save_rule(connection: sa.Connection, rule: dict[str, Any], *, now_ns: int) -> None:
    """Insert or replace the rule named `rule["name"]` (keys: name, matchers, severity, labels)."""
    values = {**rule, "created_at_ns": now_ns, "updated_at_ns": now_ns}
    statement = dialect_insert(connection, _RULES).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={
                "matchers": statement.excluded.matchers,
                "severity": statement.excluded.severity,
                "labels": statement.excluded.labels,
                "updated_at_ns": statement.excluded.updated_at_ns,
            },
        )
    )


def list_rules(connection: sa.Connection) -> list[dict[str, Any]]:
    """The stored rules, oldest first (the order they are evaluated in)."""
    query = sa.select(_RULES).order_by(_RULES.c.created_at_ns, _RULES.c.name)
    return [
        {
            "name": row.name,
            "matchers": list(row.matchers),
            "severity": row.severity,
            "labels": dict(row.labels),
        }
        for row in connection.execute(query)
    ]


def delete_rule(connection: sa.Connection, name: str) -> bool:
    """Remove a stored rule; False if there was none of that name."""
    return connection.execute(sa.delete(_RULES).where(_RULES.c.name == name)).rowcount == 1
