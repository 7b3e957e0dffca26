"""Lineage: from a finding to the model versions it caused and their rollouts, or back.

The hops, and what links each to the next (the contract the feedback loop writes):

- finding → retrain request: a `feedback_requests` row of type `RETRAIN_REQUESTED` whose
  subject is the model and whose `event.data.finding_ids` holds the finding's id;
- retrain request → snapshot: `event.data.snapshot` (`uri`, `content_hash`, `rows`,
  `label_as_of_ns`);
- snapshot → registered version: `registry_versions.source_snapshot_hash` (the URI when a
  version was registered with no hash);
- version → redeploy, rollback and promote requests: their subject, `model/version`;
- version → rollout checks: `rollout_checks` by (model, candidate version), every
  environment;
- version → moves: its `registry_history` rows (registration, canary, promotion, rollback).

JSON paths are not queried in SQL (SQLite's and PostgreSQL's JSON operators differ):
requests are selected by model and type, which the indexes serve, and the JSON is read in
Python. A model has few retrain requests, so this stays cheap. Every hop is a function of
its own; `lineage_of` assembles them into one document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .analysis import Finding
from .feedback_tables import FeedbackRequest, RolloutCheck
from .registry import RegistryHistory, RegistryVersion

RETRAIN_REQUESTED = "io.inferloop.model.retrain.requested"
REDEPLOY_REQUESTED = "io.inferloop.model.redeploy.requested"
ROLLBACK_REQUESTED = "io.inferloop.model.rollback.requested"
PROMOTE_REQUESTED = "io.inferloop.model.promote.requested"
"""The CloudEvent types of `inferloop.feedback` (the store imports no component; a test
keeps these equal to the feedback package's)."""

_FINDINGS = Finding.__table__
_REQUESTS = FeedbackRequest.__table__
_CHECKS = RolloutCheck.__table__
_VERSIONS = RegistryVersion.__table__
_HISTORY = RegistryHistory.__table__


class UnknownLineageSubject(LookupError):
    """The finding, model or version a lineage was asked for does not exist."""


@dataclass(frozen=True, slots=True)
class Lineage:
    """One lineage document: every list is oldest first, every entry carries its time.

    `retrain_requests[i]["finding_ids"]` and `["snapshot"]` link findings to snapshots;
    `versions[j]["snapshot"]` and `["retrain_request_ids"]` link snapshots to versions;
    each version holds its redeploy and rollback requests, rollout checks and moves.
    """

    subject: dict[str, Any]
    findings: list[dict[str, Any]] = field(default_factory=list)
    retrain_requests: list[dict[str, Any]] = field(default_factory=list)
    versions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "findings": self.findings,
            "retrain_requests": self.retrain_requests,
            "versions": self.versions,
        }


# ---------------------------------------------------------------- hops


def finding(connection: sa.Connection, finding_id: int) -> dict[str, Any] | None:
    """A finding as the lineage shows it, or None."""
    row = connection.execute(sa.select(_FINDINGS).where(_FINDINGS.c.id == finding_id)).first()
    return None if row is None else _finding_entry(row._mapping)


def findings(connection: sa.Connection, ids: Iterable[int]) -> list[dict[str, Any]]:
    """The findings with these ids that exist, by id."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return []
    query = sa.select(_FINDINGS).where(_FINDINGS.c.id.in_(wanted)).order_by(_FINDINGS.c.id)
    return [_finding_entry(row._mapping) for row in connection.execute(query)]


def requests_of(
    connection: sa.Connection, model: str, type: str, *, subject: str | None = None
) -> list[dict[str, Any]]:
    """A model's requests of one CloudEvent type, one entry per event (its rows per
    destination folded into `deliveries`), oldest first."""
    query = (
        sa.select(_REQUESTS)
        .where(_REQUESTS.c.model == model, _REQUESTS.c.type == type)
        .order_by(_REQUESTS.c.created_at_ns, _REQUESTS.c.id, _REQUESTS.c.destination)
    )
    if subject is not None:
        query = query.where(_REQUESTS.c.subject == subject)
    entries: dict[str, dict[str, Any]] = {}
    for row in connection.execute(query):
        entry = entries.get(row.id)
        if entry is None:
            event = _json(row.event)
            entry = entries[row.id] = {
                "id": row.id,
                "type": row.type,
                "subject": row.subject,
                "time": event.get("time"),
                "created_at_ns": row.created_at_ns,
                "data": dict(event.get("data") or {}),
                "deliveries": [],
            }
        entry["deliveries"].append(
            {
                "destination": row.destination,
                "state": row.state,
                "attempts": row.attempts,
                "delivered_at_ns": row.delivered_at_ns,
                "last_error": row.last_error,
            }
        )
    return list(entries.values())


def retrain_requests_for_finding(
    connection: sa.Connection, model: str, finding_id: int
) -> list[dict[str, Any]]:
    """The model's retrain requests that name `finding_id` among their evidence."""
    return [
        _retrain_entry(request)
        for request in requests_of(connection, model, RETRAIN_REQUESTED)
        if finding_id in _finding_ids(request["data"])
    ]


