"""Writing observations as findings: deduplication by fingerprint and the lifecycle.

pending (seen once) -> open (still seen `confirm_runs` runs and a window later) ->
resolved (the condition cleared in a run that evaluated it). A pending finding that clears before it
is confirmed is dismissed: a single noisy window never becomes an alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from inferloop.store.analysis import Finding

from ._observations import SCOPE_OF_KIND, Observation

ACTIVE = ("pending", "open")
_FINDINGS = Finding.__table__


@dataclass(frozen=True)
class FindingChange:
    finding_id: int
    fingerprint: str
    kind: str
    before: str | None
    after: str
    observation: Observation | None


def apply_observations(
    connection: sa.Connection,
    model: str,
    observations: Sequence[Observation],
    *,
    evaluated: Iterable[tuple[str | None, str]],
    now_ns: int,
    confirm_runs: int = 2,
    confirm_after_ns: int = 0,
) -> list[FindingChange]:
    """Insert, update, confirm, resolve or dismiss the model's findings for one run.

    `evaluated` lists the (version, scope) pairs this run checked: only findings in
    those scopes can clear (a check skipped for lack of data resolves nothing). A pending
    finding opens once seen in `confirm_runs` consecutive runs spanning at least
    `confirm_after_ns` (runs closer together look at mostly the same window).
    """
    evaluated = set(evaluated)
    active = {
        row.fingerprint: row
        for row in connection.execute(
            sa.select(_FINDINGS).where(_FINDINGS.c.model == model, _FINDINGS.c.status.in_(ACTIVE))
        )
    }
    changes: list[FindingChange] = []
    seen: set[str] = set()
    for obs in observations:
        key = obs.fingerprint
        if key in seen:
            continue
        seen.add(key)
        row = active.get(key)
        values = {
            "severity": obs.severity,
            "title": obs.title,
            "evidence": obs.evidence,
            "window_start_ns": obs.window_start_ns,
            "window_end_ns": obs.window_end_ns,
            "last_seen_ns": now_ns,
        }
        if row is None:
            status = "open" if confirm_runs <= 1 and confirm_after_ns <= 0 else "pending"
            finding_id = connection.execute(
                sa.insert(_FINDINGS).returning(_FINDINGS.c.id),
                values
                | {
                    "fingerprint": key,
                    "model": obs.model,
                    "version": obs.version,
                    "kind": obs.kind,
                    "subject": obs.subject,
                    "status": status,
                    "first_seen_ns": now_ns,
                    "opened_at_ns": now_ns if status == "open" else None,
                    "occurrences": 1,
                },
            ).scalar_one()
            changes.append(FindingChange(finding_id, key, obs.kind, None, status, obs))
            continue
        occurrences = row.occurrences + 1
        status = row.status
        persisted = now_ns - row.first_seen_ns >= confirm_after_ns
        if status == "pending" and occurrences >= confirm_runs and persisted:
            status = "open"
            values["opened_at_ns"] = now_ns
        connection.execute(
            sa.update(_FINDINGS)
            .where(_FINDINGS.c.id == row.id)
            .values(values | {"occurrences": occurrences, "status": status})
        )
        changes.append(FindingChange(row.id, key, obs.kind, row.status, status, obs))
    for key, row in active.items():
        if key in seen or (row.version, SCOPE_OF_KIND.get(row.kind)) not in evaluated:
            continue
        status = "dismissed" if row.status == "pending" else "resolved"
        connection.execute(
            sa.update(_FINDINGS)
            .where(_FINDINGS.c.id == row.id)
            .values(status=status, resolved_at_ns=now_ns)
        )
        changes.append(FindingChange(row.id, key, row.kind, row.status, status, None))
    return changes


def list_findings(
    connection: sa.Connection, *, model: str | None = None, statuses: Sequence[str] = ACTIVE
) -> list[sa.Row]:
    query = sa.select(_FINDINGS).where(_FINDINGS.c.status.in_(statuses)).order_by(_FINDINGS.c.id)
    if model is not None:
        query = query.where(_FINDINGS.c.model == model)
    return list(connection.execute(query))


def set_report_path(connection: sa.Connection, finding_id: int, path: str) -> None:
    connection.execute(
        sa.update(_FINDINGS).where(_FINDINGS.c.id == finding_id).values(report_path=path)
    )


def finding_report_path(connection: sa.Connection, finding_id: int) -> str | None:
    """The stored Evidently HTML of a finding, for the dashboard route to serve."""
    return connection.scalar(sa.select(_FINDINGS.c.report_path).where(_FINDINGS.c.id == finding_id))
