"""Model health read from rollups: latency percentiles, per-minute series, completeness."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inferloop.grains import ceil_to_minute_s, floor_to_minute_s
from inferloop.store.completeness import completeness
from inferloop.store.rollups import latency_summary, minute_series

from .deps import ApiKeyDep, EngineDep
from .schemas import CompletenessResponse, LatencyResponse, MinutePointResponse

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ApiKeyDep])

MAX_TIME_S = 9_000_000_000
"""The latest time a range may name (year 2255): nanoseconds beyond it overflow int64."""
StartS = Annotated[
    float | None,
    Query(ge=0, le=MAX_TIME_S, description="Range start, Unix seconds; default end-1h."),
]
EndS = Annotated[
    float | None, Query(ge=0, le=MAX_TIME_S, description="Range end, Unix seconds; default now.")
]


def _range(start_s: float | None, end_s: float | None) -> tuple[float, float]:
    end = end_s if end_s is not None else time.time()
    start = start_s if start_s is not None else end - 3600
    if start >= end:
        raise HTTPException(422, "start_s must be before end_s")
    return start, end


def _minute_range(start_s: float | None, end_s: float | None) -> tuple[int, int]:
    """The requested range widened to whole minutes, the granularity of the rollups."""
    start, end = _range(start_s, end_s)
    # the end is truncated to whole seconds first, as it always has been
    return floor_to_minute_s(start), ceil_to_minute_s(int(end))


def _ms(value_ns: float | None) -> float | None:
    return None if value_ns is None else value_ns / 1e6


@router.get("/{model}/latency", response_model=LatencyResponse)
def get_latency(
    model: str,
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    version: str | None = None,
) -> LatencyResponse:
    """Count, errors and p50/p95/p99 for any range, merged from per-minute histograms."""
    start_minute, end_minute = _minute_range(start_s, end_s)
    with engine.connect() as connection:
        summary = latency_summary(
            connection, model, start_s=start_minute, end_s=end_minute, version=version
        )
    q = summary.quantiles_ns
    return LatencyResponse(
        model=model,
        version=version,
        start_s=start_minute,
        end_s=end_minute,
        count=summary.count,
        errors=summary.errors,
        mean_ms=_ms(summary.mean_ns),
        max_ms=_ms(summary.max_ns),
        p50_ms=_ms(q[0.5]),
        p95_ms=_ms(q[0.95]),
        p99_ms=_ms(q[0.99]),
    )


@router.get("/{model}/series", response_model=list[MinutePointResponse])
def get_series(
    model: str,
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    version: str | None = None,
) -> list[MinutePointResponse]:
    start_minute, end_minute = _minute_range(start_s, end_s)
    with engine.connect() as connection:
        points = minute_series(
            connection, model, start_s=start_minute, end_s=end_minute, version=version
        )
    return [
        MinutePointResponse(
            minute_start_s=p.minute_start_s,
            count=p.count,
            errors=p.errors,
            throughput_per_s=p.throughput_per_s,
            p50_ms=_ms(p.p50_ns),
            p95_ms=_ms(p.p95_ns),
            p99_ms=_ms(p.p99_ns),
        )
        for p in points
    ]


@router.get("/{model}/completeness", response_model=CompletenessResponse)
def get_completeness(
    model: str, engine: EngineDep, start_s: StartS = None, end_s: EndS = None
) -> CompletenessResponse:
    """Share of emitted events that were received (sequence gaps) and SDK-reported drops."""
    start, end = _range(start_s, end_s)
    with engine.connect() as connection:
        result = completeness(connection, model, start_ns=int(start * 1e9), end_ns=int(end * 1e9))
    return CompletenessResponse(
        model=model,
        start_s=start,
        end_s=end,
        received=result.received,
        lost=result.lost,
        emitted=result.emitted,
        received_share=result.received_share,
        sdk_dropped=result.sdk_dropped,
        sdk_dropped_total=result.sdk_dropped_total,
    )
