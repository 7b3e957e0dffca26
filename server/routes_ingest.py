"""POST /v1/events: the embedded deployment's ingest input (same pipeline as Kafka)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferloop.collector import InputMessage

from .bodies import read_bounded_body
from .deps import ApiKeyDep, StateDep
from .schemas import IngestAccepted, IngestRejected, RejectedInput

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[ApiKeyDep])


@router.post(
    "/events",
    response_model=IngestAccepted,
    responses={
        400: {"model": IngestRejected, "description": "Body is not JSON / not UTF-8."},
        413: {"description": "Body larger than the pipeline accepts."},
        422: {"model": IngestRejected, "description": "Batch or events break the contract."},
    },
)
async def post_events(request: Request, state: StateDep):
    """Store one batch envelope. Invalid events are dead-lettered and named in a 4xx,
    while the valid events of the same batch are stored (the SDK must not resend them)."""
    body = await read_bounded_body(request, state.pipeline.max_message_bytes)
    result = await run_in_threadpool(state.pipeline.ingest, [InputMessage(body)], source="http")
    if not result.rejections:
        return IngestAccepted(stored=result.stored, duplicates=result.duplicates)
    whole = [r for r in result.rejections if r.event_index == -1]
    if whole and whole[0].reason.startswith("message is "):
        code = 413
    elif whole and whole[0].undecodable:
        code = status.HTTP_400_BAD_REQUEST
    else:
        code = 422
    rejected = [
        RejectedInput(event_index=r.event_index, reason=r.reason) for r in result.rejections
    ]
    body_out = IngestRejected(
        detail="; ".join(r.reason for r in result.rejections[:5]),
        rejected=rejected,
        stored=result.stored,
        duplicates=result.duplicates,
    )
    return JSONResponse(status_code=code, content=body_out.model_dump())
