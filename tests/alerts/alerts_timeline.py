"""A virtual-time harness for the alerting core: push events at instants, read what was sent.

Time is an integer number of seconds since the start of the scenario; every
wake-up the engine asks for is honoured exactly, so expectations are exact
instants (zero tolerance), not windows.
"""

from __future__ import annotations

from dataclasses import dataclass

from inferloop.alerts._config import AlertingConfig, load_config
from inferloop.alerts._engine import step
from inferloop.alerts._model import Alert, Notification
from inferloop.alerts._silences import Silence, new_silence
from inferloop.alerts._state import AlertChanged, EngineState, Event, SilenceChanged, Tick

S = 1_000_000_000
MONDAY = 4 * 86_400 * S
"""1970-01-05, a Monday at 00:00 UTC: scenarios that care about weekdays start here."""


def webhook_config(body: str, receivers: tuple[str, ...] = ("team",), **extra: str) -> str:
    """A config with `body` (route, inhibit rules…) and one webhook receiver per name."""
    lines = [body.rstrip(), "receivers:"]
    for name in receivers:
        lines += [
            f"  - name: {name}",
            "    type: webhook",
            f"    url: https://{name}.example.com/hook",
            "    secret: whsec_dGVzdA==",
        ]
        lines += [f"    {k}: {v}" for k, v in extra.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Sent:
    at: int
    """Seconds since the start."""
    receiver: str
    status: str
    firing: tuple[str, ...]
    resolved: tuple[str, ...]
    notification: Notification


def _names(alerts: tuple[Alert, ...]) -> tuple[str, ...]:
    return tuple(sorted(a.labels.get("alertname", a.fingerprint) for a in alerts))


class Timeline:
    """Push events at virtual instants; every wake-up in between is run at its exact time."""

    def __init__(self, config: AlertingConfig | str, start_ns: int = 0) -> None:
        self.config = load_config(config) if isinstance(config, str) else config
        self.start_ns = start_ns
        self.state = EngineState()
        self.now_ns = start_ns
        self.wakeup_ns: int | None = None
        self.sent: list[Sent] = []
        self.steps = 0

    def _step(self, events: list[Event], now_ns: int) -> None:
        result = step(self.config, self.state, events, now_ns)
        self.steps += 1
        # The state survives a round trip through JSON-able dicts at every step.
        self.state = EngineState.from_dict(result.state.to_dict())
        self.now_ns = now_ns
        self.wakeup_ns = result.next_wakeup_ns
        for n in result.notifications:
            at = (now_ns - self.start_ns) // S
            self.sent.append(
                Sent(at, n.receiver, n.status, _names(n.firing), _names(n.resolved), n)
            )

    def advance(self, t: float) -> None:
        """Run every wake-up up to and including second `t`."""
        target = self.start_ns + round(t * S)
        while self.wakeup_ns is not None and self.wakeup_ns <= target:
            self._step([Tick()], max(self.wakeup_ns, self.now_ns))
        self.now_ns = max(self.now_ns, target)

    def push(self, t: float, *events: Event) -> None:
        self.advance(t)
        self._step(list(events), self.start_ns + round(t * S))

    def fire(self, t: float, name: str, **labels: str) -> None:
        alert = Alert({"alertname": name, **labels}, {"title": name}, self._ns(t))
        self.push(t, AlertChanged(alert))

    def resolve(self, t: float, name: str, **labels: str) -> None:
        alert = Alert({"alertname": name, **labels}, {"title": name}, 0, self._ns(t))
        self.push(t, AlertChanged(alert))

    def silence(
        self, t: float, matchers: str, until: float, *, starts: float | None = None
    ) -> Silence:
        start = self._ns(t if starts is None else starts)
        silence = new_silence(matchers, starts_at_ns=start, ends_at_ns=self._ns(until))
        self.push(t, SilenceChanged(silence))
        return silence

    def _ns(self, t: float) -> int:
        return self.start_ns + round(t * S)

    def summary(
        self, receiver: str | None = None
    ) -> list[tuple[int, str, tuple[str, ...], tuple[str, ...]]]:
        """(second, status, firing names, resolved names) per notification, in order."""
        return [
            (s.at, s.status, s.firing, s.resolved)
            for s in self.sent
            if receiver is None or s.receiver == receiver
        ]
