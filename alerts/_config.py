"""The alerting configuration: rules, routing tree, inhibitions, time intervals, receivers.

Read from YAML and validated with pydantic once, at start. Every error names the
line of the offending key in the file: pydantic says *where* in the document
(`route.routes[1].group_wait`), and the YAML node tree (composed alongside the
data) says on which line that key sits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from ._fields import MatcherField
from ._receiver_config import ReceiverConfig
from ._routing import Route, RouteConfig, build_route
from ._rules import Rule
from ._time_intervals import TimeInterval


class InhibitRule(BaseModel):
    """While an alert matching `source_matchers` fires, alerts matching `target_matchers`
    that agree with it on every `equal` label are not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_matchers: tuple[MatcherField, ...] = Field(min_length=1)
    target_matchers: tuple[MatcherField, ...] = Field(min_length=1)
    equal: tuple[str, ...] = ()


class AlertingConfig(BaseModel):
    """The whole alerting section; `root` is the routing tree with inheritance resolved."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: tuple[Rule, ...] = ()
    route: RouteConfig
    receivers: tuple[ReceiverConfig, ...] = Field(min_length=1)
    inhibit_rules: tuple[InhibitRule, ...] = ()
    time_intervals: tuple[TimeInterval, ...] = ()
    external_url: str | None = None
    """Base of dashboard links in notifications."""

    _root: Route = PrivateAttr()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> AlertingConfig:
        problems = _cross_reference_problems(self)
        collected = info.context.get("problems") if isinstance(info.context, dict) else None
        if collected is not None:
            collected.extend(problems)
        elif problems:
            raise ValueError("; ".join(message for _, message in problems))
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._root = build_route(self.route)

    @property
    def root(self) -> Route:
        return self._root

    def receiver(self, name: str) -> ReceiverConfig:
        return next(r for r in self.receivers if r.name == name)

    def intervals(self, names: tuple[str, ...]) -> tuple[TimeInterval, ...]:
        return tuple(t for t in self.time_intervals if t.name in names)


Loc = tuple[str | int, ...]


def _route_loc(route_id: str) -> Loc:
    loc: Loc = ("route",)
    for index in route_id.split(".")[1:]:
        loc += ("routes", int(index))
    return loc


def _cross_reference_problems(config: AlertingConfig) -> list[tuple[Loc, str]]:
    """Names that must be unique or must exist, each with where it was written."""
    problems: list[tuple[Loc, str]] = []
    if not config.route.receiver:
        problems.append((("route",), "the root route needs a receiver"))
    if config.route.matchers:
        problems.append((("route", "matchers"), "the root route matches every alert: no matchers"))
    for section, items in (
        ("receivers", config.receivers),
        ("time_intervals", config.time_intervals),
        ("rules", config.rules),
    ):
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item.name in seen:
                problems.append(((section, i, "name"), f"name {item.name!r} is used twice"))
            seen.add(item.name)
    receivers = {r.name for r in config.receivers}
    intervals = {t.name for t in config.time_intervals}
    for route in build_route(config.route).walk():
        loc = _route_loc(route.id)
        if route.receiver and route.receiver not in receivers:
            problems.append((loc + ("receiver",), f"unknown receiver {route.receiver!r}"))
        for i, name in enumerate(route.mute_time_intervals):
            if name not in intervals:
                problems.append(
                    (loc + ("mute_time_intervals", i), f"unknown time interval {name!r}")
                )
    return problems


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    line: int | None
    """1-based line in the file; None when the problem is not tied to one key."""
    path: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.path or '(top)'}: {self.message}"


class ConfigError(ValueError):
    """The configuration is invalid; `problems` lists each one with its line."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {source}:{p}" for p in problems)
        super().__init__(f"invalid alerting configuration {source}:\n{lines}")


def load_config(text: str, source: str = "<alerting config>") -> AlertingConfig:
    """Parse and validate YAML text (the caller reads the file; this does no I/O)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = ConfigProblem(line, "", f"not valid YAML: {exc.problem}")
        raise ConfigError(source, [problem]) from None
    if not isinstance(data, Mapping):
        raise ConfigError(source, [ConfigProblem(1, "", "expected a mapping at the top")])
    references: list[tuple[Loc, str]] = []
    try:
        config = AlertingConfig.model_validate(data, context={"problems": references})
    except ValidationError as exc:
        problems = [
            ConfigProblem(_line_of(node, err["loc"]), _dotted(err["loc"]), _message(err))
            for err in exc.errors(include_url=False)
        ]
        raise ConfigError(source, problems) from None
    if references:
        problems = [ConfigProblem(_line_of(node, loc), _dotted(loc), m) for loc, m in references]
        raise ConfigError(source, problems)
    return config


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest key of `loc` found in the YAML node tree.

    Parts that are not in the document (a union's tag such as `slack`, a
    `[key]` of a dict) are skipped, so a discriminated receiver still finds its key.
    """
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line, node = key.start_mark.line + 1, value
                    break
        elif (
            isinstance(node, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
    return line


EXAMPLE_CONFIG = """\
# Which findings alert, and at which severity (first matching rule wins).
rules:
  - name: performance
    matchers: ['kind=~"latency_regression|error_rate_regression"']
    severity: critical
  - name: drift
    matchers: ['kind=~".*drift"', 'environment!="staging"']
    labels: {team: ml}

route:
  receiver: slack-ml
  group_by: [model, kind]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: ['severity="critical"']
      receiver: pagerduty-oncall
      continue: true
    - matchers: ['model=~"fraud|churn"']
      receiver: risk-webhook
      mute_time_intervals: [weekends]

inhibit_rules:
  # No traffic from a model mutes its drift alerts.
  - source_matchers: ['kind="throughput_change"']
    target_matchers: ['kind=~".*drift"']
    equal: [model, version]

time_intervals:
  - name: weekends
    time_intervals:
      - weekdays: ['saturday:sunday']

receivers:
  - name: slack-ml
    type: slack
    webhook_url_file: /run/secrets/slack_webhook_url
  - name: pagerduty-oncall
    type: pagerduty
    routing_key_file: /run/secrets/pagerduty_routing_key
  - name: risk-webhook
    type: webhook
    url: https://risk.example.com/hooks/inferloop
    secret_file: /run/secrets/risk_webhook_secret
  - name: ml-email
    type: email
    to: [ml-oncall@example.com]
    from: inferloop@example.com
    smarthost: smtp.example.com:587
    auth_username: inferloop
    auth_password_file: /run/secrets/smtp_password
"""
"""A complete configuration, as the README shows it (it loads: a test keeps it so)."""
