"""Bounds shared by the routes' parameters, so that a value the store cannot hold is a 422
naming the parameter, never an overflow deep in a query (SQLite and PostgreSQL integers
are 64-bit)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import HTTPException, Path, Query
from pydantic import Field

MAX_ID = 2**63 - 1
"""The largest row id or version number a store holds."""

RowId = Annotated[int, Path(ge=0, le=MAX_ID, description="A row id.")]
VersionNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="A registry version number.")]
OptionalId = Annotated[int | None, Query(ge=0, le=MAX_ID)]
Nanos = Annotated[int, Field(ge=0, le=MAX_ID)]
"""A time in a request body, Unix nanoseconds."""
EventNanos = Annotated[int, Field(ge=-MAX_ID - 1, le=MAX_ID)]
"""A time the event contract carries: any int64 of Unix nanoseconds, as the collector reads it."""

MAX_TIME_S = 9_000_000_000
"""The latest time a range may name (year 2255): nanoseconds beyond it overflow int64."""
StartS = Annotated[
    float | None,
    Query(ge=0, le=MAX_TIME_S, description="Range start, Unix seconds; default end-1h."),
]
EndS = Annotated[
    float | None, Query(ge=0, le=MAX_TIME_S, description="Range end, Unix seconds; default now.")
]


def time_range(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    """The range a request names: default the hour up to now; 422 when it is empty."""
    end = end_s if end_s is not None else time.time()
    start = start_s if start_s is not None else end - 3600
    if start >= end:
        raise HTTPException(422, "start_s must be before end_s")
    return start, end
