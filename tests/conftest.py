"""Shared fixtures: real services (Kafka, PostgreSQL) and a clean environment.

Services are started by `make test` (see `deploy/services.sh`), which exports their
addresses. Run pytest on its own and a missing service skips with the reason;
with INFERLOOP_REQUIRE_SERVICES=1 (CI) it fails instead, so CI cannot go green
by skipping.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator

import pytest

KAFKA_ENV = "INFERLOOP_TEST_KAFKA_BOOTSTRAP"
POSTGRES_ENV = "INFERLOOP_TEST_POSTGRES_URL"
REQUIRE_ENV = "INFERLOOP_REQUIRE_SERVICES"

DEFAULT_KAFKA = "127.0.0.1:19092"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:15432/postgres"

# Read before the autouse fixture below clears INFERLOOP_* for each test.
_KAFKA_ADDRESS = os.environ.get(KAFKA_ENV, DEFAULT_KAFKA)
_POSTGRES_URL = os.environ.get(POSTGRES_ENV, DEFAULT_POSTGRES)
_REQUIRE_SERVICES = os.environ.get(REQUIRE_ENV) == "1"


def _missing_service(reason: str) -> None:
    if _REQUIRE_SERVICES:
        pytest.fail(f"{reason} (required because {REQUIRE_ENV}=1)")
    pytest.skip(reason)


def _port_open(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _clean_inferloop_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without INFERLOOP_* settings leaking in from the shell."""
    for name in list(os.environ):
        if name.startswith("INFERLOOP_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Address of the real Kafka broker started by `deploy/services.sh`."""
    if not _port_open(_KAFKA_ADDRESS):
        _missing_service(f"no Kafka broker at {_KAFKA_ADDRESS}; start it with `make services`")
    return _KAFKA_ADDRESS


@pytest.fixture
def make_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory of fresh, uniquely named topics; deleted after the test."""
    from kafka.admin import KafkaAdminClient, NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="inferloop-tests")
    created: list[str] = []

    def create(partitions: int = 1, prefix: str = "test") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
        created.append(name)
        return name

    yield create
    if created:
        with contextlib.suppress(Exception):  # cleanup must not mask the test's own outcome
            admin.delete_topics(created)
    admin.close()


@pytest.fixture
def kafka_topic(make_topic: Callable[..., str]) -> str:
    """A fresh single-partition topic."""
    return make_topic()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty database in the throwaway PostgreSQL cluster."""
    import sqlalchemy as sa

    admin_url = sa.engine.make_url(_POSTGRES_URL)
    if not _port_open(f"{admin_url.host}:{admin_url.port}"):
        _missing_service(
            f"no PostgreSQL at {admin_url.host}:{admin_url.port}; start it with `make services`"
        )
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Every store test runs on both back ends: a SQLite file and a real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'inferloop.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def _migrated_postgres_template() -> Iterator[str]:
    """A database migrated to head once per test process, cloned by `migrated_engine`:
    `CREATE DATABASE … TEMPLATE` copies it in milliseconds, where running every migration
    again cost each PostgreSQL test about a second."""
    import sqlalchemy as sa

    from inferloop.store import upgrade

    admin_url = sa.engine.make_url(_POSTGRES_URL)
    name = f"template_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    upgrade(admin_url.set(database=name).render_as_string(hide_password=False))
    yield name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _clone_migrated(database_url: str, template: str) -> None:
    """Replace the test's fresh, still unused database by a copy of the migrated template."""
    import sqlalchemy as sa

    url = sa.engine.make_url(database_url)
    admin = sa.create_engine(sa.engine.make_url(_POSTGRES_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"'))
    admin.dispose()


@pytest.fixture
def migrated_engine(request: pytest.FixtureRequest, database_url: str) -> Iterator:
    """An engine on a store migrated to head, on each back end (see `database_url`)."""
    from inferloop.store import create_engine_for, upgrade

    if database_url.startswith("postgresql"):
        _clone_migrated(database_url, request.getfixturevalue("_migrated_postgres_template"))
    else:
        upgrade(database_url)
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the broker is marked `kafka`, so `-m "not kafka"` leaves it out."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kafka)
