"""Alerting rules: which findings page someone, and at which severity.

A finding row becomes a label set (model, version, environment, kind, subject,
severity, and feature for drift and data-quality kinds); the first rule whose
matchers all match decides: the finding alerts, with the rule's severity
override and extra labels. No rule matching means no alert. Pending findings
(not yet confirmed) and dismissed ones never alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ._fields import MatcherField
from ._matchers import matches_all
from ._model import Alert

logger = logging.getLogger(__name__)

FEATURE_KINDS = frozenset({"data_drift", "prediction_drift", "embedding_drift", "data_quality"})
"""Finding kinds whose subject names a feature (a data-quality subject is `column:check`)."""

Severity = Literal["info", "warning", "critical"]


class Rule(BaseModel):
    """One rule: `matchers` over the finding's labels; `severity` overrides the finding's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    matchers: tuple[MatcherField, ...] = ()
    severity: Severity | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels for routing, e.g. `team: risk`."""

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all(self.matchers, labels)


EVERY_FINDING = Rule(name="every-finding")
"""The rule in force when a config lists none: each open finding alerts at its severity."""


def effective_rules(
    stored: Iterable[Mapping[str, Any]], file_rules: Sequence[Rule]
) -> tuple[Rule, ...]:
    """The rules in force: those added through the API (oldest first), then the file's,
    or `EVERY_FINDING` when the file lists none (so a rule added to override one kind
    does not mute the rest). A stored rule that no longer validates is skipped, with a
    warning, rather than stopping every alert."""
    from_api = []
    for data in stored:
        try:
            from_api.append(Rule.model_validate(data))
        except ValueError as error:
            logger.warning("stored alert rule %r is invalid, skipped: %s", data.get("name"), error)
    return (*from_api, *(file_rules or (EVERY_FINDING,)))


def finding_labels(finding: Mapping[str, Any]) -> dict[str, str]:
    """The label set of a finding row (labels with no value are left out)."""
    kind = str(finding["kind"])
    subject = str(finding.get("subject") or "")
    labels = {
        "model": finding.get("model"),
        "version": finding.get("version"),
        "environment": finding.get("environment"),
        "kind": kind,
        "subject": subject,
        "severity": finding.get("severity"),
    }
    if kind in FEATURE_KINDS and subject:
        evidence = finding.get("evidence") or {}
        feature = evidence.get("feature") if isinstance(evidence, Mapping) else None
        labels["feature"] = str(feature or subject.split(":", 1)[0])
    return {k: str(v) for k, v in labels.items() if v not in (None, "")}


def alert_from_finding(rules: Iterable[Rule], finding: Mapping[str, Any]) -> Alert | None:
    """The alert a finding row raises under these rules, firing or resolved; None if none."""
    status = str(finding.get("status") or "open")
    if status in ("pending", "dismissed"):
        return None
    labels = finding_labels(finding)
    rules = tuple(rules) or (EVERY_FINDING,)  # no rules written: every finding alerts
    rule = next((r for r in rules if r.matches(labels)), None)
    if rule is None:
        return None
    labels = {**labels, **rule.labels}
    if rule.severity is not None:
        labels["severity"] = rule.severity
    starts = int(finding.get("opened_at_ns") or 0)
    ends: int | None = None
    if status == "resolved":
        resolved_at = finding.get("resolved_at_ns")
        ends = int(resolved_at) if resolved_at is not None else starts
    annotations = {
        "title": finding.get("title") or "",
        "evidence": finding.get("evidence") or {},
        "finding_id": finding.get("id"),
        "rule": rule.name,
    }
    return Alert(labels=labels, annotations=annotations, starts_at_ns=starts, ends_at_ns=ends)
