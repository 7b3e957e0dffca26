"""The feedback loop's outbox and lineage over HTTP, and the routers of the loop's API.

`routers` is what the app includes: the registry (`routes_registry`), the snapshots
(`routes_snapshots`) and this module's requests and lineage.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from inferloop.feedback import RetrainError, request_retrain
from inferloop.settings import NO_REQUEST_DESTINATION
from inferloop.store.feedback_pages import requests_page
from inferloop.store.lineage import UnknownLineageSubject, lineage_of

from . import routes_registry, routes_snapshots
from .deps import ApiKeyDep, EngineDep, SettingsDep
from .pagination import (
    DEFAULT_PAGE_LIMIT,
    CursorQuery,
    LimitQuery,
    Page,
    decode_cursor,
    page_of,
)
from .params import OptionalId
from .schemas_feedback import FeedbackRequestResponse, LineageResponse, RetrainAsk, RetrainQueued

router = APIRouter(prefix="/v1", tags=["feedback"], dependencies=[ApiKeyDep])


@router.get("/feedback/requests", response_model=Page[FeedbackRequestResponse])
def list_requests(
    engine: EngineDep,
    model: str | None = None,
    type: Annotated[
        str | None,
        Query(description="A CloudEvent type, e.g. io.inferloop.model.redeploy.requested"),
    ] = None,
    state: Annotated[str | None, Query(description="pending, delivered or dead")] = None,
    destination: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[FeedbackRequestResponse]:
    """The request outbox, oldest first: one row per request and destination."""
    key = decode_cursor(cursor, fields=("created_at_ns", "id", "destination"))
    after = (
        None
        if key is None
        else (int(key["created_at_ns"]), str(key["id"]), str(key["destination"]))
    )
    filters = {"model": model, "type": type, "state": state, "destination": destination}
    with engine.connect() as connection:
        rows = requests_page(connection, filters=filters, after=after, limit=limit + 1)
    kept, next_cursor = page_of(
        rows,
        limit=limit,
        key_of=lambda r: {
            "created_at_ns": r["created_at_ns"],
            "id": r["id"],
            "destination": r["destination"],
        },
    )
    items = [
        FeedbackRequestResponse(
            event_id=r["id"],
            **{k: r[k] for k in FeedbackRequestResponse.model_fields if k != "event_id"},
        )
        for r in kept
    ]
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/models/{model}/retrain",
    status_code=202,
    response_model=RetrainQueued,
    responses={
        409: {"description": "No request destination is configured, so nobody would hear it."},
        422: {"description": "The snapshot could not be made (e.g. no labeled rows)."},
    },
)
def post_retrain(
    model: str, body: RetrainAsk, engine: EngineDep, settings: SettingsDep
) -> RetrainQueued:
    """Export a labeled snapshot of `model` as of now and queue a retrain request carrying
    its URI and hash (202: the destinations receive it through the outbox)."""
    destinations = settings.feedback.destination_names()
    if not destinations:
        raise HTTPException(409, NO_REQUEST_DESTINATION)
    try:
        made = request_retrain(
            engine,
            model,
            snapshot_dir=settings.snapshots_root(),
            destinations=destinations,
            now_ns=time.time_ns(),
            reason=body.reason,
            idempotency_key=body.idempotency_key,
            requested_by=body.who,
            snapshot_window_s=body.snapshot_window_s,
            versions=body.versions,
        )
    except (RetrainError, ValueError) as error:
        raise HTTPException(422, str(error)) from None
    return RetrainQueued(
        event_id=made.id, queued=made.queued, destinations=destinations, event=made.event
    )


@router.get(
    "/lineage",
    response_model=LineageResponse,
    responses={
        404: {"description": "No such finding or version."},
        422: {"description": "Neither or both of finding_id and model+version."},
    },
)
def get_lineage(
    engine: EngineDep,
    finding_id: OptionalId = None,
    model: str | None = None,
    version: OptionalId = None,
) -> LineageResponse:
    """Finding → retrain request → snapshot → registered version → redeploy request →
    rollout checks → promote or rollback, each with its time and evidence.

    Ask by `finding_id` (forwards), or by `model` and `version` (back to the findings that
    led to it, and forwards to its rollout). A finding that caused no retrain has an empty
    chain.
    """
    by_finding = finding_id is not None
    by_version = model is not None or version is not None
    if by_finding == by_version or (by_version and (model is None or version is None)):
        raise HTTPException(422, "give finding_id, or both model and version")
    with engine.connect() as connection:
        try:
            lineage = lineage_of(connection, finding_id=finding_id, model=model, version=version)
        except UnknownLineageSubject as error:
            raise HTTPException(404, str(error)) from None
    return LineageResponse.model_validate(lineage.to_dict())


routers = (routes_registry.router, routes_snapshots.router, router)
"""Every router of the feedback loop's API, in the order the app includes them."""
