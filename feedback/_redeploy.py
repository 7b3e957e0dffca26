"""Redeploy requests: a version entering canary asks the serving platform to deploy it.

The request is a CloudEvent (`io.inferloop.model.redeploy.requested`, subject model/version)
queued in the transaction that made the move, so there is a request exactly when there is
a canary. A version enters canary once per environment, so (model, environment, version)
is the decision, and its hash the event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from ._cloudevents import REDEPLOY_REQUESTED, cloud_event
from ._registry import RegistryMove, VersionState, get_version, live_version, move_version
from ._requests import enqueue_request


def request_redeploy(
    connection: sa.Connection,
    model: str,
    version: int,
    *,
    environment: str,
    destinations: Sequence[str],
    now_ns: int,
    previous_version: int | None,
    verdict: Any = None,
) -> dict[str, Any]:
    """Queue the redeploy request of a version going to canary; returns the CloudEvent.

    One decision per (model, environment, version): a version enters canary once, so
    calling this again (a retry, a second worker) queues nothing new.
    """
    registered = get_version(connection, model, version)
    event = cloud_event(
        REDEPLOY_REQUESTED,
        subject=f"{model}/{version}",
        decision={"model": model, "environment": environment, "version": version},
        data={
            "model": model,
            "version": version,
            "environment": environment,
            "artifact_uri": registered.artifact_uri,
            "previous_version": previous_version,
            "snapshot": {
                "uri": registered.source_snapshot_uri,
                "hash": registered.source_snapshot_hash,
            },
            "verdict": verdict,
        },
        time_ns=now_ns,
    )
    enqueue_request(connection, event, model=model, destinations=destinations, now_ns=now_ns)
    return event


def start_canary(
    connection: sa.Connection,
    model: str,
    version: int,
    *,
    environment: str,
    who: str,
    why: str,
    now_ns: int,
    destinations: Sequence[str],
    verdict: Any = None,
) -> tuple[list[RegistryMove], dict[str, Any]]:
    """Move a candidate to canary and queue its redeploy request, in the caller's transaction
    (the registry move is its first write)."""
    moves = move_version(
        connection,
        model,
        version,
        VersionState.CANARY,
        environment=environment,
        who=who,
        why=why,
        now_ns=now_ns,
        evidence={"verdict": verdict} if verdict is not None else None,
    )
    event = request_redeploy(
        connection,
        model,
        version,
        environment=environment,
        destinations=destinations,
        now_ns=now_ns,
        previous_version=live_version(connection, model, environment=environment),
        verdict=verdict,
    )
    return moves, event
