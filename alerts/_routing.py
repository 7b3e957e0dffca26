"""The routing tree, in Alertmanager's model: which routes (receivers) an alert reaches.

An alert enters at the root, which matches everything. At each node the children
are tried in order; an alert goes down into the first child that matches and
stops there unless that child says `continue`, in which case the next siblings
are tried as well. A node none of whose children take the alert is a match
itself. `group_by`, the three intervals and the receiver are inherited by
children that do not set them; Alertmanager's defaults are 30s, 5m and 4h.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ._fields import DurationNs, MatcherField
from ._matchers import Matcher, matches_all

GROUP_WAIT_NS = 30 * 1_000_000_000
GROUP_INTERVAL_NS = 5 * 60 * 1_000_000_000
REPEAT_INTERVAL_NS = 4 * 3600 * 1_000_000_000
ALL_LABELS = "..."
"""`group_by: ['...']` groups by every label: one group per alert."""


class RouteConfig(BaseModel):
    """One node of the routing tree as written in the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    receiver: str | None = None
    matchers: tuple[MatcherField, ...] = ()
    continue_: bool = Field(False, alias="continue")
    group_by: tuple[str, ...] | None = None
    group_wait: DurationNs | None = None
    group_interval: DurationNs | None = None
    repeat_interval: DurationNs | None = None
    mute_time_intervals: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class Route:
    """A node of the tree with everything inherited filled in."""

    id: str
    """`root`, `root.0`, `root.0.1`: the path of child indices, stable for a given config."""
    receiver: str
    matchers: tuple[Matcher, ...]
    continue_: bool
    group_by: tuple[str, ...] | None
    """Labels that make a group; None for `...` (all labels)."""
    group_wait_ns: int
    group_interval_ns: int
    repeat_interval_ns: int
    mute_time_intervals: tuple[str, ...]
    routes: tuple[Route, ...]

    def walk(self) -> list[Route]:
        """This node and all below it, depth first."""
        return [self, *(r for child in self.routes for r in child.walk())]


def build_route(config: RouteConfig, parent: Route | None = None, route_id: str = "root") -> Route:
    """Resolve inheritance down the tree (the root's own defaults are Alertmanager's)."""
    group_by: tuple[str, ...] | None
    if config.group_by is None:
        group_by = parent.group_by if parent else ()
    else:
        group_by = None if ALL_LABELS in config.group_by else tuple(sorted(set(config.group_by)))

    def pick(own: int | None, inherited: int | None, default: int) -> int:
        return own if own is not None else inherited if inherited is not None else default

    node = Route(
        id=route_id,
        receiver=config.receiver or (parent.receiver if parent else ""),
        matchers=tuple(config.matchers),
        continue_=config.continue_,
        group_by=group_by,
        group_wait_ns=pick(config.group_wait, parent and parent.group_wait_ns, GROUP_WAIT_NS),
        group_interval_ns=pick(
            config.group_interval, parent and parent.group_interval_ns, GROUP_INTERVAL_NS
        ),
        repeat_interval_ns=pick(
            config.repeat_interval, parent and parent.repeat_interval_ns, REPEAT_INTERVAL_NS
        ),
        mute_time_intervals=config.mute_time_intervals,
        routes=(),
    )
    children = tuple(
        build_route(child, node, f"{route_id}.{i}") for i, child in enumerate(config.routes)
    )
    return Route(**{**_fields(node), "routes": children})


def _fields(route: Route) -> dict[str, Any]:
    return {name: getattr(route, name) for name in Route.__slots__}


def match_routes(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """The routes an alert with these labels is delivered through, in tree order."""
    return _match(root, labels) if matches_all(root.matchers, labels) else []


def _match(node: Route, labels: Mapping[str, str]) -> list[Route]:
    found: list[Route] = []
    for child in node.routes:
        if not matches_all(child.matchers, labels):
            continue
        found.extend(_match(child, labels))
        if not child.continue_:
            break
    return found or [node]


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    """The labels that name the alert's group on this route (only those the alert has)."""
    if route.group_by is None:
        return dict(sorted(labels.items()))
    return {name: labels[name] for name in route.group_by if name in labels}


def group_key(route: Route, group: Mapping[str, str]) -> str:
    """`root.1:{model="fraud",severity="critical"}`: stable for the life of the group."""
    body = ",".join(f"{k}={_quote(v)}" for k, v in sorted(group.items()))
    return f"{route.id}:{{{body}}}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
