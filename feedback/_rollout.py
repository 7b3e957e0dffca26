"""The guarded rollout: every interval, candidate vs live on the same window of traffic, and
the registry move the guard's outcome calls for, in one transaction with its record.

A rollout starts when a version moves to canary (`start_canary`, which also emits the
redeploy request). Check `n` covers `[start + (n-1)·interval, start + n·interval)` and runs
once that window has closed (plus a grace for late events). The latency threshold is live's
p95 over a baseline before the start, fixed at the first check and stored in its evidence,
so every later check tests the same "slow". The guard's state is rebuilt from the stored
checks' counts, so a restarted or second worker decides exactly what the first would have.

Each check's transaction takes the model's registry lock first, re-reads the candidate's
state and stored checks under it, then stores the check and acts: FAIL rolls the candidate
back and queues a rollback request, PASS promotes it, INCONCLUSIVE waits. A crash before the
commit leaves nothing; a re-run after it finds the check stored (the unique check number)
and the request queued (the deterministic CloudEvent id), so nothing is doubled.

What needs a person becomes a finding in the same transaction, which the alert engine
routes (`_rollout_findings`): a rollback writes `rollout_failed` (critical); a canary
still inconclusive at check `max_checks` is handled by `on_inconclusive`:

- `pause` (the default): it stays in canary, unchecked, and a `rollout_inconclusive`
  warning is written once; someone decides (promote, or roll back, by hand). Every
  interval makes a check, empty ones too, so `max_checks × interval_s` is the longest a
  canary waits before a person hears of it (12 hours by default).
- `extend`: keep checking as long as it takes; no finding.
- `rollback`: roll it back and queue a rollback request, as a failed check does, with
  `rollout_failed`: for teams that would rather serve the known version than wait.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.periodic import PeriodicThread
from inferloop.store import feedback_queries as queries
from inferloop.store import registry_queries
from inferloop.store.base import begin_write
from inferloop.store.labeled_rows import labeled_rows
from inferloop.store.vocabulary import FindingKind

from ._cloudevents import PROMOTE_REQUESTED, ROLLBACK_REQUESTED, cloud_event
from ._guard import ArmCounts, GuardDecision, IntervalCounts, Outcome, RolloutGuard
from ._registry import (
    VersionState,
    live_version,
    move_version,
)
from ._requests import enqueue_request
from ._rollout_findings import record_rollout_finding, resolve_settled, settled_rollout_findings

logger = logging.getLogger(__name__)
NS = 1_000_000_000


class InconclusivePolicy(enum.StrEnum):
    """What a canary still inconclusive at check `max_checks` gets (see the module)."""

    PAUSE = "pause"
    EXTEND = "extend"
    ROLLBACK = "rollback"


DEFAULT_MAX_CHECKS = 144
"""12 hours of the default 5-minute checks."""


@dataclass(frozen=True, slots=True)
class RolloutStep:
    """One stored check: the window it covered, the guard's decision, what the worker did
    (`waiting`, `promoted`, `rolled_back`, `paused`), the request sent and the finding
    written."""

    model: str
    environment: str
    candidate_version: int
    live_version: int
    check_number: int
    window_start_ns: int
    window_end_ns: int
    decision: GuardDecision
    request_id: str | None = None
    action: str = "waiting"
    finding_id: int | None = None


def prediction_matches(predicted: Any, truth: Any) -> bool:
    """Whether a prediction is right. A score in [0, 1] against a 0/1 label is a class at
    0.5, as the analyzer's label-quality check reads it; anything else must equal the label."""
    is_class = isinstance(truth, int) and not isinstance(truth, bool) and truth in (0, 1)
    if is_class and isinstance(predicted, float) and 0.0 <= predicted <= 1.0:
        return int(predicted >= 0.5) == truth
    return predicted == truth


def predicted_value(outputs: Any) -> Any:
    """The prediction a label is compared with: `outputs["rows"][0]["value"]`, else None."""
    try:
        return outputs["rows"][0]["value"]
    except (KeyError, IndexError, TypeError):
        return None


