"""GET /v1/models/{model}/drift: the drift table, every feature's test in every window.

The same rows the dashboard's heatmap buckets; each cell names the finding it raised and,
through it, the window's Evidently report. A cell that did not alarm has no report: the
analyzer renders one only for a drift finding that opens.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException

from inferloop.store.dashboard_queries import model_known
from inferloop.store.drift_cells import any_drift_cell, drift_cells

from .deps import ApiKeyDep, EngineDep
from .pagination import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from .params import EndS, StartS, time_range
from .schemas_drift import DriftCellResponse

router = APIRouter(prefix="/v1/models", tags=["drift"], dependencies=[ApiKeyDep])

_CURSOR = ("window_end_ns", "version", "kind", "feature")


def _after(cursor: str | None) -> tuple[int, str, str, str] | None:
    key = decode_cursor(cursor, fields=_CURSOR)
    if key is None:
        return None
    end, *names = (key[name] for name in _CURSOR)
    if type(end) is not int or not all(isinstance(name, str) for name in names):
        raise HTTPException(422, "cursor is not one this list returned; pass its next_cursor")
    return end, *names


def _finite(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _report(row) -> tuple[str | None, str]:
    if row.finding_id is None:
        if row.drifted:
            return None, "no report: the test crossed its threshold but raised no finding"
        return None, "no report: no drift in this window, so no finding and no report"
    if row.report_path:
        return f"/v1/findings/{row.finding_id}/report", "the Evidently report of its finding"
    return None, (
        f"no report yet: finding {row.finding_id} is {row.finding_status}; "
        "a report is rendered when a drift finding opens"
    )


def _cell(row) -> DriftCellResponse:
    report_url, report = _report(row)
    return DriftCellResponse(
        **{
            name: getattr(row, name)
            for name in DriftCellResponse.model_fields
            if name not in ("statistic", "score", "effect", "report_url", "report")
        },
        statistic=_finite(row.statistic),
        score=_finite(row.score),
        effect=_finite(row.effect),
        report_url=report_url,
        report=report,
    )


@router.get("/{model}/drift", response_model=Page[DriftCellResponse])
def get_drift(
    model: str,
    engine: EngineDep,
    start_s: StartS = None,
    end_s: EndS = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[DriftCellResponse]:
    """The cells whose window ends in the range (default: the last hour), oldest window
    first; within a window by version, kind and feature."""
    start, end = time_range(start_s, end_s)
    after = _after(cursor)
    with engine.connect() as connection:
        rows = drift_cells(
            connection,
            model,
            start_ns=int(start * 1e9),
            end_ns=int(end * 1e9),
            after=after,
            limit=limit + 1,
        )
        if not rows and not (model_known(connection, model) or any_drift_cell(connection, model)):
            raise HTTPException(404, f"no model {model!r}: it has no events and no drift tests")
    kept, next_cursor = page_of(
        rows, limit=limit, key_of=lambda r: {name: getattr(r, name) for name in _CURSOR}
    )
    return Page(items=[_cell(row) for row in kept], next_cursor=next_cursor)
