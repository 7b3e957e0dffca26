"""The one write path of ingest: validated events into the store, in one transaction.

Idempotency: events and labels are inserted with ON CONFLICT (event_id) DO
NOTHING RETURNING event_id, and every derived figure (rollups, delivery ranges,
SDK drop counts) is computed only from the rows that were actually inserted, in
the same transaction. Redelivering a batch therefore changes nothing.

PostgreSQL takes the events through a binary COPY straight into ``events``
(falling back to COPY into a staging table + INSERT ... ON CONFLICT when the
batch holds an id already stored); SQLite through multi-row INSERT ...
RETURNING statements.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from inferloop.store.sketch import bucket_indexes, merge_into
from inferloop.store.tables import DeadLetter, DeliveryRange, Event, Label, MinuteRollup, SdkDrops

from .contract import EVENT_COLUMNS, JSON_COLUMNS, InferenceEvent, LabelEvent, Validated, _split

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
_COLUMN = {name: index for index, name in enumerate(EVENT_COLUMNS)}
_SQLITE_ROWS_PER_STATEMENT = 500
_STAGING = "inferloop_events_staging"


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """A rejected message or event, with where it came from."""

    source: str
    reason: str
    raw: bytes
    event_index: int = -1
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(slots=True)
class WriteOutcome:
    inserted: int = 0
    duplicates: int = 0


MAX_DEAD_LETTER_BYTES = 1024 * 1024
"""Raw bytes kept per dead letter; ``raw_size`` records the original length."""


def _insert_events_postgresql(connection: sa.Connection, rows: Sequence[tuple]) -> set[str]:
    """Optimistic path: COPY the rows straight into ``events``.

    Almost every batch is new, so this skips any existence check. A batch
    holding an id that is already stored (a redelivery after a crash or a
    rebalance) fails on the primary key; the caller rolls back to its savepoint
    and sends the rows through ``_insert_events_postgresql_on_conflict``.
    """
    cursor = connection.connection.driver_connection.cursor()
    columns = ", ".join(EVENT_COLUMNS)
    # Binary COPY: no integer formatting on our side or parsing on the server's.
    with cursor.copy(f"COPY events ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_EVENT_COLUMN_TYPES)
        for row in rows:
            copy.write_row(row)
    return {row[0] for row in rows}


def _insert_events_postgresql_on_conflict(connection: sa.Connection, rows: list[tuple]) -> set[str]:
    """Slower path safe against concurrent writers: COPY to staging, INSERT ... ON CONFLICT."""
    cursor = connection.connection.driver_connection.cursor()
    cursor.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} "
        "(LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    columns = ", ".join(EVENT_COLUMNS)
    with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_EVENT_COLUMN_TYPES)
        for row in rows:
            copy.write_row(row)
    cursor.execute(
        f"INSERT INTO events ({columns}) SELECT {columns} FROM {_STAGING} "
        "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
    )
    inserted = {row[0] for row in cursor.fetchall()}
    cursor.execute(f"DELETE FROM {_STAGING}")
    return inserted


def _is_unique_violation(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) == "23505"


_INPUTS, _OUTPUTS, _TAGS = JSON_COLUMNS


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


def _insert_events_sqlite(connection: sa.Connection, rows: list[tuple]) -> set[str]:
    cursor = connection.connection.driver_connection.cursor()
    columns = ", ".join(EVENT_COLUMNS)
    one_row = "(" + ", ".join("?" for _ in EVENT_COLUMNS) + ")"
    inserted: set[str] = set()
    for start in range(0, len(rows), _SQLITE_ROWS_PER_STATEMENT):
        chunk = rows[start : start + _SQLITE_ROWS_PER_STATEMENT]
        sql = (
            f"INSERT INTO events ({columns}) VALUES {', '.join([one_row] * len(chunk))} "
            "ON CONFLICT (event_id) DO NOTHING RETURNING event_id"
        )
        cursor.execute(sql, [value for row in chunk for value in _sqlite_row(row)])
        inserted.update(row[0] for row in cursor.fetchall())
    cursor.close()
    return inserted


def _dialect_insert(connection: sa.Connection, table: sa.Table):
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _insert_labels(
    connection: sa.Connection, labels: Sequence[LabelEvent], received_at_ns: int
) -> set[str]:
    statement = (
        _dialect_insert(connection, Label.__table__)
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


@dataclass(slots=True)
class _MinuteAggregate:
    count: int
    errors: int
    latency_sum_ns: int
    latency_max_ns: int
    histogram: dict[str, int]


_MINUTE_NS = 60_000_000_000


class _StoredColumns:
    """The columns the derived figures need, taken from the stored rows.

    ``map(itemgetter(...))`` walks the rows in C: no Python frame per event.
    """

    __slots__ = ("emitters", "models", "versions", "seqs", "start_ns", "latency_ns", "failed")

    def __init__(self, rows: Sequence[tuple]) -> None:
        n = len(rows)

        def column(name: str) -> Iterator:
            return map(itemgetter(_COLUMN[name]), rows)

        self.emitters: list[str] = list(column("emitter_id"))
        self.models: list[str] = list(column("model"))
        self.versions: list[str] = list(column("version"))
        self.seqs = np.fromiter(column("seq"), np.int64, n)
        self.start_ns = np.fromiter(column("start_time_ns"), np.int64, n)
        self.latency_ns = np.fromiter(column("latency_ns"), np.int64, n)
        self.failed = np.fromiter(map("error".__eq__, column("status")), np.bool_, n)


def _group_index(keys: list) -> tuple[list, np.ndarray]:
    """The distinct keys (first-seen order) and each key's position among them."""
    distinct = list(dict.fromkeys(keys))
    if len(distinct) == 1:
        return distinct, np.zeros(len(keys), np.int64)
    position = {key: i for i, key in enumerate(distinct)}
    return distinct, np.fromiter(map(position.__getitem__, keys), np.int64, len(keys))


