"""Liveness and readiness under a store that is missing, behind, or unreachable."""

from __future__ import annotations

import httpx
from serving import served

from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store import upgrade


def test_readyz_is_200_at_head_and_healthz_needs_no_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'inferloop.db'}"
    upgrade(url)
    with served(create_app(Settings(database_url=url))) as base:
        assert httpx.get(f"{base}/readyz").json() == {"status": "ready"}
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}


def test_readyz_is_503_naming_migrations_behind_on_an_unmigrated_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    with served(create_app(Settings(database_url=url))) as base:
        answer = httpx.get(f"{base}/readyz")
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert answer.json()["reason"].startswith("migrations not at head (database at none")
        assert httpx.get(f"{base}/healthz").status_code == 200


def test_readyz_is_503_naming_an_unreachable_database_while_healthz_stays_200():
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    with served(create_app(Settings(database_url=url))) as base:
        answer = httpx.get(f"{base}/readyz", timeout=30)
        assert answer.status_code == 503
        assert answer.json()["reason"].startswith("database unreachable: OperationalError")
        assert httpx.get(f"{base}/healthz").status_code == 200
