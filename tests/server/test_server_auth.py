"""Scoped API keys: who gets in, who is refused and how, and the CLI that makes the keys."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import httpx
import pytest
from ingest_events import EventFactory
from serving import served
from sqlalchemy.exc import SQLAlchemyError

from inferloop.app.cli_keys import add_key_commands
from inferloop.server import create_app
from inferloop.server.auth import AuthRefused, RecentVerdicts, Scope, auth_required, authorize
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade
from inferloop.store.api_keys import issue_key, key_by_token, list_keys, revoke_key, token_sha256

SILENCE = {"matchers": ['model="fraud"'], "duration": "1h"}


def _issue(engine, *scopes: str, name: str = "test") -> str:
    with engine.begin() as connection:
        return issue_key(connection, name=name, scopes=scopes, now_ns=time.time_ns()).token


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def server(migrated_engine) -> Iterator[str]:
    with served(create_app(Settings(), engine=migrated_engine)) as base:
        yield base


def test_keys_are_stored_as_a_hash_and_found_by_it_on_both_databases(migrated_engine):
    token = _issue(migrated_engine, "read", "ingest", name="ci")
    with migrated_engine.connect() as connection:
        (row,) = list_keys(connection)
        found = key_by_token(connection, token)
    assert token.startswith(row.prefix) and len(token) > 40
    assert row.token_sha256 == token_sha256(token) and token not in str(tuple(row))
    assert found.id == row.id and found.scopes == ["ingest", "read"]


def test_the_embedded_default_is_open_on_loopback_until_a_key_exists(server, migrated_engine):
    assert httpx.get(f"{server}/v1/findings").status_code == 200
    _issue(migrated_engine, "read")
    refused = httpx.get(f"{server}/v1/findings")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert refused.headers["content-type"] == "application/problem+json"
    assert "read scope" in refused.json()["detail"]


def test_each_scope_opens_its_endpoints_and_no_others(server, migrated_engine):
    read, ingest = _issue(migrated_engine, "read"), _issue(migrated_engine, "ingest")
    admin = _issue(migrated_engine, "admin")
    factory = EventFactory()
    body = factory.batch_bytes([factory.inference()])

    def status(method: str, path: str, token: str, **kwargs) -> int:
        return httpx.request(
            method, f"{server}{path}", headers=_bearer(token), **kwargs
        ).status_code

    assert status("GET", "/v1/findings", read) == 200
    assert status("GET", "/metrics", read) == 200
    assert status("GET", "/openapi.json", read) == 200
    assert status("POST", "/v1/events", read, content=body) == 403
    assert status("POST", "/v1/alerts/silences", read, json=SILENCE) == 403
    assert status("POST", "/v1/events", ingest, content=body) == 200
    assert status("POST", "/v1/labels", ingest, json={"labels": []}) == 200
    assert status("GET", "/v1/findings", ingest) == 403
    assert status("POST", "/v1/alerts/silences", ingest, json=SILENCE) == 403
    assert status("GET", "/v1/findings", admin) == 200
    assert status("POST", "/v1/events", admin, content=factory.batch_bytes([])) == 200
    assert status("POST", "/v1/alerts/silences", admin, json=SILENCE) == 201
    assert status("PUT", "/v1/alerts/rules/r", admin, json={"matchers": []}) == 200


def test_wrong_scope_is_403_naming_the_scope_needed_without_echoing_the_key(
    server, migrated_engine
):
    read = _issue(migrated_engine, "read", name="dashboard")
    answer = httpx.post(f"{server}/v1/alerts/silences", json=SILENCE, headers=_bearer(read))
    assert answer.status_code == 403
    assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
    assert answer.json()["detail"] == (
        "the API key 'dashboard' has scopes read; this endpoint needs admin"
    )
    assert read not in answer.text


def test_a_revoked_or_unknown_key_is_401_and_health_stays_open(server, migrated_engine):
    token = _issue(migrated_engine, "admin")
    assert httpx.get(f"{server}/v1/findings", headers=_bearer(token)).status_code == 200
    with migrated_engine.begin() as connection:
        (row,) = list_keys(connection)
        assert revoke_key(connection, row.id, now_ns=time.time_ns())
    for presented in (token, "il_not-a-key"):
        answer = httpx.get(f"{server}/v1/findings", headers=_bearer(presented))
        assert answer.status_code == 401 and presented not in answer.text
        assert 'error="invalid_token"' in answer.headers["www-authenticate"]
    # The last key revoked does not open the API again.
    assert httpx.get(f"{server}/v1/findings").status_code == 401
    assert httpx.get(f"{server}/healthz").status_code == 200


def test_the_configured_api_key_is_an_admin_key(migrated_engine):
    app = create_app(Settings(api_key="s3cret"), engine=migrated_engine)
    with served(app) as base:
        allowed = httpx.post(f"{base}/v1/alerts/silences", json=SILENCE, headers=_bearer("s3cret"))
        refused = httpx.get(f"{base}/v1/findings", headers=_bearer("s3cret-not"))
    assert (allowed.status_code, refused.status_code) == (201, 401)


@pytest.mark.parametrize(
    ("settings", "required"),
    [
        (Settings(), False),
        (Settings(host="0.0.0.0"), True),
        (Settings(host="::1"), False),
        (Settings(host="0.0.0.0", auth={"required": False}), False),
        (Settings(auth={"required": True}), True),
        (Settings(api_key="k"), True),
    ],
    ids=["loopback", "all-interfaces", "ipv6-loopback", "forced-off", "forced-on", "api-key"],
)
def test_auth_is_on_beyond_loopback_or_when_asked_for(migrated_engine, settings, required):
    with migrated_engine.connect() as connection:
        assert auth_required(settings, connection) is required
    if required:
        with pytest.raises(Exception, match="needs an API key"):
            authorize(settings, migrated_engine, None, Scope.READ)


def test_production_refuses_auth_turned_off():
    with pytest.raises(ValueError, match="AUTH__REQUIRED=false"):
        Settings(environment="production", api_key="k", auth={"required": False})
    assert Settings(environment="production", auth={"required": True}).auth.required


def keys(*argv: str) -> int:
    """`inferloop keys ARGV…` (the sub-commands as `inferloop` registers them)."""
    parser = argparse.ArgumentParser(prog="inferloop")
    add_key_commands(parser.add_subparsers(dest="command", required=True), ("database_url",))
    args = parser.parse_args(["keys", *argv])
    return args.handler(args)


def test_keys_cli_prints_a_key_once_lists_prefixes_and_revokes(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    monkeypatch.setenv("INFERLOOP_DATABASE_URL", url)
    assert keys("create", "--scope", "read", "--scope", "ingest", "--name", "ci") == 0
    created = capsys.readouterr()
    token = created.out.strip()
    assert token.startswith("il_") and "shown once" in created.err and token not in created.err

    assert keys("list") == 0
    listed = capsys.readouterr().out
    assert token[:11] in listed and token not in listed and "ingest,read" in listed

    app = create_app(Settings(database_url=url))
    with served(app) as base:
        before = httpx.get(f"{base}/v1/findings", headers=_bearer(token)).status_code
        assert keys("revoke", "1") == 0
        after = httpx.get(f"{base}/v1/findings", headers=_bearer(token)).status_code
    assert (before, after) == (200, 401)
    assert keys("revoke", "1") == 2
    assert "no active key with id 1" in capsys.readouterr().err
    assert keys("list") == 0 and "revoked" in capsys.readouterr().out


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_admitted_recently_is_still_admitted_while_the_store_is_unreachable(
    migrated_engine, tmp_path
):
    token = _issue(migrated_engine, "read", name="prometheus")
    other = _issue(migrated_engine, "read", name="never-seen")
    clock = _Clock()
    verdicts = RecentVerdicts(max_age_s=300.0, clock=clock)
    settings = Settings(auth={"required": True})
    assert authorize(settings, migrated_engine, token, Scope.READ, verdicts=verdicts).name == (
        "prometheus"
    )
    unreachable = create_engine_for(f"sqlite:///{tmp_path}/no/such/dir/store.db")
    try:
        admitted = authorize(settings, unreachable, token, Scope.READ, verdicts=verdicts)
        assert admitted.name == "prometheus"
        with pytest.raises(AuthRefused) as refused:  # the remembered scopes still apply
            authorize(settings, unreachable, token, Scope.ADMIN, verdicts=verdicts)
        assert refused.value.status == 403
        with pytest.raises(SQLAlchemyError):  # a key the store never admitted here
            authorize(settings, unreachable, other, Scope.READ, verdicts=verdicts)
        clock.now += 301.0
        with pytest.raises(SQLAlchemyError):  # too long ago
            authorize(settings, unreachable, token, Scope.READ, verdicts=verdicts)
    finally:
        unreachable.dispose()


def test_a_revoked_key_is_refused_at_once_while_the_store_answers(migrated_engine):
    token = _issue(migrated_engine, "read", name="soon-revoked")
    verdicts = RecentVerdicts()
    settings = Settings(auth={"required": True})
    authorize(settings, migrated_engine, token, Scope.READ, verdicts=verdicts)
    with migrated_engine.begin() as connection:
        revoke_key(connection, key_by_token(connection, token).id, now_ns=time.time_ns())
    with pytest.raises(AuthRefused) as refused:
        authorize(settings, migrated_engine, token, Scope.READ, verdicts=verdicts)
    assert refused.value.status == 401


def test_the_configured_key_is_checked_without_the_store(tmp_path):
    unreachable = create_engine_for(f"sqlite:///{tmp_path}/no/such/dir/store.db")
    try:
        principal = authorize(Settings(api_key="s3cret"), unreachable, "s3cret", Scope.ADMIN)
        assert principal.key_id is None
    finally:
        unreachable.dispose()


def test_recent_verdicts_keep_at_most_max_entries():
    verdicts = RecentVerdicts(max_entries=2)
    for token in ("a", "b", "c"):
        verdicts.remember(token, None)
    assert [verdicts.recall(token)[0] for token in ("a", "b", "c")] == [False, True, True]