def retrain_requests_for_snapshot(
    connection: sa.Connection, model: str, *, content_hash: str | None, uri: str | None
) -> list[dict[str, Any]]:
    """The model's retrain requests that carried this snapshot (by hash, else by URI)."""
    if content_hash is None and uri is None:
        return []
    found = []
    for request in requests_of(connection, model, RETRAIN_REQUESTED):
        entry = _retrain_entry(request)
        if _same_snapshot(entry["snapshot"], content_hash=content_hash, uri=uri):
            found.append(entry)
    return found


def versions_from_snapshots(
    connection: sa.Connection, model: str, snapshots: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The registered versions of `model` trained on any of these snapshots, oldest first:
    by content hash, or by URI for a version registered without a hash."""
    hashes = {s["content_hash"] for s in snapshots if s.get("content_hash")}
    uris = {s["uri"] for s in snapshots if s.get("uri")}
    if not hashes and not uris:
        return []
    linked = []
    if hashes:
        linked.append(_VERSIONS.c.source_snapshot_hash.in_(sorted(hashes)))
    if uris:
        linked.append(
            sa.and_(
                _VERSIONS.c.source_snapshot_hash.is_(None),
                _VERSIONS.c.source_snapshot_uri.in_(sorted(uris)),
            )
        )
    query = (
        sa.select(_VERSIONS)
        .where(_VERSIONS.c.model == model, sa.or_(*linked))
        .order_by(_VERSIONS.c.version)
    )
    return [_version_entry(row._mapping) for row in connection.execute(query)]


def registered_version(
    connection: sa.Connection, model: str, version: int
) -> dict[str, Any] | None:
    """A registered version as the lineage shows it, or None."""
    query = sa.select(_VERSIONS).where(_VERSIONS.c.model == model, _VERSIONS.c.version == version)
    row = connection.execute(query).first()
    return None if row is None else _version_entry(row._mapping)


def rollout_checks_of(connection: sa.Connection, model: str, version: int) -> list[dict[str, Any]]:
    """Every stored rollout check of a candidate version, by environment and check number."""
    query = (
        sa.select(_CHECKS)
        .where(_CHECKS.c.model == model, _CHECKS.c.candidate_version == version)
        .order_by(_CHECKS.c.environment, _CHECKS.c.check_number)
    )
    return [
        {
            "environment": row.environment,
            "check_number": row.check_number,
            "live_version": row.live_version,
            "at_ns": row.at_ns,
            "window_start_ns": row.window_start_ns,
            "window_end_ns": row.window_end_ns,
            "outcome": row.outcome,
            "reason": row.reason,
            "evidence": _json(row.evidence),
        }
        for row in connection.execute(query)
    ]


def moves_of(connection: sa.Connection, model: str, version: int) -> list[dict[str, Any]]:
    """A version's registry history: registration, then every move, in the order made."""
    query = (
        sa.select(_HISTORY)
        .where(_HISTORY.c.model == model, _HISTORY.c.version == version)
        .order_by(_HISTORY.c.at_ns, _HISTORY.c.id)
    )
    return [
        {
            "environment": row.environment,
            "from_state": row.from_state,
            "to_state": row.to_state,
            "who": row.actor,
            "why": row.reason,
            "at_ns": row.at_ns,
            "evidence": _json(row.evidence),
        }
        for row in connection.execute(query)
    ]


def downstream_of(connection: sa.Connection, version: Mapping[str, Any]) -> dict[str, Any]:
    """A version entry with what followed its registration: requests, checks and moves."""
    model, number = version["model"], version["version"]
    subject = f"{model}/{number}"
    return {
        **version,
        "redeploy_requests": requests_of(connection, model, REDEPLOY_REQUESTED, subject=subject),
        "rollout_checks": rollout_checks_of(connection, model, number),
        "rollback_requests": requests_of(connection, model, ROLLBACK_REQUESTED, subject=subject),
        "promote_requests": requests_of(connection, model, PROMOTE_REQUESTED, subject=subject),
        "moves": moves_of(connection, model, number),
    }


# ---------------------------------------------------------------- the document


def lineage_of(
    connection: sa.Connection,
    *,
    finding_id: int | None = None,
    model: str | None = None,
    version: int | None = None,
) -> Lineage:
    """The lineage of a finding (forwards), or of a model version (back to its findings and
    forwards to its rollout). Give `finding_id`, or `model` and `version`.

    A finding that caused no retrain has an empty chain, not an error; an unknown finding
    or version raises `UnknownLineageSubject`.
    """
    by_finding = finding_id is not None
    if by_finding == (model is not None or version is not None) or (
        not by_finding and (model is None or version is None)
    ):
        raise ValueError("give finding_id, or model and version")
    if by_finding:
        return _forwards(connection, int(finding_id))  # type: ignore[arg-type]
    return _from_version(connection, str(model), int(version))  # type: ignore[arg-type]


def _forwards(connection: sa.Connection, finding_id: int) -> Lineage:
    root = finding(connection, finding_id)
    if root is None:
        raise UnknownLineageSubject(f"no finding {finding_id}")
    model = root["model"]
    retrains = retrain_requests_for_finding(connection, model, finding_id)
    versions = versions_from_snapshots(connection, model, [r["snapshot"] for r in retrains])
    return Lineage(
        subject={"finding_id": finding_id},
        findings=[root],
        retrain_requests=retrains,
        versions=[_linked(connection, v, retrains) for v in versions],
    )


def _from_version(connection: sa.Connection, model: str, version: int) -> Lineage:
    entry = registered_version(connection, model, version)
    if entry is None:
        raise UnknownLineageSubject(f"{model} version {version} is not registered")
    snapshot = entry["snapshot"]
    retrains = retrain_requests_for_snapshot(
        connection, model, content_hash=snapshot["content_hash"], uri=snapshot["uri"]
    )
    ids = {i for r in retrains for i in r["finding_ids"]}
    return Lineage(
        subject={"model": model, "version": version},
        findings=findings(connection, ids),
        retrain_requests=retrains,
        versions=[_linked(connection, entry, retrains)],
    )


def _linked(
    connection: sa.Connection, version: Mapping[str, Any], retrains: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    snapshot = version["snapshot"]
    ids = [
        r["id"]
        for r in retrains
        if _same_snapshot(r["snapshot"], content_hash=snapshot["content_hash"], uri=snapshot["uri"])
    ]
    return {**downstream_of(connection, version), "retrain_request_ids": ids}


# ---------------------------------------------------------------- entries


def _finding_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "model": row["model"],
        "version": row["version"],
        "kind": row["kind"],
        "subject": row["subject"],
        "severity": row["severity"],
        "status": row["status"],
        "title": row["title"],
        "first_seen_ns": row["first_seen_ns"],
        "opened_at_ns": row["opened_at_ns"],
        "evidence": _json(row["evidence"]),
    }


def _version_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "model": row["model"],
        "version": row["version"],
        "artifact_uri": row["artifact_uri"],
        "registered_by": row["registered_by"],
        "registered_at_ns": row["registered_at_ns"],
        "metrics": _json(row["metrics"]),
        "snapshot": {
            "uri": row["source_snapshot_uri"],
            "content_hash": row["source_snapshot_hash"],
        },
    }


