"""The alerting delivery log: notifications in the outbox, their attempts, receiver health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inferloop.store.outbox import (
    DeliveryState,
    all_receiver_health,
    delivery_log,
    notifications,
)

from .deps import ApiKeyDep, EngineDep
from .schemas import DeliveryAttemptResponse, NotificationResponse, ReceiverHealthResponse

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], dependencies=[ApiKeyDep])

Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/notifications", response_model=list[NotificationResponse])
def list_notifications(
    engine: EngineDep,
    state: Annotated[list[DeliveryState] | None, Query()] = None,
    receiver: str | None = None,
    limit: Limit = 100,
) -> list[NotificationResponse]:
    """Notifications, oldest first; `state=pending` shows what still waits."""
    with engine.connect() as connection:
        rows = notifications(connection, states=state, receiver=receiver, limit=limit)
    return [NotificationResponse.model_validate(row, from_attributes=True) for row in rows]


@router.get(
    "/notifications/{notification_id}/attempts", response_model=list[DeliveryAttemptResponse]
)
def list_attempts(
    notification_id: str, engine: EngineDep, limit: Limit = 100
) -> list[DeliveryAttemptResponse]:
    """Every delivery attempt of one notification, newest first."""
    with engine.connect() as connection:
        rows = delivery_log(connection, notification_id=notification_id, limit=limit)
    if not rows:
        raise HTTPException(404, f"no delivery attempts for notification {notification_id!r}")
    return [DeliveryAttemptResponse.model_validate(row, from_attributes=True) for row in rows]


@router.get("/receivers", response_model=list[ReceiverHealthResponse])
def list_receivers(engine: EngineDep) -> list[ReceiverHealthResponse]:
    """Per receiver: last success and failure, and whether it was disabled (and why)."""
    with engine.connect() as connection:
        rows = all_receiver_health(connection)
    return [ReceiverHealthResponse.model_validate(row, from_attributes=True) for row in rows]
