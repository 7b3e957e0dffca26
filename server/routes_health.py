"""Liveness, readiness and metrics endpoints.

The probes take no key; `/metrics` needs the read scope when auth is on, because series
names carry model names (a Prometheus scrape config sends the key as a bearer token).

`/healthz` answers while the process serves HTTP at all, so an orchestrator restarts only
a process that is truly stuck; `/readyz` answers 200 only while the store is reachable
and migrated to head, so a load balancer stops routing ingest to a server whose database
is down (and routes it back, without a restart, once the database returns).
"""

from __future__ import annotations

import functools

import sqlalchemy as sa
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inferloop.store.migrate import alembic_config

from .deps import EngineDep, ReadKeyDep, StateDep

router = APIRouter(tags=["health"])


@functools.cache
def _head_revisions() -> frozenset[str]:
    """The packaged migrations' heads: fixed for the life of the process."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def readiness(engine: sa.Engine) -> str | None:
    """None when the store answers and is at the migrations' head; else why not."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
            current = MigrationContext.configure(connection).get_current_heads()
    except Exception as exc:  # noqa: BLE001 - any failure to reach the store is "not ready"
        return f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    heads = _head_revisions()
    if frozenset(current) != heads:
        have = ", ".join(sorted(current)) or "none"
        return f"migrations not at head (database at {have}, head {', '.join(sorted(heads))})"
    return None


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """OK while the process answers HTTP: liveness, independent of the store."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "The store is unreachable or behind"}})
def readyz(engine: EngineDep) -> JSONResponse:
    """200 when the store is reachable and migrated to head; 503 with the reason otherwise."""
    reason = readiness(engine)
    if reason is None:
        return JSONResponse({"status": "ready"})
    return JSONResponse(
        {"status": "unavailable", "reason": reason}, status_code=503, headers={"Retry-After": "1"}
    )


@router.get(
    "/metrics",
    dependencies=[ReadKeyDep],
    response_class=Response,
    responses={200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}},
)
def metrics(state: StateDep) -> Response:
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