class RolloutWorker:
    """Checks every canary each interval; `run_once()` stores the checks now due.

    `guard`: a factory of fresh guards (the options of every rollout); `destinations`: the
    request destinations a rollback is queued for; `clock` returns Unix nanoseconds;
    `on_inconclusive` and `max_checks`: what a canary undecided after that many checks gets.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        destinations: Sequence[str],
        guard: Callable[[], RolloutGuard] = RolloutGuard,
        interval_s: float = 300.0,
        baseline_s: float = 3600.0,
        grace_s: float = 30.0,
        slow_quantile: float = 0.95,
        who: str = "rollout-guard",
        clock: Callable[[], int] = time.time_ns,
        poll_s: float = 10.0,
        on_inconclusive: InconclusivePolicy | str = InconclusivePolicy.PAUSE,
        max_checks: int = DEFAULT_MAX_CHECKS,
    ) -> None:
        if max_checks < 1:
            raise ValueError(f"max_checks must be >= 1, not {max_checks}")
        if interval_s <= 0 or baseline_s <= 0 or grace_s < 0:
            raise ValueError("need interval_s > 0, baseline_s > 0 and grace_s >= 0")
        if not 0.0 < slow_quantile < 1.0:
            raise ValueError(f"slow_quantile must be in (0, 1), not {slow_quantile}")
        self.engine = engine
        self.destinations = tuple(destinations)
        self.guard = guard
        self.interval_ns = int(interval_s * NS)
        self.baseline_ns = int(baseline_s * NS)
        self.grace_ns = int(grace_s * NS)
        self.slow_quantile = slow_quantile
        self.who = who
        self.clock = clock
        self.poll_s = poll_s
        self.on_inconclusive = InconclusivePolicy(on_inconclusive)
        self.max_checks = max_checks
        self._thread = PeriodicThread(
            "inferloop-rollout", self._round, retry_s=poll_s, logger=logger
        )

    def run_once(self) -> list[RolloutStep]:
        """Every check due now, for every canary, oldest window first."""
        with self.engine.connect() as connection:  # moves made by hand settle findings too
            settled = settled_rollout_findings(connection)
        if settled:
            with begin_write(self.engine) as connection:
                resolve_settled(connection, now_ns=self.clock())
        with self.engine.connect() as connection:
            rollouts = [
                (model, env, version, queries.canary_since(connection, model, env, version))
                for model, env, version in queries.canaries(connection)
            ]
        steps: list[RolloutStep] = []
        for model, environment, version, started_ns in rollouts:
            while True:
                step = self._check_due(model, environment, version, started_ns)
                if step is None:
                    break
                steps.append(step)
                if step.decision.outcome is not Outcome.INCONCLUSIVE:
                    break
        return steps

    def _check_due(
        self, model: str, environment: str, version: int, started_ns: int
    ) -> RolloutStep | None:
        now_ns = self.clock()
        with self.engine.begin() as connection:
            registry_queries.lock_model(connection, model)  # serializes workers; first write
            state, _ = registry_queries.version_state(connection, model, environment, version)
            if state != VersionState.CANARY:
                return None
            stored = queries.rollout_checks(connection, model, environment, version)
            number = len(stored) + 1
            if self.on_inconclusive is InconclusivePolicy.PAUSE and number > self.max_checks:
                return None  # paused: a person decides now
            start_ns = started_ns + (number - 1) * self.interval_ns
            end_ns = start_ns + self.interval_ns
            if now_ns < end_ns + self.grace_ns:
                return None
            live = live_version(connection, model, environment=environment)
            if live is None:
                logger.warning("%s %s: canary %d has no live version", model, environment, version)
                return None
            threshold = self._threshold(connection, stored, model, environment, live, started_ns)
            if threshold is None:  # no live traffic yet: fix it from this window instead
                threshold = self._quantile(connection, model, environment, live, start_ns, end_ns)
            arms = {
                arm: self._arm(
                    connection, model, environment, v, start_ns, end_ns, threshold, now_ns
                )
                for arm, v in (("candidate", version), ("live", live))
            }
            interval = IntervalCounts(**arms)
            guard = self.guard()
            for check in stored:
                guard.check(_interval_of(check["evidence"]["interval"]))
            decision = guard.check(interval)
            evidence = {
                "decision": decision.to_dict(),
                "interval": {arm: asdict(counts) for arm, counts in arms.items()},
                "slow_above_ns": threshold,
                "slow_quantile": self.slow_quantile,
                "rollout_started_ns": started_ns,
            }
            step = RolloutStep(
                model, environment, version, live, number, start_ns, end_ns, decision
            )
            stored_now = queries.insert_check(
                connection,
                {
                    "model": model,
                    "environment": environment,
                    "candidate_version": version,
                    "live_version": live,
                    "check_number": number,
                    "at_ns": now_ns,
                    "window_start_ns": start_ns,
                    "window_end_ns": end_ns,
                    "outcome": str(decision.outcome),
                    "reason": decision.reason,
                    "evidence": evidence,
                },
            )
            if not stored_now:  # another worker stored this check first: it acted on it
                return None
            return self._act(connection, step, evidence, now_ns)

    def _act(
        self, connection: sa.Connection, step: RolloutStep, evidence: dict, now_ns: int
    ) -> RolloutStep:
        outcome = step.decision.outcome
        if outcome is Outcome.INCONCLUSIVE:
            if step.check_number < self.max_checks:
                return step
            if self.on_inconclusive is InconclusivePolicy.EXTEND:
                return step
            if self.on_inconclusive is InconclusivePolicy.PAUSE:
                return self._pause(connection, step, evidence, now_ns)
            why = (
                f"rollout check {step.check_number}: still inconclusive after "
                f"{self.max_checks} checks ({step.decision.reason}); policy rolls back"
            )
            return self._roll_back(connection, step, evidence, now_ns, why)
        if outcome is Outcome.FAIL:
            why = f"rollout check {step.check_number}: {step.decision.reason}"
            return self._roll_back(connection, step, evidence, now_ns, why)
        move_version(
            connection,
            step.model,
            step.candidate_version,
            VersionState.LIVE,
            environment=step.environment,
            who=self.who,
            why=f"rollout check {step.check_number}: {step.decision.reason}",
            now_ns=now_ns,
            evidence={"check_number": step.check_number, "guard": evidence},
        )
        resolve_settled(connection, now_ns=now_ns, model=step.model)  # earlier failures
        event = cloud_event(
            PROMOTE_REQUESTED,
            subject=f"{step.model}/{step.candidate_version}",
            decision={
                "model": step.model,
                "environment": step.environment,
                "version": step.candidate_version,
            },
            data={
                "model": step.model,
                "version": step.candidate_version,
                "environment": step.environment,
                "retired_version": step.live_version,
                "check_number": step.check_number,
                "reason": step.decision.reason,
                "evidence": evidence,
            },
            time_ns=now_ns,
        )
        enqueue_request(
            connection, event, model=step.model, destinations=self.destinations, now_ns=now_ns
        )
        return replace(step, action="promoted", request_id=event["id"])

    def _pause(
        self, connection: sa.Connection, step: RolloutStep, evidence: dict, now_ns: int
    ) -> RolloutStep:
        finding = record_rollout_finding(
            connection,
            kind=FindingKind.ROLLOUT_INCONCLUSIVE,
            model=step.model,
            environment=step.environment,
            version=step.candidate_version,
            title=(
                f"{step.model} v{step.candidate_version} paused in canary in "
                f"{step.environment}: inconclusive after {step.check_number} checks"
            ),
            evidence=self._finding_evidence(step, evidence, policy="pause"),
            window_start_ns=evidence["rollout_started_ns"],
            window_end_ns=step.window_end_ns,
            now_ns=now_ns,
        )
        return replace(step, action="paused", finding_id=finding)

    def _roll_back(
        self, connection: sa.Connection, step: RolloutStep, evidence: dict, now_ns: int, why: str
    ) -> RolloutStep:
        move_version(
            connection,
            step.model,
            step.candidate_version,
            VersionState.ROLLED_BACK,
            environment=step.environment,
            who=self.who,
            why=why,
            now_ns=now_ns,
            evidence={"check_number": step.check_number, "guard": evidence},
        )
        event = cloud_event(
            ROLLBACK_REQUESTED,
            subject=f"{step.model}/{step.candidate_version}",
            decision={
                "model": step.model,
                "environment": step.environment,
                "version": step.candidate_version,
                "check_number": step.check_number,
            },
            data={
                "model": step.model,
                "version": step.candidate_version,
                "environment": step.environment,
                "restore_version": step.live_version,
                "check_number": step.check_number,
                "reason": why,
                "evidence": evidence,
            },
            time_ns=now_ns,
        )
        enqueue_request(
            connection, event, model=step.model, destinations=self.destinations, now_ns=now_ns
        )
        finding = record_rollout_finding(
            connection,
            kind=FindingKind.ROLLOUT_FAILED,
            model=step.model,
            environment=step.environment,
            version=step.candidate_version,
            title=(
                f"{step.model} v{step.candidate_version} rolled back in {step.environment}: "
                f"{step.decision.reason}"
            ),
            evidence=self._finding_evidence(step, evidence, rollback_request_id=event["id"]),
            window_start_ns=evidence["rollout_started_ns"],
            window_end_ns=step.window_end_ns,
            now_ns=now_ns,
        )
        return replace(step, request_id=event["id"], action="rolled_back", finding_id=finding)

    def _finding_evidence(self, step: RolloutStep, evidence: dict, **extra: Any) -> dict:
        return {
            "environment": step.environment,
            "candidate_version": step.candidate_version,
            "live_version": step.live_version,
            "check_number": step.check_number,
            "on_inconclusive": str(self.on_inconclusive),
            "max_checks": self.max_checks,
            **extra,
            **evidence,
        }

    def _threshold(
        self,
        connection: sa.Connection,
        stored: Sequence[Mapping[str, Any]],
        model: str,
        environment: str,
        live: int,
        started_ns: int,
    ) -> int | None:
        """The latency above which a call is slow: the first stored one, else live's quantile
        over the baseline before the rollout."""
        for check in stored:
            if check["evidence"].get("slow_above_ns") is not None:
                return int(check["evidence"]["slow_above_ns"])
        return self._quantile(
            connection, model, environment, live, started_ns - self.baseline_ns, started_ns
        )

    def _quantile(
        self, connection: sa.Connection, model: str, env: str, version: int, start: int, end: int
    ) -> int | None:
        return queries.latency_quantile(
            connection,
            model=model,
            environment=env,
            version=str(version),
            start_ns=start,
            end_ns=end,
            q=self.slow_quantile,
        )

    def _arm(
        self,
        connection: sa.Connection,
        model: str,
        environment: str,
        version: int,
        start_ns: int,
        end_ns: int,
        threshold: int | None,
        now_ns: int,
    ) -> ArmCounts:
        calls, errors, slow = queries.arm_counts(
            connection,
            model=model,
            environment=environment,
            version=str(version),
            start_ns=start_ns,
            end_ns=end_ns,
            slow_above_ns=threshold if threshold is not None else 2**62,
        )
        labeled = correct = 0
        for row in labeled_rows(
            connection,
            model=model,
            versions=[str(version)],
            start_ns=start_ns,
            end_ns=end_ns,
            label_as_of_ns=now_ns,
        ):
            predicted = predicted_value(row["outputs"])
            if predicted is None:
                continue
            truth = row["label"]["value"] if isinstance(row["label"], dict) else row["label"]
            labeled += 1
            correct += prediction_matches(predicted, truth)
        # labeled_rows reads every environment; never let it exceed this arm's calls
        labeled = min(labeled, calls)
        return ArmCounts(calls, errors, slow, labeled, min(correct, labeled))

    def _round(self) -> float:
        self.run_once()
        return self.poll_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)


def _interval_of(stored: Mapping[str, Mapping[str, int]]) -> IntervalCounts:
    return IntervalCounts(ArmCounts(**stored["candidate"]), ArmCounts(**stored["live"]))
