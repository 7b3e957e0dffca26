"""Keyset-paged reads of the registry and the feedback tables, for the API's lists.

Each query takes the sort key of the last row already returned (`after`, None for the
first page) and returns up to `limit` rows after it, in a stable total order that ends
in a unique column, so a page stays correct while rows are being added. Callers ask for
one row more than they show to learn whether another page exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .feedback_tables import FeedbackRequest, RolloutCheck
from .keyset import after_key
from .registry import RegistryHistory, RegistryVersion, RegistryVersionState

_VERSIONS = RegistryVersion.__table__
_STATES = RegistryVersionState.__table__
_HISTORY = RegistryHistory.__table__
_CHECKS = RolloutCheck.__table__
_REQUESTS = FeedbackRequest.__table__


def versions_page(
    connection: sa.Connection, model: str, *, after: int | None, limit: int
) -> list[dict[str, Any]]:
    """Registered versions of `model` by number, with `states`: environment → state."""
    query = sa.select(_VERSIONS).where(_VERSIONS.c.model == model)
    if after is not None:
        query = query.where(_VERSIONS.c.version > after)
    rows = [
        dict(row._mapping)
        for row in connection.execute(query.order_by(_VERSIONS.c.version).limit(limit))
    ]
    states = version_environments(connection, model, [row["version"] for row in rows])
    for row in rows:
        row["states"] = states.get(row["version"], {})
    return rows


def version_environments(
    connection: sa.Connection, model: str, versions: Sequence[int]
) -> dict[int, dict[str, str]]:
    """version → {environment: state} for versions that were ever moved (others are
    candidates everywhere)."""
    if not versions:
        return {}
    query = (
        sa.select(_STATES.c.version, _STATES.c.environment, _STATES.c.state)
        .where(_STATES.c.model == model, _STATES.c.version.in_(list(versions)))
        .order_by(_STATES.c.version, _STATES.c.environment)
    )
    found: dict[int, dict[str, str]] = {}
    for version, environment, state in connection.execute(query):
        found.setdefault(int(version), {})[str(environment)] = str(state)
    return found


def history_page(
    connection: sa.Connection,
    model: str,
    *,
    version: int | None = None,
    environment: str | None = None,
    after: tuple[int, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Registry moves of `model` in the order made, keyed by (at_ns, id)."""
    query = sa.select(_HISTORY).where(_HISTORY.c.model == model)
    if version is not None:
        query = query.where(_HISTORY.c.version == version)
    if environment is not None:
        query = query.where(_HISTORY.c.environment == environment)
    if after is not None:
        query = query.where(after_key((_HISTORY.c.at_ns, _HISTORY.c.id), after))
    query = query.order_by(_HISTORY.c.at_ns, _HISTORY.c.id).limit(limit)
    return [dict(row._mapping) for row in connection.execute(query)]


def checks_page(
    connection: sa.Connection,
    model: str,
    candidate_version: int,
    *,
    environment: str | None = None,
    after: tuple[str, int] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """A candidate's rollout checks, keyed by (environment, check_number)."""
    query = sa.select(_CHECKS).where(
        _CHECKS.c.model == model, _CHECKS.c.candidate_version == candidate_version
    )
    if environment is not None:
        query = query.where(_CHECKS.c.environment == environment)
    if after is not None:
        query = query.where(after_key((_CHECKS.c.environment, _CHECKS.c.check_number), after))
    query = query.order_by(_CHECKS.c.environment, _CHECKS.c.check_number).limit(limit)
    return [dict(row._mapping) for row in connection.execute(query)]


def requests_page(
    connection: sa.Connection,
    *,
    filters: Mapping[str, str | None],
    after: tuple[int, str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Outbox rows, oldest first, keyed by (created_at_ns, id, destination).

    `filters` may hold `model`, `type`, `state` and `destination`; a None value filters
    nothing.
    """
    unknown = set(filters) - {"model", "type", "state", "destination"}
    if unknown:
        raise ValueError(f"cannot filter requests by {sorted(unknown)}")
    query = sa.select(_REQUESTS)
    for name, value in filters.items():
        if value is not None:
            query = query.where(_REQUESTS.c[name] == value)
    order = (_REQUESTS.c.created_at_ns, _REQUESTS.c.id, _REQUESTS.c.destination)
    if after is not None:
        query = query.where(after_key(order, after))
    return [dict(row._mapping) for row in connection.execute(query.order_by(*order).limit(limit))]
