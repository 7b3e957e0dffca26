"""Declarative base and engine factory shared by every table module.

The naming convention gives constraints and indexes stable names on SQLite and
PostgreSQL alike, so Alembic can create, compare and drop them by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000


class Base(DeclarativeBase):
    """Parent of every Inferloop table; one MetaData for models and migrations."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # pysqlite's implicit transactions are turned off so that SQLAlchemy's
    # BEGIN (emitted in the "begin" event below) really starts each transaction.
    dbapi_connection.isolation_level = None
    # WAL lets readers (API, analyzer) run while the ingest path writes;
    # NORMAL sync is durable across process crashes, which is what WAL needs.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Deferred BEGIN: readers never hold the write lock. A transaction that reads before
    # it writes asks for IMMEDIATE (see `begin_write`): upgrading a deferred read to a
    # write fails at once with "database is locked" when another connection committed in
    # between, without waiting on busy_timeout.
    mode = conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "DEFERRED")
    conn.exec_driver_sql(_SQLITE_BEGIN_STATEMENTS[mode])


_SQLITE_BEGIN_OPTION = "inferloop_sqlite_begin"
_SQLITE_BEGIN_STATEMENTS = {"DEFERRED": "BEGIN DEFERRED", "IMMEDIATE": "BEGIN IMMEDIATE"}


@contextlib.contextmanager
def begin_write(engine: Engine) -> Iterator[sa.Connection]:
    """A transaction that will write after reading: on SQLite it takes the write lock at
    BEGIN (queuing on busy_timeout behind other writers); elsewhere a plain transaction."""
    with (
        engine.connect().execution_options(**{_SQLITE_BEGIN_OPTION: "IMMEDIATE"}) as connection,
        connection.begin(),
    ):
        yield connection


def create_engine_for(url: str, **kwargs: Any) -> Engine:
    """An engine with the settings the store needs on each back end.

    SQLite: creates the file's folder, turns on WAL, ``synchronous=NORMAL``,
    a busy timeout and foreign keys on every connection. PostgreSQL: a small
    pre-pinged pool, since services are long-lived and the server may restart.
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        connect_args = {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        connect_args.update(kwargs.pop("connect_args", {}))
        engine = sa.create_engine(parsed, connect_args=connect_args, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        sa.event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 1800)
    return sa.create_engine(parsed, **kwargs)
