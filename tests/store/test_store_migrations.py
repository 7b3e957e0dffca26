"""Migrations are the only way a schema is made: they must match the models and reverse."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from inferloop.store import create_engine_for, current, downgrade, metadata, upgrade


def _tables(url: str) -> set[str]:
    engine = create_engine_for(url)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_models_and_migrations_agree(migrated_engine):
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata())
    assert differences == []


def test_upgrade_downgrade_upgrade_round_trips(database_url):
    assert current(database_url) is None
    upgrade(database_url)
    head = current(database_url)
    assert head is not None
    assert {"events", "labels", "minute_rollups", "delivery_ranges", "dead_letters"} <= _tables(
        database_url
    )

    downgrade(database_url, "base")
    assert current(database_url) is None
    assert _tables(database_url) == set()

    upgrade(database_url)
    assert current(database_url) == head


def test_events_revision_is_named_and_reversible_on_its_own(database_url):
    upgrade(database_url, "0001_events")
    assert current(database_url) == "0001_events"
    downgrade(database_url, "base")
    assert "events" not in _tables(database_url)


def test_sqlite_engine_uses_wal_and_creates_the_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'deeper' / 'store.db'}"
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() > 0
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "deeper" / "store.db").exists()
