"""The route tester against the store: the silences and firing alerts the evaluator would see.

`explain` is pure; this reads its inputs the way `AlertEvaluator` does (the
silences not yet over, the alerts of the open findings under the config's
rules), so the answer says what would happen to the label set right now.
"""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa

from inferloop.store.alert_rules import list_rules
from inferloop.store.alert_state import list_silences
from inferloop.store.findings import list_findings
from inferloop.store.vocabulary import FindingStatus

from ._config import AlertingConfig
from ._explain import RouteReach, explain
from ._rules import alert_from_finding, effective_rules
from ._silences import Silence


def explain_now(
    connection: sa.Connection, config: AlertingConfig, labels: Mapping[str, str], now_ns: int
) -> list[RouteReach]:
    """`explain` with the stored silences and the alerts of the open findings as inputs."""
    silences = [Silence.from_dict(s) for s in list_silences(connection, unexpired_at_ns=now_ns)]
    firing = []
    rules = effective_rules(list_rules(connection), config.rules)
    for row in list_findings(connection, statuses=[FindingStatus.OPEN]):
        alert = alert_from_finding(rules, row._mapping)
        if alert is not None and alert.ends_at_ns is None:
            firing.append(alert)
    return explain(config, labels, silences, firing, now_ns)
