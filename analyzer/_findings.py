"""Writing observations as findings: deduplication by fingerprint and the lifecycle.

pending (seen once) -> open (still seen `confirm_runs` runs and a window later) ->
resolved (the condition cleared in a run that evaluated it). A pending finding that clears
before it is confirmed is dismissed: a single noisy window never becomes an alert.
The rules are here; the rows are read and written through `inferloop.store.findings`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from inferloop.store.findings import active_findings, insert_finding, update_finding
from inferloop.store.vocabulary import SCOPE_OF_KIND, CheckScope, FindingKind, FindingStatus

from ._observations import Observation


@dataclass(frozen=True)
class FindingChange:
    """A finding a run added or moved: its status before (None: new) and after."""

    finding_id: int
    fingerprint: str
    kind: FindingKind
    before: FindingStatus | None
    after: FindingStatus
    observation: Observation | None


def apply_observations(
    connection: sa.Connection,
    model: str,
    observations: Sequence[Observation],
    *,
    evaluated: Iterable[tuple[str | None, CheckScope | str]],
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
    active = active_findings(connection, model)
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
            confirmed = confirm_runs <= 1 and confirm_after_ns <= 0
            status = FindingStatus.OPEN if confirmed else FindingStatus.PENDING
            finding_id = insert_finding(
                connection,
                values
                | {
                    "fingerprint": key,
                    "model": obs.model,
                    "version": obs.version,
                    "kind": obs.kind,
                    "subject": obs.subject,
                    "status": status,
                    "first_seen_ns": now_ns,
                    "opened_at_ns": now_ns if status == FindingStatus.OPEN else None,
                    "occurrences": 1,
                },
            )
            changes.append(FindingChange(finding_id, key, obs.kind, None, status, obs))
            continue
        occurrences = row.occurrences + 1
        before = status = FindingStatus(row.status)
        persisted = now_ns - row.first_seen_ns >= confirm_after_ns
        if status == FindingStatus.PENDING and occurrences >= confirm_runs and persisted:
            status = FindingStatus.OPEN
            values["opened_at_ns"] = now_ns
        update_finding(connection, row.id, values | {"occurrences": occurrences, "status": status})
        changes.append(FindingChange(row.id, key, obs.kind, before, status, obs))
    for key, row in active.items():
        if key in seen or (row.version, SCOPE_OF_KIND.get(row.kind)) not in evaluated:
            continue
        before = FindingStatus(row.status)
        status = (
            FindingStatus.DISMISSED if before == FindingStatus.PENDING else FindingStatus.RESOLVED
        )
        update_finding(connection, row.id, {"status": status, "resolved_at_ns": now_ns})
        changes.append(FindingChange(row.id, key, FindingKind(row.kind), before, status, None))
    return changes
