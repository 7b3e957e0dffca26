"""The alerting delivery log: notifications in the outbox, their attempts, receiver health."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inferloop.alerts import (
    Silence,
    SilenceExpired,
    UnknownSilence,
    add_silence,
    edit_stored_silence,
    expire_stored_silence,
    silence_state,
    stored_silence,
    stored_silences,
)
from inferloop.store.outbox import (
    DeliveryState,
    all_receiver_health,
    delivery_log,
    notifications,
)

from .deps import ApiKeyDep, EngineDep
from .pagination import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from .schemas import (
    DeliveryAttemptResponse,
    NotificationResponse,
    ReceiverHealthResponse,
    SilenceCreate,
    SilenceEdit,
    SilenceResponse,
)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], dependencies=[ApiKeyDep])


@router.get("/notifications", response_model=Page[NotificationResponse])
def list_notifications(
    engine: EngineDep,
    state: Annotated[list[DeliveryState] | None, Query()] = None,
    receiver: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[NotificationResponse]:
    """Notifications, oldest first; `state=pending` shows what still waits."""
    key = decode_cursor(cursor, fields=("created_at_ns", "id"))
    after = None if key is None else (int(key["created_at_ns"]), str(key["id"]))
    with engine.connect() as connection:
        rows = notifications(
            connection, states=state, receiver=receiver, limit=limit + 1, after=after
        )
    kept, next_cursor = page_of(
        rows, limit=limit, key_of=lambda row: {"created_at_ns": row.created_at_ns, "id": row.id}
    )
    items = [NotificationResponse.model_validate(row, from_attributes=True) for row in kept]
    return Page(items=items, next_cursor=next_cursor)


@router.get(
    "/notifications/{notification_id}/attempts",
    response_model=Page[DeliveryAttemptResponse],
    responses={404: {"description": "No attempt of that notification is on record"}},
)
def list_attempts(
    notification_id: str,
    engine: EngineDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[DeliveryAttemptResponse]:
    """Every delivery attempt of one notification, newest first."""
    key = decode_cursor(cursor, fields=("id",))
    with engine.connect() as connection:
        rows = delivery_log(
            connection,
            notification_id=notification_id,
            limit=limit + 1,
            before_id=None if key is None else int(key["id"]),
        )
    if not rows and key is None:
        raise HTTPException(404, f"no delivery attempts for notification {notification_id!r}")
    kept, next_cursor = page_of(rows, limit=limit, key_of=lambda row: {"id": row.id})
    items = [DeliveryAttemptResponse.model_validate(row, from_attributes=True) for row in kept]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/receivers", response_model=list[ReceiverHealthResponse])
def list_receivers(engine: EngineDep) -> list[ReceiverHealthResponse]:
    """Per receiver: last success and failure, and whether it was disabled (and why)."""
    with engine.connect() as connection:
        rows = all_receiver_health(connection)
    return [ReceiverHealthResponse.model_validate(row, from_attributes=True) for row in rows]


def _silence_response(silence: Silence, now_ns: int) -> SilenceResponse:
    return SilenceResponse(**silence.to_dict(), state=silence_state(silence, now_ns))


@router.post("/silences", status_code=201, response_model=SilenceResponse)
def create_silence(body: SilenceCreate, engine: EngineDep) -> SilenceResponse:
    """Silence the alerts matching every matcher, from `starts_at_ns` (default now) to the end.

    The same request made twice is one silence (its id hashes the request).
    """
    now_ns = time.time_ns()
    try:
        with engine.begin() as connection:
            silence = add_silence(
                connection,
                body.matchers,
                now_ns=now_ns,
                starts_at_ns=body.starts_at_ns,
                ends_at_ns=body.ends_at_ns,
                duration=body.duration,
                comment=body.comment,
                created_by=body.created_by,
            )
    except ValueError as error:  # a bad matcher or window: the message says which
        raise HTTPException(422, str(error)) from None
    return _silence_response(silence, now_ns)


@router.get("/silences", response_model=Page[SilenceResponse])
def list_silences(
    engine: EngineDep,
    include_expired: bool = False,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[SilenceResponse]:
    """Active and pending silences by start; with `include_expired=true`, the expired too."""
    now_ns = time.time_ns()
    key = decode_cursor(cursor, fields=("starts_at_ns", "id"))
    after = None if key is None else (int(key["starts_at_ns"]), str(key["id"]))
    with engine.connect() as connection:
        silences = stored_silences(
            connection,
            now_ns=now_ns,
            include_expired=include_expired,
            after=after,
            limit=limit + 1,
        )
    kept, next_cursor = page_of(
        silences, limit=limit, key_of=lambda s: {"starts_at_ns": s.starts_at_ns, "id": s.id}
    )
    return Page(items=[_silence_response(s, now_ns) for s in kept], next_cursor=next_cursor)


@router.get("/silences/{silence_id}", response_model=SilenceResponse)
def get_silence(silence_id: str, engine: EngineDep) -> SilenceResponse:
    with engine.connect() as connection:
        try:
            silence = stored_silence(connection, silence_id)
        except UnknownSilence as error:
            raise HTTPException(404, str(error)) from None
    return _silence_response(silence, time.time_ns())


@router.put("/silences/{silence_id}", response_model=list[SilenceResponse])
def edit_silence(silence_id: str, body: SilenceEdit, engine: EngineDep) -> list[SilenceResponse]:
    """Edit a silence that is not over. Returns the silence edited in place or, when the
    matchers changed, the original (now expired) followed by the new silence that replaces it."""
    now_ns = time.time_ns()
    try:
        with engine.begin() as connection:
            result = edit_stored_silence(
                connection,
                silence_id,
                now_ns=now_ns,
                matchers=body.matchers,
                ends_at_ns=body.ends_at_ns,
                duration=body.duration,
                comment=body.comment,
                created_by=body.created_by,
            )
    except UnknownSilence as error:
        raise HTTPException(404, str(error)) from None
    except SilenceExpired as error:
        raise HTTPException(409, str(error)) from None
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return [_silence_response(s, now_ns) for s in result]


@router.delete("/silences/{silence_id}", response_model=SilenceResponse)
def expire_silence(silence_id: str, engine: EngineDep) -> SilenceResponse:
    """Expire a silence now (a pending one never begins); it stays listed as expired."""
    now_ns = time.time_ns()
    try:
        with engine.begin() as connection:
            silence = expire_stored_silence(connection, silence_id, now_ns=now_ns)
    except UnknownSilence as error:
        raise HTTPException(404, str(error)) from None
    except SilenceExpired as error:
        raise HTTPException(409, str(error)) from None
    return _silence_response(silence, now_ns)
