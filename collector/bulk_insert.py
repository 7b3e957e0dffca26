"""The collector's private write path: events and labels in bulk, idempotently.

Every insert is ON CONFLICT (event_id) DO NOTHING and reports the ids it
actually inserted, so that the figures derived afterwards count new rows only.

PostgreSQL takes the events through a binary COPY straight into ``events``
(falling back to COPY into a staging table + INSERT ... ON CONFLICT when the
batch holds an id already stored); SQLite through multi-row INSERT ...
RETURNING statements.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import msgspec
import sqlalchemy as sa

from inferloop.store.dialect import dialect_insert
from inferloop.store.tables import Event, Label

from .contract import EVENT_COLUMNS, JSON_COLUMNS, LabelEvent

try:
    from ._pgcopy import copy_data
except ImportError:  # built without a C compiler: psycopg writes the rows one by one
    copy_data = None

_EVENT_COLUMN_TYPES = [
    # JSON columns are dumped as "bytea", which in binary COPY sends the bytes
    # unchanged: the binary wire format of ``json`` is its UTF-8 text, which is
    # what the rows carry (the raw slice of the message; psycopg's json dumper
    # would serialise it a second time, its text dumper wants ``str``). The
    # server still parses and validates it as ``json``.
    "bytea"
    if index in JSON_COLUMNS
    else "int8"
    if isinstance(column.type, sa.BigInteger)
    else "int4"
    if isinstance(column.type, sa.Integer)
    else "text"
    for index, column in enumerate(Event.__table__.c[name] for name in EVENT_COLUMNS)
]
"""Client-side dump types of EVENT_COLUMNS, for binary COPY."""
_EVENT_COLUMN_CODES = bytes(
    {"int8": ord("q"), "int4": ord("i"), "text": ord("t"), "bytea": ord("b")}[name]
    for name in _EVENT_COLUMN_TYPES
)
"""The same types as `_pgcopy.copy_data` spells them, a character each."""
use_native = True
"""Whether COPY data is built by `_pgcopy` when it was built (tests turn it off)."""
_COLUMNS_SQL = ", ".join(EVENT_COLUMNS)
_SQLITE_ROWS_PER_STATEMENT = 500
_STAGING = "inferloop_events_staging"
_INPUTS, _OUTPUTS, _TAGS = JSON_COLUMNS


def insert_events(connection: sa.Connection, rows: Sequence[tuple]) -> set[str]:
    """Insert ``events`` rows (EVENT_COLUMNS order) not already stored; return their ids."""
    if connection.dialect.name != "postgresql":
        return _insert_events_sqlite(connection, rows)
    try:
        with connection.begin_nested():
            return _insert_events_postgresql(connection, rows)
    except Exception as error:
        if not _is_unique_violation(error):
            raise
    return _insert_events_postgresql_on_conflict(connection, rows)


@functools.cache
def _bytes_dumper() -> type:
    """psycopg's dumper of `bytes` in binary format: its C one with psycopg[binary]."""
    from psycopg import adapters
    from psycopg.adapt import PyFormat

    return adapters.get_dumper(bytes, PyFormat.BINARY)


def _copy_rows(cursor, table: str, rows: Sequence[tuple]) -> None:
    # Binary COPY: no integer formatting on our side or parsing on the server's. The
    # whole COPY data in one C call where `_pgcopy` was built (0.26 µs of CPU a row against
    # 0.44 for psycopg's `write_row` per row); psycopg's rows otherwise, and for any row
    # the C cannot encode, so that psycopg says what is wrong with it.
    data = copy_data(rows, _EVENT_COLUMN_CODES) if copy_data is not None and use_native else None
    with cursor.copy(f"COPY {table} ({_COLUMNS_SQL}) FROM STDIN (FORMAT BINARY)") as copy:
        if data is not None:
            copy.write(data)
            return
        # `set_types(["bytea"])` picks the dumper registered for the bytea oid, which is
        # psycopg's DB-API `Binary` dumper, written in Python: 1.6 µs for an event's three
        # JSON columns. Registering the C dumper of `bytes` again makes it bytea's too: the
        # collector's CPU per event fell from 8.4 to 6.2 µs (v2 batches).
        cursor.adapters.register_dumper(bytes, _bytes_dumper())
        copy.set_types(_EVENT_COLUMN_TYPES)
        for row in rows:
            copy.write_row(row)


def _insert_events_postgresql(connection: sa.Connection, rows: Sequence[tuple]) -> set[str]:
    """Optimistic path: COPY the rows straight into ``events``.

    Almost every batch is new, so this skips any existence check. A batch
    holding an id that is already stored (a redelivery after a crash or a
    rebalance) fails on the primary key; ``insert_events`` rolls back to its
    savepoint and sends the rows through ``_insert_events_postgresql_on_conflict``.
    """
    _copy_rows(connection.connection.driver_connection.cursor(), "events", rows)
    return {row[0] for row in rows}


def _insert_events_postgresql_on_conflict(
    connection: sa.Connection, rows: Sequence[tuple]
) -> set[str]:
    """Slower path safe against concurrent writers: COPY to staging, INSERT ... ON CONFLICT."""
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
        "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    _copy_rows(cursor, _STAGING, rows)
    cursor.execute(
        f"INSERT INTO events ({_COLUMNS_SQL}) SELECT {_COLUMNS_SQL} FROM {_STAGING} "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    inserted = {row[0] for row in cursor.fetchall()}
    cursor.execute(f"DELETE FROM {_STAGING}")
    return inserted


def _is_unique_violation(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) == "23505"


def _sqlite_row(row: tuple) -> tuple:
    """The row with its JSON columns as ``str``: SQLite would store ``bytes`` as BLOBs."""
    inputs, outputs = row[_INPUTS], row[_OUTPUTS]
    return (
        *row[:_INPUTS],
        None if inputs is None else inputs.decode(),
        None if outputs is None else outputs.decode(),
        *row[_OUTPUTS + 1 : _TAGS],
        row[_TAGS].decode(),
        *row[_TAGS + 1 :],
    )


def _insert_events_sqlite(connection: sa.Connection, rows: Sequence[tuple]) -> set[str]:
    cursor = connection.connection.driver_connection.cursor()
    one_row = "(" + ", ".join("?" for _ in EVENT_COLUMNS) + ")"
    inserted: set[str] = set()
    for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_STATEMENT]
        sql = (
            f"INSERT INTO events ({_COLUMNS_SQL}) VALUES {', '.join([one_row] * len(chunk))} "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        cursor.execute(sql, [value for row in chunk for value in _sqlite_row(row)])
        inserted.update(row[0] for row in cursor.fetchall())
    cursor.close()
    return inserted


def insert_labels(
    connection: sa.Connection, labels: Sequence[LabelEvent], received_at_ns: int
) -> set[str]:
    """Insert labels not already stored; return their ids."""
    statement = (
        dialect_insert(connection, Label.__table__)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(Label.__table__.c.event_id)
    )
    params = [
        {
            "event_id": label.event_id,
            "emitter_id": label.emitter_id,
            "seq": label.seq,
            "prediction_id": label.prediction_id,
            "model": label.model,
            "label": msgspec.json.decode(label.label),
            "time_ns": label.time_ns,
            "received_at_ns": received_at_ns,
        }
        for label in labels
    ]
    return set(connection.scalars(statement, params).all())
