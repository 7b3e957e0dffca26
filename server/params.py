"""Bounds shared by the routes' parameters, so that a value the store cannot hold is a 422
naming the parameter, never an overflow deep in a query (SQLite and PostgreSQL integers
are 64-bit)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ID = 2**63 - 1
"""The largest row id or version number a store holds."""

RowId = Annotated[int, Path(ge=0, le=MAX_ID, description="A row id.")]
VersionNumber = Annotated[int, Path(ge=0, le=MAX_ID, description="A registry version number.")]
OptionalId = Annotated[int | None, Query(ge=0, le=MAX_ID)]
Nanos = Annotated[int, Field(ge=0, le=MAX_ID)]
"""A time in a request body, Unix nanoseconds."""
