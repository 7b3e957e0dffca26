"""The pure alerting core: (config, state, events, now) → (state, notifications, next wake-up).

Per group and receiver, the rules are Alertmanager's with its known failures fixed:

- a group's first notification waits `group_wait` after there is something to say;
  later news (a new alert, a re-fire) is batched to `group_interval` after the last
  send; an unchanged firing group is repeated after `repeat_interval`;
- a resolve of an alert the receiver was told is firing is sent in the same step,
  whatever the intervals (#1510, #1660);
- an episode that fired and cleared before any notification reported it is still
  reported, at the next send (#2398: fired and resolved between two ticks);
  each re-fire is a new episode, so fired → resolved → fired is never swallowed;
- alerts that are silenced or inhibited are neither sent nor forgotten: they are
  frozen in the log and told once they are visible again; a route inside one of
  its `mute_time_intervals` sends nothing and sends what is due when the mute ends.

Nothing here reads a clock or does I/O; the same inputs give the same outputs,
notification ids included, so a dispatcher that crashes and recomputes a step
emits the same ids again (they are the idempotency keys receivers see).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from ._config import AlertingConfig
from ._inhibition import Inhibitor
from ._model import Alert, AlertStatus, Notification
from ._routing import Route, group_key, group_labels, match_routes
from ._silences import Silence, silenced_by
from ._state import (
    AlertChanged,
    AlertRecord,
    EngineState,
    Event,
    GroupId,
    GroupState,
    SilenceChanged,
)
from ._time_intervals import mute_end_ns, muted


@dataclass(frozen=True, slots=True)
class Step:
    state: EngineState
    notifications: list[Notification]
    next_wakeup_ns: int | None
    """When to call `step` again with a `Tick` if nothing else happens first."""


def notification_id(receiver: str, group_key: str, created_at_ns: int, seq: int) -> str:
    """32 hex digits from the receiver, the group (and its incarnation) and the sequence number.

    The incarnation (when the group's record was created) keeps a group that
    cleared and came back from reusing the ids of its earlier life, which
    receivers would drop as duplicates.
    """
    text = f"{receiver}\x00{group_key}\x00{created_at_ns}\x00{seq}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def step(
    config: AlertingConfig,
    state: EngineState,
    events: Event | Sequence[Event],
    now_ns: int,
) -> Step:
    """Apply the events at `now_ns`, then decide what each group's receiver must be told."""
    batch = (events,) if not isinstance(events, Sequence) else events
    alerts = dict(state.alerts)
    latest = _latest_episodes(alerts.values())
    silences = dict(state.silences)
    fired: set[str] = set()
    for event in batch:
        if isinstance(event, AlertChanged):
            fired |= _apply_alert(alerts, latest, event.alert)
        elif isinstance(event, SilenceChanged):
            silences[event.silence.id] = event.silence
    silences = {k: s for k, s in silences.items() if not s.expired(now_ns)}
    view = _View(config, alerts, tuple(silences.values()), now_ns, fired)

    groups = dict(state.groups)
    for gid, record in view.membership():
        if gid not in groups and (record.firing or record.key in fired):
            route = view.routes[gid[0]]
            groups[gid] = GroupState(
                route_id=gid[0],
                group_key=gid[1],
                receiver=gid[2],
                group_labels=group_labels(route, record.alert.labels),
                created_at_ns=now_ns,
            )

    notifications: list[Notification] = []
    for gid in sorted(groups):
        updated, sent = _evaluate(view, groups[gid], now_ns)
        if sent is not None:
            notifications.append(sent)
        if updated is None:
            del groups[gid]
        else:
            groups[gid] = updated

    referenced = {k for g in groups.values() for k in (*g.notified, *g.owed)}
    alerts = {k: r for k, r in alerts.items() if r.firing or k in referenced}
    new_state = EngineState(alerts=alerts, silences=silences, groups=groups)
    wakeups = [g.next_flush_ns for g in groups.values() if g.next_flush_ns is not None]
    wakeups += [s.ends_at_ns for s in silences.values() if s.active(now_ns)]
    return Step(new_state, notifications, min(wakeups) if wakeups else None)


def _latest_episodes(records: Iterable[AlertRecord]) -> dict[str, AlertRecord]:
    """The newest episode of each alert, by fingerprint (computed once per step)."""
    latest: dict[str, AlertRecord] = {}
    for record in records:
        fp = record.alert.fingerprint
        if fp not in latest or record.episode > latest[fp].episode:
            latest[fp] = record
    return latest


def _apply_alert(
    alerts: dict[str, AlertRecord], latest: dict[str, AlertRecord], alert: Alert
) -> set[str]:
    """Update the records (and the `latest` index) in place; returns the key of an
    episode that began, if one did."""
    fp = alert.fingerprint
    current = latest.get(fp)
    if alert.ends_at_ns is None:
        if current is not None and current.firing:
            kept = replace(alert, starts_at_ns=current.alert.starts_at_ns)
            alerts[current.key] = latest[fp] = replace(current, alert=kept)
        else:
            record = AlertRecord(alert, current.episode + 1 if current else 1)
            alerts[record.key] = latest[fp] = record
            return {record.key}
    elif current is not None and current.firing:
        ends = max(alert.ends_at_ns, current.alert.starts_at_ns)
        resolved = replace(alert, starts_at_ns=current.alert.starts_at_ns, ends_at_ns=ends)
        alerts[current.key] = latest[fp] = replace(current, alert=resolved)
    # A resolve of an alert never seen firing has nothing to clear.
    return set()


class _View:
    """The config and alerts as seen at `now_ns`: routes, groups, what is silenced or inhibited."""

    def __init__(
        self,
        config: AlertingConfig,
        alerts: dict[str, AlertRecord],
        silences: tuple[Silence, ...],
        now_ns: int,
        fired: set[str],
    ) -> None:
        self.config = config
        self.fired = fired
        """Episodes that began in this step: they fired now even if they have cleared since."""
        self.alerts = alerts
        self.now_ns = now_ns
        self.routes: dict[str, Route] = {r.id: r for r in config.root.walk()}
        self._inhibitor = Inhibitor(config.inhibit_rules, (r.alert for r in alerts.values()))
        self._silences = silences
        self._members: dict[GroupId, list[AlertRecord]] = {}
        self._visible: dict[str, bool] = {}
        for key in sorted(alerts):
            record = alerts[key]
            labels = record.alert.labels
            self._visible[key] = (
                silenced_by(silences, labels, now_ns) is None
                and self._inhibitor.inhibited_by(labels) is None
            )
            for route in match_routes(config.root, labels):
                gid = (route.id, group_key(route, group_labels(route, labels)), route.receiver)
                self._members.setdefault(gid, []).append(record)

    def membership(self) -> Iterable[tuple[GroupId, AlertRecord]]:
        for gid in sorted(self._members):
            for record in self._members[gid]:
                yield gid, record

    def members(self, gid: GroupId) -> list[AlertRecord]:
        return self._members.get(gid, [])

    def visible(self, record: AlertRecord) -> bool:
        return self._visible[record.key]


def _evaluate(
    view: _View, group: GroupState, now_ns: int
) -> tuple[GroupState | None, Notification | None]:
    """One group's decision at `now_ns`: its new state (None: over) and what to send."""
    route = view.routes.get(group.route_id)
    if route is None or route.receiver != group.receiver:
        return None, None  # the configuration no longer has this route
    intervals = view.config.intervals(route.mute_time_intervals)
    route_muted = muted(intervals, now_ns)
    send_resolved = view.config.receiver(group.receiver).send_resolved
    members = {r.key: r for r in view.members(group.id)}
    visible = {k: r for k, r in members.items() if view.visible(r)}

    notified = {k for k in group.notified if k in members}
    owed = {k for k in group.owed if k in members}
    firing = {k: r for k, r in visible.items() if r.firing}
    if not route_muted:
        owed |= {k for k in visible if k not in notified and (k in firing or k in view.fired)}
    if not send_resolved:
        # The receiver does not want resolves: forget them without a word.
        notified -= {k for k, r in visible.items() if not r.firing}
    resolved = {k: r for k, r in visible.items() if not r.firing and (k in notified or k in owed)}
    news = [k for k in firing if k not in notified] + list(resolved)
    urgent = any(k in notified for k in resolved)

    pending_since = None
    if news:
        pending_since = now_ns if group.pending_since_ns is None else group.pending_since_ns
    due = _due(route, group, pending_since, urgent, bool(firing), now_ns)
    sent: Notification | None = None
    seq, last_sent = group.seq, group.last_sent_ns
    if due is not None and due <= now_ns:
        if route_muted:
            due = mute_end_ns(intervals, now_ns)
        else:
            seq += 1
            sent = _notification(view, group, seq, [*firing.values(), *resolved.values()])
            frozen = {k for k in notified if k not in visible}
            notified = set(firing) | frozen
            owed -= set(firing) | set(resolved)
            last_sent, pending_since = now_ns, None
            due = now_ns + route.repeat_interval_ns if firing else None

    still_firing = any(r.firing for r in members.values())
    if not still_firing and not notified and not owed:
        return None, sent
    updated = replace(
        group,
        seq=seq,
        last_sent_ns=last_sent,
        pending_since_ns=pending_since,
        next_flush_ns=due,
        notified=tuple(sorted(notified)),
        owed=tuple(sorted(owed)),
    )
    return updated, sent


def _due(
    route: Route,
    group: GroupState,
    pending_since: int | None,
    urgent: bool,
    firing: bool,
    now_ns: int,
) -> int | None:
    if pending_since is not None:
        if urgent:
            return now_ns
        if group.last_sent_ns is None:
            return pending_since + route.group_wait_ns
        return max(pending_since, group.last_sent_ns + route.group_interval_ns)
    if firing and group.last_sent_ns is not None:
        return group.last_sent_ns + route.repeat_interval_ns
    return None


def _notification(
    view: _View, group: GroupState, seq: int, records: list[AlertRecord]
) -> Notification:
    alerts = tuple(r.alert for r in sorted(records, key=lambda r: (r.alert.fingerprint, r.episode)))
    status = (
        AlertStatus.FIRING
        if any(a.status is AlertStatus.FIRING for a in alerts)
        else AlertStatus.RESOLVED
    )
    common = dict(alerts[0].labels) if alerts else {}
    for alert in alerts[1:]:
        common = {k: v for k, v in common.items() if alert.labels.get(k) == v}
    return Notification(
        id=notification_id(group.receiver, group.group_key, group.created_at_ns, seq),
        receiver=group.receiver,
        group_key=group.group_key,
        status=status,
        group_labels=dict(group.group_labels),
        common_labels=common,
        alerts=alerts,
        created_at_ns=view.now_ns,
        dashboard_url=view.config.external_url,
    )
