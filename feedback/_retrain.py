"""Retrain requests: a labeled snapshot exported, then a CloudEvent that points at it.

A request is one decision: for a policy trigger, (model, the finding that triggered it);
for a manual request, (model, the label cutoff) or (model, the caller's idempotency key).
The CloudEvent id is the hash of the decision, so a retry or a second worker makes the same
id and the outbox holds one request per decision.

Making the request takes three steps, because the snapshot is written between two
transactions:

1. **Reserve**: under the model's request lock, the request's rows go into the outbox in
   the `preparing` state (which no dispatcher claims), holding the whole plan: the label
   cutoff (now), the time range, the snapshot folder, the evidence. Whoever reserves first
   fixes the plan; a second worker or a retry finds it and follows it.
2. **Export** the snapshot as the plan says. The export is a pure function of the store as
   of the cutoff, so repeating it gives the same rows and the same hash; a folder already
   there with that hash (`SnapshotExistsError`) is read back, its hash verified, and used
   (the event then describes that folder as its manifest does, which may name an earlier
   cutoff with the same rows; the request's own cutoff is `data.label_as_of_ns`).
3. **Release**: the rows become pending with the final event (snapshot URI, content hash,
   the manifest's counts), due at once; a second release changes nothing.

A crash after step 1 leaves a `preparing` request that the next `RetrainWorker` round (or
the same call again) completes with the same cutoff, so the retry exports the same
snapshot, never a second, different one. A crash after step 3 is the dispatcher's business.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.store import feedback_queries as queries
from inferloop.store.base import begin_write
from inferloop.store.labeled_rows import JoinPolicy

from ._cloudevents import RETRAIN_REQUESTED, cloud_event
from ._snapshots import Snapshot, SnapshotExistsError, export_snapshot, read_snapshot

logger = logging.getLogger(__name__)
NS = 1_000_000_000
DEFAULT_SNAPSHOT_WINDOW_S = 30 * 86_400.0


class RetrainError(Exception):
    """A retrain request could not be made (its snapshot could not be written or read)."""


@dataclass(frozen=True, slots=True)
class RetrainRequest:
    """A retrain request as queued: its CloudEvent, and whether this call queued it."""

    event: dict[str, Any]
    queued: bool
    """True when this call released the request; False when it was already queued."""

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def snapshot(self) -> dict[str, Any]:
        return dict(self.event["data"]["snapshot"])


def retrain_decision(
    model: str,
    *,
    finding_id: int | None = None,
    idempotency_key: str | None = None,
    label_as_of_ns: int | None = None,
) -> dict[str, Any]:
    """What identifies a retrain decision: the finding that triggered it, else the caller's
    key, else the label cutoff of a manual request (the same cutoff is the same request)."""
    if finding_id is not None:
        return {"model": model, "finding_id": int(finding_id)}
    if idempotency_key is not None:
        return {"model": model, "key": idempotency_key}
    if label_as_of_ns is None:
        raise ValueError("a retrain decision needs a finding_id, a key or a label cutoff")
    return {"model": model, "label_as_of_ns": int(label_as_of_ns)}


def request_retrain(
    target: Engine | sa.Connection,
    model: str,
    *,
    snapshot_dir: str | os.PathLike[str],
    destinations: Sequence[str],
    now_ns: int,
    reason: str,
    evidence: Mapping[str, Any] | None = None,
    finding_id: int | None = None,
    finding_ids: Sequence[int] | None = None,
    idempotency_key: str | None = None,
    requested_by: str = "manual",
    trigger: str = "manual",
    snapshot_window_s: float = DEFAULT_SNAPSHOT_WINDOW_S,
    versions: Sequence[str] | None = None,
    join_policy: JoinPolicy = "latest",
    new_labeled_rows: int | None = None,
) -> RetrainRequest:
    """Export a labeled snapshot of `model` as of `now_ns` and queue the retrain request
    that carries it, one per decision (see `retrain_decision`).

    With an engine each step commits on its own, so a crash midway is completed by a
    retry with the same cutoff. With a connection the reservation and the release join
    the caller's transaction (the snapshot is still exported through its engine): a
    rollback then leaves at most a snapshot folder that no request names.
    """
    made = make_retrain_request(
        target,
        model,
        snapshot_dir=snapshot_dir,
        destinations=destinations,
        now_ns=now_ns,
        reason=reason,
        evidence=evidence,
        finding_id=finding_id,
        finding_ids=finding_ids,
        idempotency_key=idempotency_key,
        requested_by=requested_by,
        trigger=trigger,
        snapshot_window_s=snapshot_window_s,
        versions=versions,
        join_policy=join_policy,
        new_labeled_rows=new_labeled_rows,
    )
    assert made is not None  # only a precondition refuses
    return made


def complete_retrain(
    target: Engine | sa.Connection, request_id: str, *, now_ns: int
) -> RetrainRequest | None:
    """Finish a request left `preparing` (its maker crashed or still works): export the
    planned snapshot and release it. Returns the request, or None if there is none."""
    with _transaction(target) as connection:
        rows = queries.request_rows(connection, request_id)
    if not rows:
        return None
    event = event_of(rows[0])
    if rows[0]["state"] != queries.PREPARING:
        return RetrainRequest(event, queued=False)
    return _complete(target, event, now_ns=now_ns)


def make_retrain_request(
    target: Engine | sa.Connection,
    model: str,
    *,
    snapshot_dir: str | os.PathLike[str],
    destinations: Sequence[str],
    now_ns: int,
    reason: str,
    evidence: Mapping[str, Any] | None,
    finding_id: int | None,
    finding_ids: Sequence[int] | None,
    idempotency_key: str | None,
    requested_by: str,
    trigger: str,
    snapshot_window_s: float,
    versions: Sequence[str] | None,
    join_policy: JoinPolicy,
    new_labeled_rows: int | None,
    precondition: Callable[[sa.Connection], str | None] | None = None,
) -> RetrainRequest | None:
    if not destinations:
        raise ValueError("a retrain request needs at least one destination")
    if snapshot_window_s <= 0:
        raise ValueError(f"snapshot_window_s must be > 0, not {snapshot_window_s}")
    decision = retrain_decision(
        model, finding_id=finding_id, idempotency_key=idempotency_key, label_as_of_ns=now_ns
    )
    ids = sorted({int(i) for i in (finding_ids or ())} | ({finding_id} if finding_id else set()))
    plan = {
        "destination": str(snapshot_dir),
        "label_as_of_ns": now_ns,
        "time_range": {
            "start_ns": now_ns - int(snapshot_window_s * NS),
            "end_ns": now_ns + 1,  # a call started at the cutoff is in
            "end_exclusive": True,
        },
        "versions": None if versions is None else sorted(set(versions)),
        "join_policy": join_policy,
    }
    stub = cloud_event(
        RETRAIN_REQUESTED,
        subject=model,
        decision=decision,
        data={
            "model": model,
            "trigger": trigger,
            "reason": reason,
            "requested_by": requested_by,
            "decision": decision,
            "label_as_of_ns": now_ns,
            "finding_ids": ids,
            "new_labeled_rows": new_labeled_rows,
            "evidence": dict(evidence or {}),
            "snapshot": plan,
        },
        time_ns=now_ns,
    )
    with _write_transaction(target) as connection:
        queries.lock_model_requests(connection, model)
        rows = queries.request_rows(connection, stub["id"])
        if rows:
            reserved = event_of(rows[0])
            if rows[0]["state"] != queries.PREPARING:
                return RetrainRequest(reserved, queued=False)
        else:
            refusal = precondition(connection) if precondition is not None else None
            if refusal is not None:
                logger.info("retrain of %s not requested: %s", model, refusal)
                return None
            queries.reserve_requests(
                connection,
                [
                    {
                        "id": stub["id"],
                        "destination": destination,
                        "type": RETRAIN_REQUESTED,
                        "subject": model,
                        "model": model,
                        "event": stub,
                        "created_at_ns": now_ns,
                    }
                    for destination in destinations
                ],
            )
            reserved = stub
    return _complete(target, reserved, now_ns=now_ns)


def _complete(
    target: Engine | sa.Connection, reserved: Mapping[str, Any], *, now_ns: int
) -> RetrainRequest:
    """Steps 2 and 3: export as the reservation plans, then release the final event."""
    data = reserved["data"]
    snapshot = _export(_engine_of(target), str(data["model"]), data["snapshot"], now_ns)
    event = {**reserved, "data": {**data, "snapshot": snapshot_summary(snapshot)}}
    with _transaction(target) as connection:
        released = queries.release_prepared(connection, event["id"], event, now_ns=now_ns)
        if not released:  # another worker released it first: report what it queued
            rows = queries.request_rows(connection, event["id"])
            return RetrainRequest(event_of(rows[0]) if rows else event, queued=False)
    logger.info("retrain of %s requested (%s): %s", data["model"], event["id"], data["reason"])
    return RetrainRequest(event, queued=True)


def _export(engine: Engine, model: str, plan: Mapping[str, Any], now_ns: int) -> Snapshot:
    as_of = int(plan["label_as_of_ns"])
    try:
        return export_snapshot(
            engine,
            model=model,
            versions=plan.get("versions"),
            start_ns=int(plan["time_range"]["start_ns"]),
            end_ns=int(plan["time_range"]["end_ns"]),
            label_as_of_ns=as_of,
            destination=plan["destination"],
            join_policy=plan.get("join_policy", "latest"),
            clock=lambda: max(now_ns, as_of),
        )
    except SnapshotExistsError as exists:
        # The same rows were exported before (a retry, a second worker): the folder is
        # named by their hash. Verify it instead of trusting the name.
        snapshot = read_snapshot(exists.uri)
        if PurePosixPath(str(exists.uri).rstrip("/")).name != snapshot.content_hash:
            raise RetrainError(
                f"{exists.uri} holds a snapshot hashed {snapshot.content_hash}, not its name"
            ) from exists
        return Snapshot(uri=snapshot.uri, manifest=snapshot.manifest)


def snapshot_summary(snapshot: Snapshot) -> dict[str, Any]:
    """What a retrain request says of its snapshot: where, its hash, the manifest's counts."""
    manifest = snapshot.manifest
    return {
        "uri": snapshot.uri,
        "content_hash": snapshot.content_hash,
        "hash_algorithm": manifest.get("hash_algorithm"),
        "format_version": manifest.get("format_version"),
        "rows": manifest.get("row_count"),
        "prediction_count": manifest.get("prediction_count"),
        "labeled_count": manifest.get("labeled_count"),
        "label_version_count": manifest.get("label_version_count"),
        "corrected_count": manifest.get("corrected_count"),
        "label_distribution": manifest.get("label_distribution"),
        "label_as_of_ns": manifest.get("label_as_of_ns"),
        "time_range": manifest.get("time_range"),
        "versions": manifest.get("versions"),
        "join_policy": manifest.get("join_policy"),
    }


def event_of(row: Mapping[str, Any]) -> dict[str, Any]:
    event = row["event"]
    return json.loads(event) if isinstance(event, str) else dict(event)


def _engine_of(target: Engine | sa.Connection) -> Engine:
    return target if isinstance(target, Engine) else target.engine


class _Joined:
    """The caller's connection as a context manager that neither commits nor closes."""

    def __init__(self, connection: sa.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sa.Connection:
        return self.connection

    def __exit__(self, *exc: object) -> None:
        return None


def _transaction(target: Engine | sa.Connection):
    return target.begin() if isinstance(target, Engine) else _Joined(target)


def _write_transaction(target: Engine | sa.Connection):
    return begin_write(target) if isinstance(target, Engine) else _Joined(target)
