"""`_pgcopy.copy_data` writes the bytes psycopg's own binary COPY writes, row for row.

psycopg's `BinaryFormatter` (the code behind `Copy.write_row`) is the oracle: the same rows
through both must give the same bytes. A real PostgreSQL then stores events through the
C data and through psycopg's rows alike. `make test` builds the module; its absence fails.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_events import EventFactory
from psycopg import adapt, postgres, pq
from psycopg._copy_base import BinaryFormatter

from inferloop.collector import IngestPipeline, InputMessage, bulk_insert

copy_data = bulk_insert.copy_data
_TYPES = {"q": "int8", "i": "int4", "t": "text", "b": "bytea"}


class _Context:
    """What psycopg's Transformer asks of a connection: its adapters, as the collector's."""

    connection = None

    def __init__(self) -> None:
        self.adapters = adapt.AdaptersMap(postgres.adapters)
        self.adapters.register_dumper(bytes, bulk_insert._bytes_dumper())


def _psycopg_bytes(rows: list[tuple[Any, ...]], codes: bytes) -> bytes:
    transformer = adapt.Transformer(_Context())
    oids = [postgres.types.get(_TYPES[chr(code)]).oid for code in codes]
    transformer.set_dumper_types(oids, pq.Format.BINARY)
    formatter = BinaryFormatter(transformer)
    return b"".join(bytes(formatter.write_row(row)) for row in rows) + bytes(formatter.end())


def test_the_module_was_built() -> None:
    assert copy_data is not None, "inferloop.collector._pgcopy was not built (is gcc installed?)"


_FIELD = {
    "q": st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    "i": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
    "t": st.one_of(st.none(), st.text(alphabet=st.characters(blacklist_categories=["Cs"]))),
    "b": st.one_of(st.none(), st.binary()),
}


@st.composite
def _table(draw: Any) -> tuple[bytes, list[tuple[Any, ...]]]:
    codes = draw(st.text(alphabet="qitb", min_size=1, max_size=6)).encode()
    row = st.tuples(*(_FIELD[chr(code)] for code in codes))
    return codes, draw(st.lists(row, max_size=6))


@settings(max_examples=300, deadline=None)
@given(table=_table())
def test_copy_data_is_byte_for_byte_what_psycopg_writes(table: Any) -> None:
    codes, rows = table
    assert copy_data(rows, codes) == _psycopg_bytes(rows, codes)


def test_an_events_row_is_byte_for_byte_what_psycopg_writes() -> None:
    row = ("e" * 32, "emitter", 7, "fraud", "3", "prod", -1, 12_000, None, "ok", None, None,
           1, "cuda:0", b'{"rows":[{"a":1}]}', None, "p-1", b"{}", 2**62)  # fmt: skip
    codes = bulk_insert._EVENT_COLUMN_CODES
    assert copy_data([row, row], codes) == _psycopg_bytes([row, row], codes)


@pytest.mark.parametrize(
    "row",
    [
        (2**63, 0, "", b""),  # beyond int8
        (0, 2**31, "", b""),  # beyond int4
        (0, 0, "\ud800", b""),  # a lone surrogate is no UTF-8
        (0, 0, b"bytes", b""),  # bytes where text goes
        (0, 0, "", "text"),  # text where bytes go
        (True, 0, "", b""),  # a bool is not an int8 here
        (0, 0, ""),  # a row of the wrong width
    ],
)
def test_what_does_not_fit_is_left_to_psycopg(row: tuple[Any, ...]) -> None:
    assert copy_data([(1, 2, "x", b"y"), row], b"qitb") is None


@pytest.mark.postgres
def test_events_stored_through_the_c_data_and_through_psycopg_rows_alike(
    postgres_url: str,
) -> None:
    from inferloop.store import create_engine_for, upgrade

    upgrade(postgres_url)
    engine = create_engine_for(postgres_url)
    factory = EventFactory()
    events = [factory.inference() for _ in range(40)]
    events[3]["device_time_ns"] = 123
    try:
        for native, part in ((True, events[:20]), (False, events[20:])):
            bulk_insert.use_native = native
            message = InputMessage(factory.batch_bytes(part), "t", 0, int(native))
            assert IngestPipeline(engine).ingest([message], source="kafka").stored == 20
    finally:
        bulk_insert.use_native = True
    with engine.connect() as connection:
        stored = {
            row.event_id: row
            for row in connection.execute(sa.text("SELECT * FROM events ORDER BY seq"))
        }
    engine.dispose()
    assert len(stored) == 40
    for event in events:
        row = stored[event["event_id"]]
        assert (row.seq, row.latency_ns, row.device_time_ns, row.model) == (
            event["seq"],
            event["latency_ns"],
            event["device_time_ns"],
            event["model"],
        )
        assert row.inputs == event["inputs"] and row.tags == event["tags"]
