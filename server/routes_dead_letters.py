"""GET /v1/dead-letters: what ingest refused, newest first, with the reason."""

from __future__ import annotations

from fastapi import APIRouter

from inferloop.store.dead_letters import recent_dead_letters

from .deps import ApiKeyDep, EngineDep
from .pagination import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from .schemas import DeadLetterResponse

router = APIRouter(prefix="/v1", tags=["dead letters"], dependencies=[ApiKeyDep])

_PREVIEW_BYTES = 500


@router.get("/dead-letters", response_model=Page[DeadLetterResponse])
def list_dead_letters(
    engine: EngineDep, limit: LimitQuery = DEFAULT_PAGE_LIMIT, cursor: CursorQuery = None
) -> Page[DeadLetterResponse]:
    """What ingest refused, newest first, with the reason and the start of the raw bytes."""
    key = decode_cursor(cursor, fields=("id",))
    with engine.connect() as connection:
        rows = recent_dead_letters(
            connection, limit=limit + 1, before_id=None if key is None else int(key["id"])
        )
    kept, next_cursor = page_of(rows, limit=limit, key_of=lambda row: {"id": row.id})
    items = [
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
        for row in kept
    ]
    return Page(items=items, next_cursor=next_cursor)
