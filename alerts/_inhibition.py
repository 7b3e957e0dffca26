"""Inhibition: a firing source alert keeps matching target alerts from being sent.

Alertmanager's rule: the source must be firing; source and target must agree on
every `equal` label (absent counts as empty on both sides); an alert never
inhibits itself, and an alert matching both sides of a rule is not inhibited by
another alert that also matches both (so a rule cannot mute a whole group of peers).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._config import InhibitRule
from ._matchers import matches_all
from ._model import Alert, label_fingerprint


@dataclass(frozen=True, slots=True)
class Inhibition:
    rule_index: int
    source: Alert


class Inhibitor:
    """The inhibition rules applied to one set of firing alerts, indexed for fast lookups.

    Sources are grouped per rule by their `equal` label values, so asking about
    one alert costs a dict lookup per rule rather than a scan of every alert.
    """

    def __init__(self, rules: Iterable[InhibitRule], alerts: Iterable[Alert]) -> None:
        self.rules = tuple(rules)
        firing = [a for a in alerts if a.ends_at_ns is None]
        self._sources: list[dict[tuple[str, ...], list[Alert]]] = []
        for rule in self.rules:
            index: dict[tuple[str, ...], list[Alert]] = {}
            for alert in firing:
                if matches_all(rule.source_matchers, alert.labels):
                    key = tuple(alert.labels.get(n, "") for n in rule.equal)
                    index.setdefault(key, []).append(alert)
            self._sources.append(index)

    def inhibited_by(self, labels: Mapping[str, str]) -> Inhibition | None:
        """The first (rule, firing source) that inhibits an alert with `labels`, if any."""
        own = label_fingerprint(dict(labels))
        for index, rule in enumerate(self.rules):
            if not matches_all(rule.target_matchers, labels):
                continue
            two_sided = matches_all(rule.source_matchers, labels)
            key = tuple(labels.get(n, "") for n in rule.equal)
            for source in self._sources[index].get(key, ()):
                if source.fingerprint == own:
                    continue
                if two_sided and matches_all(rule.target_matchers, source.labels):
                    continue
                return Inhibition(index, source)
        return None


def inhibited_by(
    rules: Iterable[InhibitRule], labels: Mapping[str, str], alerts: Iterable[Alert]
) -> Inhibition | None:
    """The first (rule, firing source among `alerts`) that inhibits `labels`, if any."""
    return Inhibitor(rules, alerts).inhibited_by(labels)
