"""The model registry over HTTP: register versions, move them, read their history, ask which
version was live at a time, and read a candidate's rollout checks.

A move to canary goes through `start_canary`, so it queues the redeploy request in the same
transaction (to the destinations `inferloop up` delivers to): there is a redeploy request
exactly when there is a canary, whether the move came from the API, the CLI or code.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.engine import Engine

from inferloop.feedback import (
    IllegalMoveError,
    RegistryMove,
    UnknownVersionError,
    VersionState,
    get_version,
    live_at,
    move_version,
    register_version,
    start_canary,
)
from inferloop.store.feedback_pages import checks_page, history_page, versions_page
from inferloop.times import parse_time_ns

from .deps import ApiKeyDep, EngineDep, SettingsDep
from .pagination import (
    DEFAULT_PAGE_LIMIT,
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    page_of,
)
from .params import OptionalId, VersionNumber
from .schemas_feedback import (
    LiveAtResponse,
    MoveRequest,
    MoveResponse,
    MovesMade,
    RolloutCheckResponse,
    VersionRegister,
    VersionResponse,
)

router = APIRouter(prefix="/v1/models/{model}", tags=["registry"], dependencies=[ApiKeyDep])

_NS = 1_000_000_000


def move_response(move: RegistryMove) -> MoveResponse:
    return MoveResponse(
        model=move.model,
        version=move.version,
        environment=move.environment,
        from_state=None if move.from_state is None else str(move.from_state),
        to_state=str(move.to_state),
        who=move.who,
        why=move.why,
        evidence=move.evidence,
        at_ns=move.at_ns,
    )


def make_move(
    engine: Engine,
    model: str,
    version: VersionNumber,
    body: MoveRequest,
    *,
    destinations: list[str],
    now_ns: int,
) -> MovesMade:
    """Make one move in its own transaction (the registry lock is its first write).

    Raises the registry's `UnknownVersionError` / `IllegalMoveError`; nothing is written then.
    """
    with engine.begin() as connection:
        if body.to is VersionState.CANARY:
            moves, event = start_canary(
                connection,
                model,
                version,
                environment=body.environment,
                who=body.who,
                why=body.why,
                now_ns=now_ns,
                destinations=destinations,
                verdict=body.evidence or None,
            )
            return MovesMade(
                moves=[move_response(m) for m in moves],
                redeploy_request_id=event["id"],
                redeploy_destinations=list(destinations),
            )
        moves = move_version(
            connection,
            model,
            version,
            body.to,
            environment=body.environment,
            who=body.who,
            why=body.why,
            now_ns=now_ns,
            evidence=body.evidence,
        )
    return MovesMade(moves=[move_response(m) for m in moves])


def _version_response(row: dict[str, Any]) -> VersionResponse:
    return VersionResponse(
        model=row["model"],
        version=row["version"],
        artifact_uri=row["artifact_uri"],
        registered_by=row["registered_by"],
        registered_at_ns=row["registered_at_ns"],
        metrics=dict(row["metrics"]),
        metadata=dict(row["metadata"]),
        source_snapshot_uri=row["source_snapshot_uri"],
        source_snapshot_hash=row["source_snapshot_hash"],
        states=row.get("states", {}),
    )


@router.post(
    "/versions",
    status_code=201,
    response_model=VersionResponse,
    responses={422: {"description": "An empty artifact URI or author."}},
)
def register(model: str, body: VersionRegister, engine: EngineDep) -> VersionResponse:
    """Register a new version; its number is the next one, assigned in this transaction, and
    it starts as a candidate in every environment."""
    try:
        with engine.begin() as connection:
            registered = register_version(
                connection,
                model,
                artifact_uri=body.artifact_uri,
                who=body.who,
                now_ns=time.time_ns(),
                metrics=body.metrics,
                metadata=body.metadata,
                source_snapshot_uri=body.source_snapshot_uri,
                source_snapshot_hash=body.source_snapshot_hash,
            )
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return VersionResponse(
        model=registered.model,
        version=registered.version,
        artifact_uri=registered.artifact_uri,
        registered_by=registered.registered_by,
        registered_at_ns=registered.registered_at_ns,
        metrics=registered.metrics,
        metadata=registered.metadata,
        source_snapshot_uri=registered.source_snapshot_uri,
        source_snapshot_hash=registered.source_snapshot_hash,
    )


@router.get("/versions", response_model=Page[VersionResponse])
def list_versions(
    model: str,
    engine: EngineDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[VersionResponse]:
    """The versions of a model by number, each with its state per environment."""
    key = decode_cursor(cursor, fields=("version",))
    with engine.connect() as connection:
        rows = versions_page(
            connection, model, after=None if key is None else int(key["version"]), limit=limit + 1
        )
    kept, next_cursor = page_of(rows, limit=limit, key_of=lambda r: {"version": r["version"]})
    return Page(items=[_version_response(r) for r in kept], next_cursor=next_cursor)


@router.get(
    "/versions/{version}",
    response_model=VersionResponse,
    responses={404: {"description": "No such version."}},
)
def show_version(model: str, version: VersionNumber, engine: EngineDep) -> VersionResponse:
    with engine.connect() as connection:
        try:
            get_version(connection, model, version)
        except UnknownVersionError as error:
            raise HTTPException(404, str(error)) from None
        rows = versions_page(connection, model, after=version - 1, limit=1)
    return _version_response(rows[0])


@router.post(
    "/versions/{version}/moves",
    status_code=201,
    response_model=MovesMade,
    responses={
        404: {"description": "No such version."},
        409: {"description": "Not a legal move from the version's state; the message lists them."},
    },
)
def post_move(
    model: str, version: VersionNumber, body: MoveRequest, engine: EngineDep, settings: SettingsDep
) -> MovesMade:
    """Move a version in an environment (who, why and the evidence go into the history).

    To live retires the live version; rolling back a live version restores the one it
    replaced; to canary also queues the redeploy request.
    """
    try:
        return make_move(
            engine,
            model,
            version,
            body,
            destinations=settings.feedback.destination_names(),
            now_ns=time.time_ns(),
        )
    except UnknownVersionError as error:
        raise HTTPException(404, str(error)) from None
    except IllegalMoveError as error:
        raise HTTPException(409, str(error)) from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.get("/history", response_model=Page[MoveResponse])
def list_history(
    model: str,
    engine: EngineDep,
    version: OptionalId = None,
    environment: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[MoveResponse]:
    """Every move of a model (or one version, or in one environment), in the order made."""
    key = decode_cursor(cursor, fields=("at_ns", "id"))
    after = None if key is None else (int(key["at_ns"]), int(key["id"]))
    with engine.connect() as connection:
        rows = history_page(
            connection,
            model,
            version=version,
            environment=environment,
            after=after,
            limit=limit + 1,
        )
    kept, next_cursor = page_of(
        rows, limit=limit, key_of=lambda r: {"at_ns": r["at_ns"], "id": r["id"]}
    )
    items = [
        MoveResponse(
            model=r["model"],
            version=r["version"],
            environment=r["environment"],
            from_state=r["from_state"],
            to_state=r["to_state"],
            who=r["actor"],
            why=r["reason"],
            evidence=dict(r["evidence"]),
            at_ns=r["at_ns"],
        )
        for r in kept
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/live", response_model=LiveAtResponse)
def get_live(
    model: str,
    engine: EngineDep,
    environment: Annotated[str, Query(min_length=1)],
    at: Annotated[str | None, Query(description="Unix seconds or ISO 8601; default now.")] = None,
    at_ns: Annotated[int | None, Query(description="Unix ns; exact, wins over `at`.")] = None,
) -> LiveAtResponse:
    """Which version served `environment` at a time, from the history (not from where the
    states point now)."""
    if at_ns is None:
        try:
            at_ns = time.time_ns() if at is None else parse_time_ns(at)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
    with engine.connect() as connection:
        version = live_at(connection, model, environment=environment, time_ns=at_ns)
    return LiveAtResponse(model=model, environment=environment, at_ns=at_ns, version=version)


@router.get(
    "/rollouts/{candidate}/checks",
    response_model=Page[RolloutCheckResponse],
    responses={404: {"description": "No such version."}},
)
def list_checks(
    model: str,
    candidate: VersionNumber,
    engine: EngineDep,
    environment: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RolloutCheckResponse]:
    """A candidate's rollout checks (by environment, then check number), each with the
    statistics it was decided on and its outcome."""
    key = decode_cursor(cursor, fields=("environment", "check_number"))
    after = None if key is None else (str(key["environment"]), int(key["check_number"]))
    with engine.connect() as connection:
        try:
            get_version(connection, model, candidate)
        except UnknownVersionError as error:
            raise HTTPException(404, str(error)) from None
        rows = checks_page(
            connection, model, candidate, environment=environment, after=after, limit=limit + 1
        )
    kept, next_cursor = page_of(
        rows,
        limit=limit,
        key_of=lambda r: {"environment": r["environment"], "check_number": r["check_number"]},
    )
    items = [
        RolloutCheckResponse(**{k: r[k] for k in RolloutCheckResponse.model_fields}) for r in kept
    ]
    return Page(items=items, next_cursor=next_cursor)
