"""GET /v1/models: every model seen in a range, with the figures of the overview's cards."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from inferloop.grains import ceil_to_minute_s, floor_to_minute_s
from inferloop.store.dashboard_queries import model_totals, open_findings_by_model
from inferloop.times import ms_of_ns

from .deps import ApiKeyDep, EngineDep
from .pagination import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from .params import EndS, StartS, time_range

router = APIRouter(prefix="/v1", tags=["models"], dependencies=[ApiKeyDep])


class ModelSummaryResponse(BaseModel):
    """One model over the range; a model with open findings but no calls has zeros."""

    model: str
    calls: int
    errors: int
    error_rate: float | None = Field(description="errors / calls; null without calls.")
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    open_findings: dict[str, int] = Field(
        description="Pending and open findings by severity (whenever raised)."
    )


@router.get("/models", response_model=Page[ModelSummaryResponse])
def list_models(
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ModelSummaryResponse]:
    """Models with calls in the range (default: the last hour) or with open findings, by
    name: calls, errors, latency percentiles and open findings."""
    start, end = time_range(start_s, end_s)
    key = decode_cursor(cursor, fields=("model",))
    with engine.connect() as connection:
        totals = {
            t.model: t
            for t in model_totals(
                connection, start_s=floor_to_minute_s(start), end_s=ceil_to_minute_s(int(end))
            )
        }
        open_findings = open_findings_by_model(connection)
    names = sorted(set(totals) | set(open_findings))
    if key is not None:
        names = [name for name in names if name > str(key["model"])]
    kept, next_cursor = page_of(names[: limit + 1], limit=limit, key_of=lambda n: {"model": n})
    items = []
    for name in kept:
        total = totals.get(name)
        items.append(
            ModelSummaryResponse(
                model=name,
                calls=total.count if total else 0,
                errors=total.errors if total else 0,
                error_rate=total.error_rate if total else None,
                p50_ms=ms_of_ns(total.p50_ns) if total else None,
                p95_ms=ms_of_ns(total.p95_ns) if total else None,
                p99_ms=ms_of_ns(total.p99_ns) if total else None,
                open_findings=open_findings.get(name, {}),
            )
        )
    return Page(items=items, next_cursor=next_cursor)
