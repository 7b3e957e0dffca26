"""The CloudEvents 1.0 envelope of the loop's requests: redeploy, rollback, retrain.

The event `id` is a hash of the decision (its type and what identifies it: model, version,
environment, the check or finding it comes from), never of the time or of who made it. A
retry, a re-run after a crash or a second worker therefore make the same id, the outbox
keeps one row per id and destination, and a receiver that sees a re-send after a dispatcher
crash can drop it on (`source`, `id`), which is how CloudEvents identifies a duplicate.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from inferloop.alerts._render import iso_time

SPECVERSION = "1.0"
EVENT_SOURCE = "/inferloop/feedback"
EVENT_CONTENT_TYPE = "application/cloudevents+json"
"""Structured mode: the whole event is the HTTP body or the Kafka record value."""
REDEPLOY_REQUESTED = "io.inferloop.model.redeploy.requested"
ROLLBACK_REQUESTED = "io.inferloop.model.rollback.requested"
RETRAIN_REQUESTED = "io.inferloop.model.retrain.requested"
PROMOTE_REQUESTED = "io.inferloop.model.promote.requested"
"""A canary passed its rollout: the serving platform gives it all the traffic."""
REQUEST_TYPES = frozenset(
    {REDEPLOY_REQUESTED, ROLLBACK_REQUESTED, RETRAIN_REQUESTED, PROMOTE_REQUESTED}
)


def decision_id(type: str, decision: Mapping[str, Any]) -> str:
    """32 hex digits of SHA-256 over the type and the decision's canonical JSON."""
    canonical = json.dumps(
        {"type": type, "decision": dict(decision)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def cloud_event(
    type: str,
    *,
    subject: str,
    decision: Mapping[str, Any],
    data: Mapping[str, Any],
    time_ns: int,
    source: str = EVENT_SOURCE,
) -> dict[str, Any]:
    """A CloudEvent as a JSON-able dict; its `id` is `decision_id(type, decision)`."""
    if type not in REQUEST_TYPES:
        raise ValueError(f"unknown request type {type!r}; expected one of {sorted(REQUEST_TYPES)}")
    if not subject:
        raise ValueError("a request needs a subject (model/version)")
    return {
        "specversion": SPECVERSION,
        "id": decision_id(type, decision),
        "source": source,
        "type": type,
        "subject": subject,
        "time": iso_time(time_ns),
        "datacontenttype": "application/json",
        "data": dict(data),
    }


def event_bytes(event: Mapping[str, Any]) -> bytes:
    """The exact bytes sent (and signed): compact UTF-8 JSON, keys in a fixed order."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
