"""GET /v1/dead-letters: what ingest refused, newest first, with the reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from inferloop.store.dead_letters import recent_dead_letters

from .deps import ApiKeyDep, EngineDep
from .schemas import DeadLetterResponse

router = APIRouter(prefix="/v1", tags=["dead letters"], dependencies=[ApiKeyDep])

_PREVIEW_BYTES = 500


@router.get("/dead-letters", response_model=list[DeadLetterResponse])
def list_dead_letters(
    engine: EngineDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterResponse]:
    with engine.connect() as connection:
        rows = recent_dead_letters(connection, limit=limit)
    return [
        DeadLetterResponse(
            id=row.id,
            received_at_ns=row.received_at_ns,
            source=row.source,
            topic=row.topic,
            partition=row.partition,
            offset=row.offset,
            event_index=row.event_index,
            reason=row.reason,
            raw_size=row.raw_size,
            raw_preview=bytes(row.raw[:_PREVIEW_BYTES]).decode("utf-8", "replace"),
        )
        for row in rows
    ]
