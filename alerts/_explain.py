"""The route tester: which receivers a label set reaches, and what would stop it now.

Answers "`inferloop alerts route model=fraud severity=critical`": every route the
labels reach in tree order, with its receiver and group, and for each the
silence, the inhibition or the mute time interval that would keep it quiet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ._config import AlertingConfig
from ._inhibition import Inhibition, Inhibitor
from ._model import Alert
from ._routing import group_key, group_labels, match_routes
from ._silences import Silence, silenced_by


@dataclass(frozen=True, slots=True)
class RouteReach:
    route_id: str
    receiver: str
    group_key: str
    group_labels: dict[str, str]
    silenced_by: Silence | None
    inhibited_by: Inhibition | None
    muted_by: tuple[str, ...]
    """Names of the route's mute time intervals in force now."""

    @property
    def delivered(self) -> bool:
        return self.silenced_by is None and self.inhibited_by is None and not self.muted_by


def explain(
    config: AlertingConfig,
    labels: Mapping[str, str],
    silences: Iterable[Silence],
    active_alerts: Iterable[Alert],
    now_ns: int,
) -> list[RouteReach]:
    """One entry per route the labels reach; `delivered` says whether it would be sent now."""
    labels = dict(labels)
    silence = silenced_by(tuple(silences), labels, now_ns)
    inhibition = Inhibitor(config.inhibit_rules, active_alerts).inhibited_by(labels)
    reach = []
    for route in match_routes(config.root, labels):
        group = group_labels(route, labels)
        intervals = config.intervals(route.mute_time_intervals)
        reach.append(
            RouteReach(
                route_id=route.id,
                receiver=route.receiver,
                group_key=group_key(route, group),
                group_labels=group,
                silenced_by=silence,
                inhibited_by=inhibition,
                muted_by=tuple(i.name for i in intervals if i.contains(now_ns)),
            )
        )
    return reach
