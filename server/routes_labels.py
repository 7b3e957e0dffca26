"""POST /v1/labels (label records in, through the ingest pipeline) and
GET /v1/models/{model}/labels (the join metrics per version)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from inferloop.collector import IngestPipeline, IngestResult, InputMessage, StoreUnavailable
from inferloop.collector.label_records import (
    MAX_LABELS_PER_MESSAGE,
    LabelBatch,
    LabelBodyError,
    labels_to_batch,
    parse_label_body,
)
from inferloop.feedback import DEFAULT_JOIN_WINDOW_S, label_join

from .bodies import read_bounded_body
from .deps import ApiKeyDep, EngineDep, IngestKeyDep, StateDep
from .params import MAX_TIME_S, EndS
from .routes_ingest import STORE_RETRY_AFTER_S
from .schemas import (
    LabelIn,
    LabelsAccepted,
    LabelsRejected,
    ModelLabelsResponse,
    RejectedLabel,
    VersionLabelsResponse,
)

router = APIRouter(prefix="/v1", tags=["labels"])

_NS = 1_000_000_000
DEFAULT_RANGE_S = 86_400.0
_BODY = {
    "schema": {
        "type": "object",
        "required": ["labels"],
        "properties": {
            "labels": {
                "type": "array",
                "maxItems": MAX_LABELS_PER_MESSAGE,
                "items": LabelIn.model_json_schema(),
            }
        },
    }
}


def _ingest(
    pipeline: IngestPipeline, batch: LabelBatch
) -> tuple[IngestResult, list[RejectedLabel]]:
    """Store the batch's events and dead-letter its refused records, in one transaction."""
    prepared = pipeline.prepare([InputMessage(batch.envelope)], source="http")
    from_envelope = len(prepared.rejections)
    message = prepared.per_message[0][0]
    for rejection in batch.rejections:
        prepared.reject(message, rejection)
    result = pipeline.store(prepared)
    ours = range(from_envelope, from_envelope + len(batch.rejections))
    errors = []
    for position, rejection in enumerate(result.rejections):
        index = rejection.event_index
        if position not in ours and index >= 0:  # an envelope position: name the record
            index = batch.positions[index]
        errors.append(
            RejectedLabel(label_index=index, reason=rejection.reason, code=rejection.code)
        )
    errors.sort(key=lambda error: error.label_index)
    return result, errors


@router.post(
    "/labels",
    response_model=LabelsAccepted,
    dependencies=[IngestKeyDep],
    responses={
        400: {"description": "Body is not JSON / not UTF-8."},
        413: {"description": f"Body too large, or more than {MAX_LABELS_PER_MESSAGE} records."},
        422: {
            "model": LabelsRejected,
            "description": "The body, or some records, break the shape; the valid ones are stored.",
        },
        503: {"description": "The store is unreachable; nothing was stored. Retry."},
    },
    # The body is read raw (bounded, then validated record by record), so it is described here.
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": _BODY}}},
)
async def post_labels(request: Request, state: StateDep):
    """Store a batch of labels, each a new version for its (model, prediction id).

    Each record's event id is derived from it (``label_id``, or the record itself), so a
    resent request stores nothing twice: ``duplicates`` counts what was already there.
    Refused records are dead-lettered and listed by index; the valid ones are stored.
    """
    body = await read_bounded_body(request, state.pipeline.max_message_bytes)
    try:
        records = parse_label_body(body)
    except LabelBodyError as error:
        return JSONResponse(status_code=error.code.http_status, content={"detail": error.reason})
    batch = labels_to_batch(records, now_ns=time.time_ns())
    try:
        result, errors = await run_in_threadpool(_ingest, state.pipeline, batch)
    except StoreUnavailable as error:
        return JSONResponse(
            status_code=503,
            content={"detail": f"store unavailable: {error}"},
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        )
    if not errors:
        return LabelsAccepted(stored=result.stored, duplicates=result.duplicates, rejected=0)
    answer = LabelsRejected(
        detail="; ".join(error.reason for error in errors[:5]),
        errors=errors,
        stored=result.stored,
        duplicates=result.duplicates,
        rejected=len(errors),
    )
    return JSONResponse(status_code=422, content=answer.model_dump())


@router.get("/models/{model}/labels", response_model=ModelLabelsResponse, dependencies=[ApiKeyDep])
def get_model_labels(
    model: str,
    engine: EngineDep,
    start_s: Annotated[
        float | None,
        Query(ge=0, le=MAX_TIME_S, description="Predictions started from here; default end-1d."),
    ] = None,
    end_s: EndS = None,
    join_window_s: Annotated[
        float,
        Query(
            gt=0,
            le=MAX_TIME_S,
            description="Labels later than this after their prediction: not joined.",
        ),
    ] = DEFAULT_JOIN_WINDOW_S,
) -> ModelLabelsResponse:
    """Label coverage, delay, corrections and waiting labels per version of ``model``."""
    end = end_s if end_s is not None else time.time()
    start = start_s if start_s is not None else end - DEFAULT_RANGE_S
    if start >= end:
        raise HTTPException(422, "start_s must be before end_s")
    with engine.connect() as connection:
        report = label_join(
            connection,
            model=model,
            start_ns=int(start * _NS),
            end_ns=int(end * _NS),
            join_window_s=join_window_s,
        )
    return ModelLabelsResponse(
        model=model,
        start_s=start,
        end_s=end,
        join_window_s=join_window_s,
        waiting=report.waiting,
        waiting_past_join_window=report.waiting_past_join_window,
        versions=[
            VersionLabelsResponse(
                version=v.version,
                predictions=v.predictions,
                labeled=v.labeled,
                coverage=v.coverage,
                past_join_window=v.past_join_window,
                corrections=v.corrections,
                revised=v.revised,
                delay_p50_s=v.delay_p50_s,
                delay_p95_s=v.delay_p95_s,
            )
            for v in report.versions
        ],
    )