_BUCKET_BITS = 16
"""Sketch bucket indexes of int64 nanoseconds stay below 2**13 (ln(2**63) / ln(gamma))."""


def _minute_aggregates(stored: _StoredColumns) -> dict[tuple[str, str, int], _MinuteAggregate]:
    """Per (model, version, minute): count, errors, latency sum/max and histogram.

    Vectorised: the columns come from the rows in C, then numpy grouping with integer
    keys (one sort each), so the cost per event stays well under a microsecond.
    """
    latency = stored.latency_ns
    minute_s = stored.start_ns // _MINUTE_NS * 60
    series, series_index = _group_index(list(zip(stored.models, stored.versions, strict=True)))
    # One group per (series, minute).
    group_keys, group = np.unique(series_index * (1 << 40) + minute_s // 60, return_inverse=True)
    group = group.reshape(-1)
    groups = group_keys.size
    counts = np.bincount(group, minlength=groups)
    errors = np.bincount(group, weights=stored.failed, minlength=groups)
    sums = np.bincount(group, weights=latency.astype(np.float64), minlength=groups)
    order = np.argsort(group, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    maxima = np.maximum.reduceat(latency[order], starts)
    pairs, pair_counts = np.unique(
        (group << _BUCKET_BITS) | bucket_indexes(latency), return_counts=True
    )
    histograms: list[dict[str, int]] = [{} for _ in range(groups)]
    for pair, count in zip(pairs.tolist(), pair_counts.tolist(), strict=True):
        histograms[pair >> _BUCKET_BITS][str(pair & ((1 << _BUCKET_BITS) - 1))] = count
    aggregates = {}
    for g, key in enumerate(group_keys.tolist()):
        model, version = series[key >> 40]
        aggregates[(model, version, (key & ((1 << 40) - 1)) * 60)] = _MinuteAggregate(
            count=int(counts[g]),
            errors=int(errors[g]),
            latency_sum_ns=int(sums[g]),
            latency_max_ns=int(maxima[g]),
            histogram=histograms[g],
        )
    return aggregates


def _update_rollups(
    connection: sa.Connection, aggregates: dict[tuple[str, str, int], _MinuteAggregate]
) -> None:
    if not aggregates:
        return
    table = MinuteRollup.__table__
    keys = sorted(aggregates)  # one lock order for every writer: no deadlocks
    connection.execute(
        _dialect_insert(connection, table).on_conflict_do_nothing(),
        [
            {
                "model": m,
                "version": v,
                "minute_start_s": t,
                "count": 0,
                "errors": 0,
                "latency_sum_ns": 0,
                "latency_max_ns": 0,
                "histogram": {},
            }
            for m, v, t in keys
        ],
    )
    existing: dict[tuple[str, str, int], Any] = {}
    by_series: dict[tuple[str, str], list[int]] = defaultdict(list)
    for m, v, t in keys:
        by_series[(m, v)].append(t)
    for (model, version), minutes in by_series.items():
        query = (
            sa.select(table)
            .where(
                table.c.model == model,
                table.c.version == version,
                table.c.minute_start_s.in_(minutes),
            )
            .order_by(table.c.minute_start_s)
            .with_for_update()
        )
        for row in connection.execute(query):
            existing[(row.model, row.version, row.minute_start_s)] = row
    updates = []
    for key in keys:
        row = existing[key]
        add = aggregates[key]
        updates.append(
            {
                "b_model": key[0],
                "b_version": key[1],
                "b_minute": key[2],
                "count": row.count + add.count,
                "errors": row.errors + add.errors,
                "latency_sum_ns": row.latency_sum_ns + add.latency_sum_ns,
                "latency_max_ns": max(row.latency_max_ns, add.latency_max_ns),
                "histogram": merge_into(dict(row.histogram), add.histogram),
            }
        )
    connection.execute(
        sa.update(table)
        .where(
            table.c.model == sa.bindparam("b_model"),
            table.c.version == sa.bindparam("b_version"),
            table.c.minute_start_s == sa.bindparam("b_minute"),
        )
        .values(
            count=sa.bindparam("count"),
            errors=sa.bindparam("errors"),
            latency_sum_ns=sa.bindparam("latency_sum_ns"),
            latency_max_ns=sa.bindparam("latency_max_ns"),
            histogram=sa.bindparam("histogram", type_=sa.JSON),
        ),
        updates,
    )


def _delivery_runs(
    stored: _StoredColumns | None, labels: Sequence[LabelEvent]
) -> list[tuple[str, str, int, int, int, int]]:
    """Runs of contiguous sequence numbers per (emitter, model), with their first/last times.

    Vectorised like the rollups: sort by (emitter/model, seq) and cut where the
    group changes or the sequence jumps.
    """
    emitters = [lab.emitter_id for lab in labels]
    models = [lab.model for lab in labels]
    seqs = np.array([lab.seq for lab in labels], np.int64)
    times = np.array([lab.time_ns for lab in labels], np.int64)
    if stored is not None:
        emitters[:0] = stored.emitters
        models[:0] = stored.models
        seqs = np.concatenate((stored.seqs, seqs))
        times = np.concatenate((stored.start_ns, times))
    n = len(emitters)
    groups, group = _group_index(list(zip(emitters, models, strict=True)))
    order = np.lexsort((seqs, group))
    group, seqs, times = group[order], seqs[order], times[order]
    cuts = np.flatnonzero((np.diff(group) != 0) | (np.diff(seqs) != 1)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [n])) - 1
    firsts = np.minimum.reduceat(times, starts)
    lasts = np.maximum.reduceat(times, starts)
    return [
        (*groups[g], first_seq, last_seq, first, last)
        for g, first_seq, last_seq, first, last in zip(
            group[starts].tolist(),
            seqs[starts].tolist(),
            seqs[ends].tolist(),
            firsts.tolist(),
            lasts.tolist(),
            strict=True,
        )
    ]


def _update_delivery(
    connection: sa.Connection, runs: Sequence[tuple[str, str, int, int, int, int]]
) -> None:
    """Record runs of contiguous sequence numbers per emitter and model."""
    table = DeliveryRange.__table__
    for emitter, model, start, end, first, last in runs:
        # Extend the range this run continues, if there is one; else start a new one.
        extended = connection.execute(
            sa.update(table)
            .where(
                table.c.emitter_id == emitter,
                table.c.model == model,
                table.c.seq_end == start - 1,
            )
            .values(
                seq_end=end,
                last_time_ns=sa.func.max(table.c.last_time_ns, last)
                if connection.dialect.name == "sqlite"
                else sa.func.greatest(table.c.last_time_ns, last),
            )
        )
        if extended.rowcount == 0:
            connection.execute(
                sa.insert(table).values(
                    emitter_id=emitter,
                    model=model,
                    seq_start=start,
                    seq_end=end,
                    first_time_ns=first,
                    last_time_ns=last,
                )
            )


def _update_sdk_drops(connection: sa.Connection, events: Iterable[InferenceEvent]) -> None:
    totals: dict[tuple[str, int, str], int] = defaultdict(int)
    for event in events:
        if event.dropped:
            minute = event.start_time_ns // 60_000_000_000 * 60
            for reason, count in event.dropped.items():
                if count:
                    totals[(event.model, minute, reason[:100])] += count
    if not totals:
        return
    table = SdkDrops.__table__
    statement = _dialect_insert(connection, table)
    statement = statement.on_conflict_do_update(
        index_elements=["model", "minute_start_s", "reason"],
        set_={"count": table.c.count + statement.excluded.count},
    )
    connection.execute(
        statement,
        [
            {"model": m, "minute_start_s": t, "reason": r, "count": c}
            for (m, t, r), c in sorted(totals.items())
        ],
    )


def write_dead_letters(
    connection: sa.Connection, records: Sequence[DeadLetterRecord], received_at_ns: int
) -> int:
    """Insert dead letters (once per Kafka message/event position); return rows added."""
    if not records:
        return 0
    statement = _dialect_insert(connection, DeadLetter.__table__).on_conflict_do_nothing()
    result = connection.execute(
        statement,
        [
            {
                "received_at_ns": received_at_ns,
                "source": r.source,
                "topic": r.topic,
                "partition": r.partition,
                "offset": r.offset,
                "event_index": r.event_index,
                "reason": r.reason,
                "raw": r.raw[:MAX_DEAD_LETTER_BYTES],
                "raw_size": len(r.raw),
            }
            for r in records
        ],
    )
    return max(result.rowcount, 0)


def _rows_of(inferences: Sequence[InferenceEvent], received_at_ns: int) -> list[tuple]:
    validated = Validated()
    _split(list(inferences), validated, None, list(range(len(inferences))), received_at_ns)
    return validated.inference_rows


@dataclass(frozen=True, slots=True)
class DerivedFigures:
    """Rollup aggregates and delivery runs of a batch's events, computed before its write.

    The collector computes them while the previous batch is being written (the
    database waits on nothing then); ``write_events`` uses them only when every
    event of the batch turns out to be new, and otherwise recomputes them from
    the rows actually inserted, so a redelivery still adds nothing.
    """

    aggregates: dict[tuple[str, str, int], _MinuteAggregate]
    delivery_runs: list[tuple[str, str, int, int, int, int]]


def derive_figures(rows: Sequence[tuple], labels: Sequence[LabelEvent]) -> DerivedFigures:
    """Rollups and delivery runs of ``rows`` (``events`` rows) and ``labels``, all assumed new."""
    stored = _StoredColumns(rows) if rows else None
    return DerivedFigures(
        aggregates=_minute_aggregates(stored) if stored is not None else {},
        delivery_runs=_delivery_runs(stored, labels) if stored is not None or labels else [],
    )


def write_events(
    connection: sa.Connection,
    inferences: Sequence[InferenceEvent],
    labels: Sequence[LabelEvent],
    received_at_ns: int,
    *,
    rows: Sequence[tuple] | None = None,
    derived: DerivedFigures | None = None,
) -> WriteOutcome:
    """Store events and labels, and the figures derived from the new ones only.

    ``rows`` are the ``events`` rows of ``inferences`` when already built by
    validation (``Validated.inference_rows``); ``derived`` their figures from
    ``derive_figures(rows, labels)``, used only if all of them are inserted.
    Must run inside the caller's transaction; the caller commits.
    """
    outcome = WriteOutcome()
    stored_inferences: Sequence[InferenceEvent] = ()
    stored_rows: Sequence[tuple] = ()
    if inferences:
        if rows is None:
            rows = _rows_of(inferences, received_at_ns)
        if connection.dialect.name == "postgresql":
            try:
                with connection.begin_nested():
                    inserted = _insert_events_postgresql(connection, rows)
            except Exception as error:
                if not _is_unique_violation(error):
                    raise
                inserted = _insert_events_postgresql_on_conflict(connection, rows)
        else:
            inserted = _insert_events_sqlite(connection, rows)
        if len(inserted) == len(inferences):
            stored_inferences, stored_rows = inferences, rows
        else:
            kept_inferences: list[InferenceEvent] = []
            kept_rows: list[tuple] = []
            seen: set[str] = set()
            for event, row in zip(inferences, rows, strict=True):
                # The same id twice in one batch is inserted once: count it once.
                if event.event_id in inserted and event.event_id not in seen:
                    seen.add(event.event_id)
                    kept_inferences.append(event)
                    kept_rows.append(row)
            stored_inferences, stored_rows = kept_inferences, kept_rows
    stored_labels: list[LabelEvent] = []
    if labels:
        inserted_labels = _insert_labels(connection, labels, received_at_ns)
        seen_labels: set[str] = set()
        for label in labels:
            if label.event_id in inserted_labels and label.event_id not in seen_labels:
                seen_labels.add(label.event_id)
                stored_labels.append(label)
    outcome.inserted = len(stored_inferences) + len(stored_labels)
    outcome.duplicates = len(inferences) + len(labels) - outcome.inserted
    if derived is None or outcome.duplicates:
        derived = derive_figures(stored_rows, stored_labels)
    _update_rollups(connection, derived.aggregates)
    _update_sdk_drops(connection, stored_inferences)
    _update_delivery(connection, derived.delivery_runs)
    return outcome
