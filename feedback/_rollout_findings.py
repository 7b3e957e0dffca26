"""Findings of the guarded rollout: what reaches on-call when a rollout fails or stalls.

The alert engine routes findings by rules, so a rollout that needs a person writes one,
in the transaction of the decision that raised it:

- `rollout_failed` (critical): the guard rolled a candidate back (or the inconclusive
  policy did). Resolved once a newer version of the model is live in that environment:
  until a later candidate made it, the fix the finding asked for has not landed. A
  manual rollback of the restored version does not resolve it; a promotion does.
- `rollout_inconclusive` (warning): a canary stayed inconclusive for `max_checks` and the
  policy paused it. Resolved once the candidate leaves canary (someone promoted or rolled
  it back), since then nobody is waiting on it any more.

The subject is the environment and the version the candidate, so the fingerprint (made as
the analyzer makes it) names one rollout; a second worker that finds an active finding
with it writes nothing. The analyzer never clears these: their scope is `rollout`, which
it does not evaluate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from inferloop.store.findings import (
    active_findings,
    insert_finding,
    list_findings,
    update_finding,
)
from inferloop.store.registry_queries import version_state
from inferloop.store.vocabulary import (
    ACTIVE_STATUSES,
    FindingKind,
    FindingStatus,
    Severity,
)

from ._registry import VersionState, live_version

ROLLOUT_KINDS = (FindingKind.ROLLOUT_FAILED, FindingKind.ROLLOUT_INCONCLUSIVE)


def rollout_fingerprint(model: str, version: int, kind: str, environment: str) -> str:
    """The analyzer's fingerprint scheme (model, version, kind, subject) for one rollout."""
    key = "\x1f".join((model, str(version), kind, environment))
    return hashlib.sha256(key.encode()).hexdigest()


def record_rollout_finding(
    connection: sa.Connection,
    *,
    kind: FindingKind,
    model: str,
    environment: str,
    version: int,
    title: str,
    evidence: Mapping[str, Any],
    window_start_ns: int,
    window_end_ns: int,
    now_ns: int,
) -> int | None:
    """Write an open finding for one rollout; None if one is already active (written once)."""
    fingerprint = rollout_fingerprint(model, version, kind, environment)
    if fingerprint in active_findings(connection, model):
        return None
    severity = Severity.CRITICAL if kind == FindingKind.ROLLOUT_FAILED else Severity.WARNING
    return insert_finding(
        connection,
        {
            "fingerprint": fingerprint,
            "model": model,
            "version": str(version),
            "kind": kind,
            "subject": environment,
            "severity": severity,
            "status": FindingStatus.OPEN,  # a decision, not a noisy window: no pending step
            "title": title,
            "evidence": dict(evidence),
            "window_start_ns": window_start_ns,
            "window_end_ns": window_end_ns,
            "first_seen_ns": now_ns,
            "last_seen_ns": now_ns,
            "opened_at_ns": now_ns,
            "occurrences": 1,
        },
    )


def settled_rollout_findings(connection: sa.Connection, *, model: str | None = None) -> list[int]:
    """Ids of the active rollout findings whose condition is over (see the module)."""
    return [
        int(row["id"])
        for row in _active_rollout_findings(connection, model)
        if _settled(connection, row)
    ]


def resolve_settled(
    connection: sa.Connection, *, now_ns: int, model: str | None = None
) -> list[int]:
    """Resolve the active rollout findings whose condition is over; returns their ids.
    `model` limits the sweep to one model. Call it in a write transaction."""
    resolved = settled_rollout_findings(connection, model=model)
    for finding_id in resolved:
        update_finding(
            connection,
            finding_id,
            {"status": FindingStatus.RESOLVED, "resolved_at_ns": now_ns, "last_seen_ns": now_ns},
        )
    return resolved


def _active_rollout_findings(
    connection: sa.Connection, model: str | None
) -> list[Mapping[str, Any]]:
    rows = list_findings(connection, model=model, statuses=ACTIVE_STATUSES)
    return [row._mapping for row in rows if row.kind in ROLLOUT_KINDS]


def _settled(connection: sa.Connection, finding: Mapping[str, Any]) -> bool:
    model, environment = str(finding["model"]), str(finding["subject"])
    version = int(finding["version"])
    if finding["kind"] == FindingKind.ROLLOUT_INCONCLUSIVE:
        state, _ = version_state(connection, model, environment, version)
        return state != VersionState.CANARY
    live = live_version(connection, model, environment=environment)
    return live is not None and live > version
