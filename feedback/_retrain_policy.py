"""When a model should be retrained: the policy, as a pure function of what the store holds.

A retrain is asked for when an open finding matches the policy (its kind one of the
patterns, its severity at least the minimum) and has not already been named by an
earlier retrain request, the model's last retrain request is at least `cooldown_s` old,
and the data has gained at least `min_new_labels` labeled rows since that request's
label cutoff. Each check that fails says why, so "why was no retrain asked for?" has an
answer in words and numbers. The oldest such finding is the decision's trigger (its id
is the request's identity); every matching finding not yet covered is carried as evidence.

A finding already named by a request never triggers again, however long it stays open:
the retrained version is what should clear it, and until it does another request would
only repeat the first. A manual request counts for the cooldown like any other.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inferloop.store.vocabulary import FindingStatus, Severity

NS = 1_000_000_000
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

NO_FINDING = "no_finding"
COVERED = "covered"
COOLDOWN = "cooldown"
TOO_FEW_LABELS = "too_few_labels"
REQUEST = "request"


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """Which findings ask for a retrain, and how much new data and time it needs.

    `kinds`: shell-style patterns over the finding kind (`fnmatch`); `min_severity`: the
    least severity that counts (the analyzer rates dataset drift and a quality drop
    critical, a single feature's drift a warning); `min_new_labels`: labeled rows gained
    since the last request's cutoff; `cooldown_s`: the least time between two requests of
    one model; `snapshot_window_s`: how far back the exported snapshot reaches.
    """

    kinds: tuple[str, ...] = ("*drift", "quality_drop")
    min_severity: Severity = Severity.CRITICAL
    min_new_labels: int = 500
    cooldown_s: float = 86_400.0
    snapshot_window_s: float = 30 * 86_400.0

    def __post_init__(self) -> None:
        if isinstance(self.kinds, str) or not self.kinds or not all(self.kinds):
            raise ValueError("kinds is a non-empty tuple of patterns, e.g. ('*drift',)")
        object.__setattr__(self, "kinds", tuple(self.kinds))
        object.__setattr__(self, "min_severity", Severity(self.min_severity))
        if self.min_new_labels < 0:
            raise ValueError(f"min_new_labels must be >= 0, not {self.min_new_labels}")
        if self.cooldown_s < 0:
            raise ValueError(f"cooldown_s must be >= 0, not {self.cooldown_s}")
        if self.snapshot_window_s <= 0:
            raise ValueError(f"snapshot_window_s must be > 0, not {self.snapshot_window_s}")

    def matches(self, finding: Mapping[str, Any]) -> bool:
        """An open finding of a listed kind at or above the minimum severity."""
        if str(finding.get("status")) != FindingStatus.OPEN:
            return False
        kind = str(finding.get("kind") or "")
        if not any(fnmatch.fnmatchcase(kind, pattern) for pattern in self.kinds):
            return False
        rank = SEVERITY_RANK.get(str(finding.get("severity")), -1)  # type: ignore[call-overload]
        return rank >= SEVERITY_RANK[self.min_severity]

    def evaluate(
        self,
        findings: Sequence[Mapping[str, Any]],
        *,
        covered: Collection[int],
        last_request_ns: int | None,
        now_ns: int,
        new_labeled_rows: Callable[[], int],
    ) -> RetrainVerdict:
        """Decide for one model. `covered`: finding ids earlier requests named;
        `last_request_ns`: when the last request was made (None: never);
        `new_labeled_rows` is called only once every cheaper check has passed."""
        matching = sorted((f for f in findings if self.matches(f)), key=lambda f: int(f["id"]))
        if not matching:
            return RetrainVerdict(NO_FINDING, "no open finding matches the retrain policy")
        fresh = [f for f in matching if int(f["id"]) not in covered]
        if not fresh:
            ids = ", ".join(str(f["id"]) for f in matching)
            return RetrainVerdict(COVERED, f"finding(s) {ids} already have a retrain request")
        ids = tuple(int(f["id"]) for f in fresh)
        if last_request_ns is not None:
            left_ns = last_request_ns + int(self.cooldown_s * NS) - now_ns
            if left_ns > 0:
                return RetrainVerdict(
                    COOLDOWN,
                    f"cooldown: the last retrain request was {(now_ns - last_request_ns) / NS:g}"
                    f" s ago, the policy waits {self.cooldown_s:g} s",
                    finding_ids=ids,
                    cooldown_left_s=left_ns / NS,
                )
        gained = int(new_labeled_rows())
        if gained < self.min_new_labels:
            return RetrainVerdict(
                TOO_FEW_LABELS,
                f"{gained} new labeled rows since the last retrain request; "
                f"the policy needs {self.min_new_labels}",
                finding_ids=ids,
                new_labeled_rows=gained,
            )
        trigger = fresh[0]
        return RetrainVerdict(
            REQUEST,
            f"{trigger['severity']} {trigger['kind']} ({trigger['subject']}) and {gained} new "
            "labeled rows since the last retrain request",
            finding_ids=ids,
            trigger_finding_id=ids[0],
            new_labeled_rows=gained,
            evidence=tuple(finding_evidence(f) for f in fresh),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "min_severity": str(self.min_severity),
            "min_new_labels": self.min_new_labels,
            "cooldown_s": self.cooldown_s,
            "snapshot_window_s": self.snapshot_window_s,
        }


@dataclass(frozen=True, slots=True)
class RetrainVerdict:
    """The policy's answer for one model: `action` is one of the module's constants
    (`request` when a retrain is due) and `reason` says why in words."""

    action: str
    reason: str
    finding_ids: tuple[int, ...] = ()
    trigger_finding_id: int | None = None
    new_labeled_rows: int | None = None
    cooldown_left_s: float | None = None
    evidence: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    @property
    def requested(self) -> bool:
        return self.action == REQUEST


def finding_evidence(finding: Mapping[str, Any]) -> dict[str, Any]:
    """What a retrain request carries of a finding: enough to read it without the store."""
    return {
        "id": int(finding["id"]),
        "kind": finding.get("kind"),
        "subject": finding.get("subject"),
        "severity": finding.get("severity"),
        "version": finding.get("version"),
        "title": finding.get("title"),
        "opened_at_ns": finding.get("opened_at_ns"),
        "evidence": finding.get("evidence") or {},
    }
