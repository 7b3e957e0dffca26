"""GET /v1/findings and each finding's Evidently report: what the analyzer found.

Reads rows through the store only: listing findings needs none of the analyzer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from inferloop.store.findings import finding_report_path, list_findings
from inferloop.store.vocabulary import ACTIVE_STATUSES, FindingStatus

from .deps import ApiKeyDep, EngineDep
from .pagination import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, page_of
from .params import RowId
from .schemas import FindingResponse

router = APIRouter(prefix="/v1/findings", tags=["findings"], dependencies=[ApiKeyDep])


@router.get("", response_model=Page[FindingResponse])
def get_findings(
    engine: EngineDep,
    model: str | None = None,
    status: Annotated[
        list[FindingStatus] | None, Query(description="Default: pending and open.")
    ] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[FindingResponse]:
    """Findings in the order they were first raised, with their evidence."""
    key = decode_cursor(cursor, fields=("id",))
    with engine.connect() as connection:
        rows = list_findings(
            connection,
            model=model,
            statuses=status or ACTIVE_STATUSES,
            after_id=None if key is None else int(key["id"]),
            limit=limit + 1,
        )
    kept, next_cursor = page_of(rows, limit=limit, key_of=lambda row: {"id": row.id})
    items = [
        FindingResponse(
            **{
                name: getattr(row, name)
                for name in FindingResponse.model_fields
                if name != "report_url"
            },
            report_url=f"/v1/findings/{row.id}/report" if row.report_path else None,
        )
        for row in kept
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.get("/{finding_id}/report", response_class=FileResponse)
def get_finding_report(finding_id: RowId, engine: EngineDep) -> FileResponse:
    """The Evidently HTML report stored when the finding was raised."""
    with engine.connect() as connection:
        path = finding_report_path(connection, finding_id)
    if not path or not Path(path).is_file():
        raise HTTPException(404, f"finding {finding_id} has no report")
    return FileResponse(path, media_type="text/html")
