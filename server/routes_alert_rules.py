"""Alert rules through the API: stored rules are evaluated before the config file's.

GET lists both (API rules first, in evaluation order), PUT adds or replaces a stored
rule, DELETE removes one. The file's rules are changed in the file.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, HTTPException, Response
from pydantic import ValidationError

from inferloop.alerts import ConfigError, Rule, load_config
from inferloop.store.alert_rules import delete_rule, list_rules, save_rule

from .deps import ApiKeyDep, EngineDep, SettingsDep
from .schemas import AlertRuleBody, AlertRuleResponse

router = APIRouter(prefix="/v1/alerts/rules", tags=["alerts"], dependencies=[ApiKeyDep])


def _file_rules(settings) -> list[Rule]:
    path = settings.alerts.config_file
    if path is None:
        return []
    try:
        return list(load_config(path.read_text(), str(path)).rules)
    except (OSError, ConfigError) as error:
        raise HTTPException(409, f"the alerting config cannot be read: {error}") from error


def _response(rule: Rule, source: str) -> AlertRuleResponse:
    return AlertRuleResponse(
        name=rule.name,
        matchers=[str(m) for m in rule.matchers],
        severity=rule.severity,
        labels=dict(rule.labels),
        source=source,
    )


@router.get("", response_model=list[AlertRuleResponse])
def get_rules(engine: EngineDep, settings: SettingsDep) -> list[AlertRuleResponse]:
    """Every rule in evaluation order: the stored ones, then the file's."""
    with engine.connect() as connection:
        stored = [Rule.model_validate(data) for data in list_rules(connection)]
    return [_response(r, "api") for r in stored] + [
        _response(r, "file") for r in _file_rules(settings)
    ]


@router.put("/{name}", response_model=AlertRuleResponse)
def put_rule(name: str, body: AlertRuleBody, engine: EngineDep) -> AlertRuleResponse:
    """Add or replace the stored rule `name`; the evaluator uses it from its next pass."""
    try:
        rule = Rule.model_validate({"name": name, **body.model_dump(exclude_none=True)})
    except ValidationError as error:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in error.errors())
        raise HTTPException(422, f"invalid rule: {problems}") from error
    stored = {
        "name": rule.name,
        "matchers": [str(m) for m in rule.matchers],
        "severity": None if rule.severity is None else str(rule.severity),
        "labels": dict(rule.labels),
    }
    with engine.begin() as connection:
        save_rule(connection, stored, now_ns=time.time_ns())
    return _response(rule, "api")


@router.delete("/{name}", status_code=204, response_class=Response)
def remove_rule(name: str, engine: EngineDep) -> Response:
    """Remove a stored rule (404 if none has that name; file rules are edited in the file)."""
    with engine.begin() as connection:
        if not delete_rule(connection, name):
            raise HTTPException(404, f"no stored alert rule named {name!r}")
    return Response(status_code=204)
