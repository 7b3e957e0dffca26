"""POST /v1/events: the embedded deployment's ingest input (same pipeline as Kafka)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferloop.collector import InputMessage, StoreUnavailable

from .bodies import read_bounded_body
from .deps import IngestKeyDep, StateDep
from .schemas import IngestAccepted, IngestRejected, RejectedInput

router = APIRouter(prefix="/v1", tags=["ingest"], dependencies=[IngestKeyDep])

STORE_RETRY_AFTER_S = 1


@router.post(
    "/events",
    response_model=IngestAccepted,
    responses={
        400: {"model": IngestRejected, "description": "Body is not JSON / not UTF-8."},
        413: {"description": "Body larger than the pipeline accepts."},
        422: {
            "model": IngestRejected,
            "description": "Batch or events break the contract; the valid events are stored.",
        },
        503: {"description": "The store is unreachable; nothing was stored. Retry."},
    },
)
async def post_events(request: Request, state: StateDep):
    """Store one batch envelope. Invalid events are dead-lettered and named in a 4xx,
    while the valid events of the same batch are stored (the SDK must not resend them):
    ``stored`` says how many, ``rejected`` lists each refused event's index."""
    body = await read_bounded_body(request, state.pipeline.max_message_bytes)
    try:
        result = await run_in_threadpool(state.pipeline.ingest, [InputMessage(body)], source="http")
    except StoreUnavailable as error:
        state.pipeline.metrics.store_up.labels("http").set(0)
        state.pipeline.metrics.store_unavailable.labels("http").inc()
        return JSONResponse(
            status_code=503,
            content={"detail": f"store unavailable: {error}"},
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    state.pipeline.metrics.store_up.labels("http").set(1)
    if not result.rejections:
        return IngestAccepted(stored=result.stored, duplicates=result.duplicates)
    # One message per request: a whole-message rejection (400/413/422) is its only
    # rejection, and every per-event code answers 422.
    status_code = result.rejections[0].code.http_status
    body_out = IngestRejected(
        detail="; ".join(r.reason for r in result.rejections[:5]),
        rejected=[
            RejectedInput(event_index=r.event_index, reason=r.reason, code=r.code.value)
            for r in result.rejections
        ],
        stored=result.stored,
        duplicates=result.duplicates,
    )
    return JSONResponse(status_code=status_code, content=body_out.model_dump())