def _retrain_entry(request: Mapping[str, Any]) -> dict[str, Any]:
    data = request["data"]
    raw = data.get("snapshot") if isinstance(data.get("snapshot"), Mapping) else {}
    snapshot = {
        "uri": raw.get("uri"),
        "content_hash": raw.get("content_hash"),
        "rows": raw.get("rows"),
        "label_as_of_ns": raw.get("label_as_of_ns"),
    }
    return {**request, "finding_ids": sorted(_finding_ids(data)), "snapshot": snapshot}


def _finding_ids(data: Mapping[str, Any]) -> set[int]:
    ids = data.get("finding_ids") or []
    found = set()
    for value in ids if isinstance(ids, list) else []:
        try:
            found.add(int(value))
        except (TypeError, ValueError):  # a foreign id in someone's event: not ours to link
            continue
    return found


def _same_snapshot(
    snapshot: Mapping[str, Any], *, content_hash: str | None, uri: str | None
) -> bool:
    """The hash decides when both sides have one; the URI only when a side has no hash."""
    if content_hash and snapshot.get("content_hash"):
        return snapshot["content_hash"] == content_hash
    return uri is not None and snapshot.get("uri") == uri


def _json(value: Any) -> dict[str, Any]:
    """A JSON column's value as a dict (drivers that hand back text get it parsed)."""
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else {}
