"""Properties of the alerting core on random streams of fires, resolves, silences and ticks.

An oracle replays the same stream in a few lines (what fires, what is silenced,
inhibited or muted at each instant) and checks the engine against it:

- nothing is ever sent about an alert while it is silenced, inhibited or muted;
- every firing episode that was visible at some step while it fired is reported
  in at least one notification (once it is visible again, if it was muted before
  its turn came);
- once the stream ends and every silence and mute is over, the last state each
  receiver was told about each alert equals the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from alerts_timeline import MONDAY, S, webhook_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferloop.alerts._config import load_config
from inferloop.alerts._engine import step
from inferloop.alerts._model import Alert, Notification, label_fingerprint
from inferloop.alerts._silences import Silence, new_silence
from inferloop.alerts._state import AlertChanged, EngineState, Event, SilenceChanged, Tick

CONFIG = load_config(
    webhook_config(
        """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 24h
  routes:
    - matchers: ['model="b"']
      receiver: risk
      group_by: [alertname, model]
      mute_time_intervals: [weekends]
inhibit_rules:
  - source_matchers: ['alertname="no_traffic"']
    target_matchers: ['alertname="drift"']
    equal: [model]
time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday:sunday']
""",
        receivers=("team", "risk"),
    )
)
NAMES = ("drift", "latency", "no_traffic")
MODELS = ("a", "b", "c")
FRIDAY_NOON = MONDAY - 3 * 86_400 * S + 12 * 3600 * S
DAY = 86_400 * S

operations = st.lists(
    st.tuples(
        # Seconds since the previous operation: often right at an interval's edge.
        st.one_of(st.sampled_from((0, 1, 10, 29, 30, 31, 299, 300, 301)), st.integers(0, 6 * 3600)),
        st.sampled_from(("fire", "fire", "resolve", "silence", "tick")),
        st.sampled_from(NAMES),
        st.sampled_from(MODELS),
        st.integers(60, 12 * 3600),  # a silence's length
    ),
    max_size=30,
)


@dataclass
class Episode:
    labels: dict[str, str]
    start: int
    end: int | None = None
    seen: bool = False
    """Visible (not silenced, inhibited or muted) at some step while firing."""


@dataclass
class World:
    """The oracle: what is true at each instant, computed without the engine."""

    firing: dict[str, Episode] = field(default_factory=dict)
    episodes: list[Episode] = field(default_factory=list)
    silences: list[Silence] = field(default_factory=list)

    def visible(self, labels: dict[str, str], now: int) -> bool:
        if any(s.silences(labels, now) for s in self.silences):
            return False
        if labels["alertname"] == "drift" and any(
            e.labels == {"alertname": "no_traffic", "model": labels["model"]}
            for e in self.firing.values()
        ):
            return False
        weekday = (now // DAY + 3) % 7
        return not (labels["model"] == "b" and weekday >= 5)


class Run:
    def __init__(self) -> None:
        self.state = EngineState()
        self.world = World()
        self.wakeup: int | None = None
        self.now = FRIDAY_NOON
        self.sent: list[tuple[int, Notification]] = []

    def step(self, events: list[Event], now: int) -> None:
        result = step(CONFIG, self.state, events, now)
        self.state = EngineState.from_dict(result.state.to_dict())
        self.wakeup, self.now = result.next_wakeup_ns, now
        for episode in self.world.episodes:
            live = episode.end is None or episode.start == now
            if live and self.world.visible(episode.labels, now):
                episode.seen = True
        for notification in result.notifications:
            for alert in notification.alerts:
                assert self.world.visible(alert.labels, now), (now, notification)
            self.sent.append((now, notification))

    def advance(self, until: int) -> None:
        while self.wakeup is not None and self.wakeup <= until:
            assert self.wakeup >= self.now, "a wake-up in the past"
            self.step([Tick()], self.wakeup)
        self.now = max(self.now, until)

    def apply(self, op: str, name: str, model: str, length: int) -> None:
        labels = {"alertname": name, "model": model}
        fp = label_fingerprint(labels)
        now, events = self.now, []
        if op == "fire":
            events.append(AlertChanged(Alert(labels, starts_at_ns=now)))
            if fp not in self.world.firing:
                episode = Episode(labels, now)
                self.world.firing[fp] = episode
                self.world.episodes.append(episode)
        elif op == "resolve":
            events.append(AlertChanged(Alert(labels, starts_at_ns=0, ends_at_ns=now)))
            if fp in self.world.firing:
                self.world.firing.pop(fp).end = now
        elif op == "silence":
            matchers = f'model="{model}"' if length % 2 else f'alertname="{name}"'
            silence = new_silence(matchers, starts_at_ns=now, ends_at_ns=now + length * S)
            silence = Silence(**{**silence.to_dict(), "matchers": silence.matchers})
            self.world.silences.append(silence)
            events.append(SilenceChanged(silence))
        self.step(events, now)


def _last_told(sent: list[tuple[int, Notification]]) -> dict[tuple[str, str], bool]:
    """(receiver, fingerprint) → whether the last notification mentioning it said firing."""
    told: dict[tuple[str, str], bool] = {}
    for _, notification in sent:
        latest: dict[str, Alert] = {}
        for alert in notification.alerts:
            if (
                alert.fingerprint not in latest
                or alert.starts_at_ns >= latest[alert.fingerprint].starts_at_ns
            ):
                latest[alert.fingerprint] = alert
        for fp, alert in latest.items():
            told[(notification.receiver, fp)] = alert.ends_at_ns is None
    return told


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_random_streams_are_told_truthfully_and_never_while_muted(ops) -> None:
    run = Run()
    for gap, op, name, model, length in ops:
        run.advance(run.now + gap * S)
        run.apply(op, name, model, length)
    end = run.now + 3 * DAY + 3600 * S  # every silence (≤ 12 h) and weekend is over
    run.advance(end)

    reported = {
        (label_fingerprint(a.labels), a.starts_at_ns) for _, n in run.sent for a in n.alerts
    }
    for episode in run.world.episodes:
        # One still inhibited at the end is owed but cannot be told yet.
        if episode.seen and run.world.visible(episode.labels, end):
            assert (label_fingerprint(episode.labels), episode.start) in reported, episode

    told = _last_told(run.sent)
    for (receiver, fp), firing in told.items():
        truth = fp in run.world.firing
        labels = next(e.labels for e in run.world.episodes if label_fingerprint(e.labels) == fp)
        if run.world.visible(labels, end):
            assert firing == truth, (receiver, labels, firing, truth)
    for fp, episode in run.world.firing.items():
        if run.world.visible(episode.labels, end):
            receiver = "risk" if episode.labels["model"] == "b" else "team"
            assert told.get((receiver, fp)) is True, episode
