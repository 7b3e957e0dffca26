"""Cursor pagination for every list the API returns.

A page is ``{"items": [...], "next_cursor": "..."}``; the client sends ``next_cursor`` back as
``?cursor=`` for the next page and stops when it is null. The cursor is the sort key of the
last item returned (keyset pagination), so a page stays correct while rows are being added,
and the query reads an index range instead of skipping ``OFFSET`` rows. It is opaque to the
client: base64 of a small JSON object, checked on the way back in.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import HTTPException, Query
from pydantic import BaseModel, Field

DEFAULT_PAGE_LIMIT = 100
MAX_PAGE_LIMIT = 1000

ItemT = TypeVar("ItemT")

LimitQuery = Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT, description="Most items in one page.")]
CursorQuery = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; omit it for the first page."),
]


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, and where the next one starts."""

    items: list[ItemT]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def encode_cursor(key: dict[str, Any]) -> str:
    """The opaque cursor for the sort key of the last item of a page."""
    raw = json.dumps(key, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, fields: tuple[str, ...]) -> dict[str, Any] | None:
    """The sort key a cursor carries, or None for the first page.

    A cursor that was not made by :func:`encode_cursor` with these ``fields`` is answered
    with 422 rather than silently restarting the list.
    """
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        key = None
    if not isinstance(key, dict) or set(key) != set(fields):
        raise HTTPException(
            422,
            "cursor is not one this list returned; pass the next_cursor of the previous page",
        )
    return key


def page_of(rows: list[ItemT], *, limit: int, key_of: Any) -> tuple[list[ItemT], str | None]:
    """Split ``limit + 1`` fetched rows into the page and the cursor of the next one.

    Queries fetch one row more than the limit: if it is there, another page exists and
    its cursor is the key of the last row kept (``key_of(row) -> dict``).
    """
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(key_of(kept[-1]))


__all__ = [
    "DEFAULT_PAGE_LIMIT",
    "MAX_PAGE_LIMIT",
    "CursorQuery",
    "LimitQuery",
    "Page",
    "decode_cursor",
    "encode_cursor",
    "page_of",
]
