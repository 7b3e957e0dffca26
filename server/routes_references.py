"""POST /v1/models/{model}/reference: pin a dataset (CSV or Parquet body) for drift."""

from __future__ import annotations

import io
from typing import Annotated, Literal

import polars as pl
from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from inferloop.analyzer import register_reference

from .bodies import read_bounded_body
from .deps import ApiKeyDep, SettingsDep, StateDep
from .schemas import ReferencePinned

router = APIRouter(prefix="/v1/models", tags=["references"], dependencies=[ApiKeyDep])

MAX_REFERENCE_BYTES = 256 * 1024 * 1024


def _parse(body: bytes, file_format: str) -> pl.DataFrame:
    try:
        if file_format == "parquet":
            return pl.read_parquet(io.BytesIO(body))
        return pl.read_csv(io.BytesIO(body), infer_schema_length=10_000)
    except Exception as error:  # noqa: BLE001 - any parse failure is the client's input
        raise HTTPException(422, f"body is not a readable {file_format} file: {error}") from error


@router.post(
    "/{model}/reference", status_code=status.HTTP_201_CREATED, response_model=ReferencePinned
)
async def pin_reference(
    model: str,
    request: Request,
    state: StateDep,
    settings: SettingsDep,
    file_format: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
    version: str | None = None,
    name: str | None = None,
) -> ReferencePinned:
    """The body is the dataset; it replaces the model's (or version's) earlier reference."""
    frame = _parse(await read_bounded_body(request, MAX_REFERENCE_BYTES), file_format)
    try:
        reference_id = await run_in_threadpool(
            register_reference,
            state.engine,
            settings.data_dir,
            model,
            frame,
            version=version,
            name=name,
        )
    except ValueError as error:
        raise HTTPException(422, str(error)) from error
    return ReferencePinned(
        reference_id=reference_id,
        model=model,
        version=version,
        rows=frame.height,
        columns=frame.columns,
    )
