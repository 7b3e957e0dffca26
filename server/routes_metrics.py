"""Model health read from rollups: latency percentiles, bucketed series, completeness.

Percentiles and GPU time come precomputed from the minute and hour rollups (see
`inferloop.store.dashboard_queries`): a week costs about as much as an hour."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inferloop.grains import ceil_to_minute_s, floor_to_minute_s
from inferloop.store.completeness import completeness
from inferloop.store.dashboard_queries import HOUR_S, bucketed_series, range_summary
from inferloop.times import ms_of_ns

from .deps import ApiKeyDep, EngineDep
from .params import EndS, StartS, time_range
from .schemas import CompletenessResponse, LatencyResponse, SeriesPointResponse

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[ApiKeyDep])

MAX_POINTS = 1440
"""The most buckets one series answer holds (a day of minutes)."""
MINUTE_GRAIN_UP_TO_S = 6 * HOUR_S
"""Ranges up to this long default to minute buckets, longer ones to hour buckets."""
StepS = Annotated[
    int | None,
    Query(
        ge=60,
        le=7 * 24 * HOUR_S,
        multiple_of=60,
        description="Bucket length in seconds, a multiple of 60; multiples of 3600 read the "
        "hour rollups. Default: 60 for ranges up to 6 h, else 3600. At most "
        f"{MAX_POINTS} buckets per answer.",
    ),
]


def _minute_range(start_s: float | None, end_s: float | None) -> tuple[int, int]:
    """The requested range widened to whole minutes, the granularity of the rollups."""
    start, end = time_range(start_s, end_s)
    # the end is truncated to whole seconds first, as it always has been
    return floor_to_minute_s(start), ceil_to_minute_s(int(end))


@router.get("/{model}/latency", response_model=LatencyResponse)
def get_latency(
    model: str,
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    version: str | None = None,
) -> LatencyResponse:
    """Count, errors, p50/p95/p99 and GPU time for any range: whole hours from the hour
    rollups, the edges from minutes."""
    start_minute, end_minute = _minute_range(start_s, end_s)
    with engine.connect() as connection:
        summary = range_summary(
            connection, model, start_s=start_minute, end_s=end_minute, version=version
        )
    return LatencyResponse(
        model=model,
        version=version,
        start_s=start_minute,
        end_s=end_minute,
        count=summary.count,
        errors=summary.errors,
        mean_ms=ms_of_ns(summary.mean_ns),
        max_ms=ms_of_ns(summary.max_ns),
        p50_ms=ms_of_ns(summary.p50_ns),
        p95_ms=ms_of_ns(summary.p95_ns),
        p99_ms=ms_of_ns(summary.p99_ns),
        gpu_count=summary.device_count,
        gpu_mean_ms=ms_of_ns(summary.device_mean_ns),
        gpu_max_ms=ms_of_ns(summary.device_max_ns),
    )


@router.get(
    "/{model}/series",
    response_model=list[SeriesPointResponse],
    responses={422: {"description": "A bad range or step, or more buckets than allowed."}},
)
def get_series(
    model: str,
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    version: str | None = None,
    step_s: StepS = None,
) -> list[SeriesPointResponse]:
    """Per bucket: count, errors, throughput, p50/p95/p99 and GPU time (versions merged
    unless `version` is given). Hour steps start on the hour before the range start."""
    start, end = _minute_range(start_s, end_s)
    step = step_s or (60 if end - start <= MINUTE_GRAIN_UP_TO_S else HOUR_S)
    if step % HOUR_S == 0:
        start = start // HOUR_S * HOUR_S
    if -(-(end - start) // step) > MAX_POINTS:
        raise HTTPException(422, f"more than {MAX_POINTS} buckets: use a longer step_s")
    with engine.connect() as connection:
        total, _ = bucketed_series(
            connection,
            model,
            start_s=start,
            end_s=end,
            step_s=step,
            versions=None if version is None else [version],
        )
    return [
        SeriesPointResponse(
            start_s=total.t[i],
            step_s=step,
            count=total.count[i],
            errors=total.errors[i],
            throughput_per_s=total.count[i] / step,
            p50_ms=total.p50_ms[i],
            p95_ms=total.p95_ms[i],
            p99_ms=total.p99_ms[i],
            gpu_count=total.gpu_count[i],
            gpu_mean_ms=total.gpu_mean_ms[i],
            gpu_max_ms=total.gpu_max_ms[i],
        )
        for i in range(len(total.t))
        if total.count[i]
    ]


@router.get("/{model}/completeness", response_model=CompletenessResponse)
def get_completeness(
    model: str, engine: EngineDep, start_s: StartS = None, end_s: EndS = None
) -> CompletenessResponse:
    """Share of emitted events that were received (sequence gaps) and SDK-reported drops."""
    start, end = time_range(start_s, end_s)
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
