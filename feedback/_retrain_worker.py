"""The retrain policy at work: every round, the open findings of every model against a
`RetrainPolicy`, and a retrain request where it says so.

The policy is evaluated twice: once on a plain read, to skip cheaply what is not due, and
again under the model's request lock inside the reservation, so two workers that both saw
a retrain due make one request (the second finds the first's reservation, or the finding
covered, and stands down). Requests left `preparing` by a crash are completed first, with
their reserved cutoff. A model whose request fails is one `failed` step; the others go on.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.periodic import PeriodicThread
from inferloop.store import feedback_queries as queries
from inferloop.store.findings import list_findings
from inferloop.store.labeled_rows import labeled_row_counts
from inferloop.store.vocabulary import FindingStatus

from ._cloudevents import RETRAIN_REQUESTED
from ._retrain import complete_retrain, make_retrain_request
from ._retrain_policy import REQUEST, RetrainPolicy, RetrainVerdict

logger = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RetrainStep:
    """What one worker round did for one model: `action` is `requested`, `resumed`,
    `already_requested`, `failed` (the export or the store raised: a reserved request is
    retried next round), or why it waits (`cooldown`, `too_few_labels`, `covered`,
    `refused`: another worker decided first)."""

    model: str
    action: str
    reason: str
    request_id: str | None = None
    finding_ids: tuple[int, ...] = ()
    new_labeled_rows: int | None = None


class RetrainWorker:
    """Applies a `RetrainPolicy` to the open findings of every model; `run_once()` returns
    a step per model with a matching finding, and per request it finished after a crash.

    `clock` returns Unix nanoseconds; `destinations` are the request destinations' names.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        policy: RetrainPolicy,
        snapshot_dir: str | os.PathLike[str],
        destinations: Sequence[str],
        who: str = "retrain-policy",
        clock: Callable[[], int] = time.time_ns,
        poll_s: float = 60.0,
    ) -> None:
        if not destinations:
            raise ValueError("a retrain worker needs at least one request destination")
        self.engine = engine
        self.policy = policy
        self.snapshot_dir = str(snapshot_dir)
        self.destinations = tuple(destinations)
        self.who = who
        self.clock = clock
        self.poll_s = poll_s
        self.last_round: list[RetrainStep] = []
        self._thread = PeriodicThread(
            "inferloop-retrain", self._round, retry_s=poll_s, logger=logger
        )

    def run_once(self) -> list[RetrainStep]:
        now_ns = self.clock()
        steps = self._resume(now_ns)
        with self.engine.connect() as connection:
            rows = list_findings(connection, statuses=[FindingStatus.OPEN])
        by_model: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_model.setdefault(str(row.model), []).append(dict(row._mapping))
        for model in sorted(by_model):
            findings = by_model[model]
            if not any(self.policy.matches(f) for f in findings):
                continue
            try:
                steps.append(self._consider(model, findings, now_ns))
            except Exception as error:  # one model's failure must not stop the others
                logger.exception("retrain of %s: the request failed", model)
                steps.append(RetrainStep(model, "failed", f"{type(error).__name__}: {error}"))
        self.last_round = steps
        return steps

    def _resume(self, now_ns: int) -> list[RetrainStep]:
        with self.engine.connect() as connection:
            preparing = queries.preparing_requests(connection, type=RETRAIN_REQUESTED)
        steps = []
        for request_id, model in preparing:
            try:
                made = complete_retrain(self.engine, request_id, now_ns=now_ns)
            except Exception as error:  # retried next round; the others go on
                logger.exception("retrain request %s could not be completed", request_id)
                reason = f"{type(error).__name__}: {error}"
                steps.append(RetrainStep(model, "failed", reason, request_id))
                continue
            if made is not None:
                data = made.event["data"]
                steps.append(
                    RetrainStep(
                        str(data["model"]),
                        "resumed" if made.queued else "already_requested",
                        str(data["reason"]),
                        made.id,
                        tuple(data.get("finding_ids") or ()),
                        data.get("new_labeled_rows"),
                    )
                )
        return steps

    def _verdict(
        self,
        connection: sa.Connection,
        model: str,
        findings: Sequence[Mapping[str, Any]],
        now_ns: int,
        new_labeled_rows: Callable[[], int] | None = None,
    ) -> RetrainVerdict:
        history = queries.requests_by_event(connection, model=model, type=RETRAIN_REQUESTED)
        covered = {
            int(i) for r in history for i in (r["event"].get("data") or {}).get("finding_ids") or ()
        }
        last = history[-1] if history else None
        since = None if last is None else _cutoff_of(last["event"].get("data") or {})
        return self.policy.evaluate(
            findings,
            covered=covered,
            last_request_ns=None if last is None else int(last["created_at_ns"]),
            now_ns=now_ns,
            new_labeled_rows=new_labeled_rows
            or (lambda: self._new_labeled_rows(connection, model, since, now_ns)),
        )

    def _consider(
        self, model: str, findings: Sequence[Mapping[str, Any]], now_ns: int
    ) -> RetrainStep:
        with self.engine.connect() as connection:
            verdict = self._verdict(connection, model, findings, now_ns)
        if not verdict.requested:
            return RetrainStep(
                model,
                verdict.action,
                verdict.reason,
                None,
                verdict.finding_ids,
                verdict.new_labeled_rows,
            )

        def still_due(connection: sa.Connection) -> str | None:
            # Under the model's request lock: another worker may have decided meanwhile.
            again = self._verdict(
                connection, model, findings, now_ns, lambda: verdict.new_labeled_rows or 0
            )
            if again.action == REQUEST and again.trigger_finding_id == verdict.trigger_finding_id:
                return None
            return again.reason

        made = make_retrain_request(
            self.engine,
            model,
            snapshot_dir=self.snapshot_dir,
            destinations=self.destinations,
            now_ns=now_ns,
            reason=verdict.reason,
            evidence={"findings": list(verdict.evidence), "policy": self.policy.to_dict()},
            finding_id=verdict.trigger_finding_id,
            finding_ids=verdict.finding_ids,
            idempotency_key=None,
            requested_by=self.who,
            trigger="policy",
            snapshot_window_s=self.policy.snapshot_window_s,
            versions=None,
            join_policy="latest",
            new_labeled_rows=verdict.new_labeled_rows,
            precondition=still_due,
        )
        if made is None:
            return RetrainStep(model, "refused", "another worker decided first", None)
        return RetrainStep(
            model,
            "requested" if made.queued else "already_requested",
            verdict.reason,
            made.id,
            verdict.finding_ids,
            verdict.new_labeled_rows,
        )

    def _new_labeled_rows(
        self, connection: sa.Connection, model: str, since_ns: int | None, now_ns: int
    ) -> int:
        """Rows of the next snapshot's range labeled by now but not by the last cutoff."""
        window = {
            "model": model,
            "start_ns": now_ns - int(self.policy.snapshot_window_s * NS),
            "end_ns": now_ns + 1,
        }
        now = labeled_row_counts(connection, **window, label_as_of_ns=now_ns).labeled
        if since_ns is None:
            return now
        before = labeled_row_counts(connection, **window, label_as_of_ns=int(since_ns)).labeled
        return now - before

    def _round(self) -> float:
        self.run_once()
        return self.poll_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)


def _cutoff_of(data: Mapping[str, Any]) -> int | None:
    """A request's label cutoff: its own (a reused snapshot may name an earlier one with
    the same rows), else its snapshot's."""
    snapshot = data.get("snapshot") if isinstance(data.get("snapshot"), Mapping) else {}
    cutoff = data.get("label_as_of_ns", snapshot.get("label_as_of_ns"))
    return None if cutoff is None else int(cutoff)
