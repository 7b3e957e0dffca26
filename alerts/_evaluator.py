"""The evaluator: findings in the store → the pure core → notifications in the outbox.

It is level-triggered, like Prometheus feeding Alertmanager: each pass reads the
open findings (and, for alerts it still believes firing, why they stopped), runs
one `step` of the core and, in one transaction, saves the new core state and
queues the notifications the step produced. A crash before the commit loses
nothing (the next pass recomputes the same step, with the same notification ids);
after it, the outbox owns delivery. A finding therefore reaches the outbox at most
one `evaluate_interval_s` after its state change was committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.engine import Engine

from inferloop.periodic import PeriodicThread
from inferloop.store.alert_rules import list_rules
from inferloop.store.alert_state import (
    get_silence,
    list_silences,
    load_engine_state,
    lock_engine_state,
    save_engine_state,
)
from inferloop.store.findings import findings_by_id, list_findings
from inferloop.store.outbox import enqueue_notifications
from inferloop.store.vocabulary import FindingStatus

from ._config import AlertingConfig
from ._dispatcher import outbox_row
from ._engine import step
from ._model import Alert, Notification
from ._rules import alert_from_finding, effective_rules
from ._silences import Silence
from ._state import AlertChanged, EngineState, Event, SilenceChanged

logger = logging.getLogger(__name__)


class _LostRace(Exception):
    """Another evaluator saved the state first; this pass rolls back and retries."""


class AlertEvaluator:
    """`evaluate_once()` runs one pass; `start()`/`stop()` run passes in a named thread."""

    def __init__(
        self,
        engine: Engine,
        config: AlertingConfig,
        *,
        clock: Callable[[], int] = time.time_ns,
        interval_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.interval_s = interval_s
        self._thread = PeriodicThread(
            "inferloop-alerts", self._round, retry_s=interval_s, logger=logger
        )

    def evaluate_once(self) -> list[Notification]:
        """One step of the core at `clock()`; returns the notifications it queued."""
        now_ns = self.clock()
        try:
            with self.engine.begin() as connection:
                lock_engine_state(connection, now_ns=now_ns)
                document, version = load_engine_state(connection)
                state = EngineState() if document is None else EngineState.from_dict(document)
                events = self._events(connection, state, now_ns)
                result = step(self.config, state, events, now_ns)
                if not save_engine_state(
                    connection,
                    result.state.to_dict(),
                    seen_version=version,
                    now_ns=now_ns,
                    next_wakeup_ns=result.next_wakeup_ns,
                ):
                    raise _LostRace
                enqueue_notifications(connection, [outbox_row(n) for n in result.notifications])
        except _LostRace:
            return []
        return result.notifications

    def _events(self, connection, state: EngineState, now_ns: int) -> list[Event]:
        """Alerts of the open findings, resolves of those no longer open, the silences."""
        firing: dict[str, Alert] = {}
        rules = effective_rules(list_rules(connection), self.config.rules)
        for row in list_findings(connection, statuses=[FindingStatus.OPEN]):
            alert = alert_from_finding(rules, row._mapping)
            if alert is not None and alert.ends_at_ns is None:
                firing[alert.fingerprint] = alert
        events: list[Event] = [AlertChanged(alert) for alert in firing.values()]
        cleared = [
            record.alert
            for record in state.alerts.values()
            if record.firing and record.alert.fingerprint not in firing
        ]
        ids = [a.annotations.get("finding_id") for a in cleared]
        rows = findings_by_id(connection, [i for i in ids if isinstance(i, int)])
        for alert in cleared:
            row = rows.get(alert.annotations.get("finding_id"))
            ended = row.resolved_at_ns if row is not None and row.resolved_at_ns else now_ns
            events.append(AlertChanged(replace(alert, ends_at_ns=ended)))
        events += [SilenceChanged(silence) for silence in _silences(connection, state, now_ns)]
        return events

    def _round(self) -> float:
        self.evaluate_once()
        return self.interval_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)


def _silences(connection, state: EngineState, now_ns: int) -> list[Silence]:
    """The store's unexpired silences, and the stored end of every silence the core still
    holds as running that the store no longer lists: one expired early, replaced by an
    edit, or deleted. Without the latter the core went on applying its old copy until
    the silence's original end."""
    running = [Silence.from_dict(row) for row in list_silences(connection, unexpired_at_ns=now_ns)]
    listed = {silence.id for silence in running}
    ended = []
    for silence_id, held in state.silences.items():
        if silence_id in listed or held.expired(now_ns):
            continue
        stored = get_silence(connection, silence_id)
        if stored is not None:
            ended.append(Silence.from_dict(stored))
        else:
            ended.append(replace(held, ends_at_ns=max(held.starts_at_ns, now_ns)))
    return running + ended
