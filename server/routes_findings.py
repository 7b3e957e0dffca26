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
from .params import RowId
from .schemas import FindingResponse

router = APIRouter(prefix="/v1/findings", tags=["findings"], dependencies=[ApiKeyDep])


@router.get("", response_model=list[FindingResponse])
def get_findings(
    engine: EngineDep,
    model: str | None = None,
    status: Annotated[
        list[FindingStatus] | None, Query(description="Default: pending and open.")
    ] = None,
) -> list[FindingResponse]:
    """Findings in the order they were first raised, with their evidence."""
    with engine.connect() as connection:
        rows = list_findings(connection, model=model, statuses=status or ACTIVE_STATUSES)
    return [
        FindingResponse(
            **{
                name: getattr(row, name)
                for name in FindingResponse.model_fields
                if name != "report_url"
            },
            report_url=f"/v1/findings/{row.id}/report" if row.report_path else None,
        )
        for row in rows
    ]


@router.get("/{finding_id}/report", response_class=FileResponse)
def get_finding_report(finding_id: RowId, engine: EngineDep) -> FileResponse:
    """The Evidently HTML report stored when the finding was raised."""
    with engine.connect() as connection:
        path = finding_report_path(connection, finding_id)
    if not path or not Path(path).is_file():
        raise HTTPException(404, f"finding {finding_id} has no report")
    return FileResponse(path, media_type="text/html")
