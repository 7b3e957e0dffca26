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

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import sqlalchemy as sa
from inferloop.store.sketch import bucket_indexes, merge_into
from inferloop.store.tables import DeadLetter, DeliveryRange, Event, Label, MinuteRollup, SdkDrops
from sqlalchemy.dialects import postgresql, sqlite

from .contract import EVENT_COLUMNS, InferenceEvent, LabelEvent, Validated, _split

_EVENT_COLUMN_TYPES = [
    # JSON columns travel as "text": their binary wire format is the UTF-8 text
    # itself, and the rows carry JSON already serialised (psycopg's json dumper
    # would encode our strings a second time).
    "int8"
    if isinstance(column.type, sa.BigInteger)
    else "int4"
    if isinstance(column.type, sa.Integer)
    else "text"
    for column in (Event.__table__.c[name] for name in EVENT_COLUMNS)
]
"""PostgreSQL types of EVENT_COLUMNS, for binary COPY."""
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
    with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
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
        cursor.execute(sql, [value for row in chunk for value in row])
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


def _minute_aggregates(
    events: Sequence[InferenceEvent],
) -> dict[tuple[str, str, int], _MinuteAggregate]:
    """Per (model, version, minute): count, errors, latency sum/max and histogram.

    Vectorised: a few C-speed passes over the events, then numpy grouping, so
    the cost per event stays well under a microsecond.
    """
    n = len(events)
    latency = np.fromiter((e.latency_ns for e in events), np.int64, n)
    minute_s = np.fromiter((e.start_time_ns for e in events), np.int64, n) // _MINUTE_NS * 60
    failed = np.fromiter((e.status == "error" for e in events), np.bool_, n)
    series_of = [(e.model, e.version) for e in events]
    series = list(dict.fromkeys(series_of))
    if len(series) == 1:
        series_index = np.zeros(n, np.int64)
    else:
        position = {key: i for i, key in enumerate(series)}
        series_index = np.fromiter((position[key] for key in series_of), np.int64, n)
    # One group per (series, minute).
    group_keys, group = np.unique(series_index * (1 << 40) + minute_s // 60, return_inverse=True)
    groups = group_keys.size
    counts = np.bincount(group, minlength=groups)
    errors = np.bincount(group, weights=failed, minlength=groups)
    sums = np.bincount(group, weights=latency.astype(np.float64), minlength=groups)
    maxima = np.full(groups, np.iinfo(np.int64).min)
    np.maximum.at(maxima, group, latency)
    buckets = bucket_indexes(latency)
    pair_keys, pair_counts = np.unique(
        np.stack([group, buckets], axis=1), axis=0, return_counts=True
    )
    histograms: list[dict[str, int]] = [{} for _ in range(groups)]
    for (g, bucket), count in zip(pair_keys.tolist(), pair_counts.tolist(), strict=True):
        histograms[g][str(bucket)] = count
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


def _update_rollups(connection: sa.Connection, events: Sequence[InferenceEvent]) -> None:
    if not events:
        return
    aggregates = _minute_aggregates(events)
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
    events: Sequence[InferenceEvent], labels: Sequence[LabelEvent]
) -> list[tuple[str, str, int, int, int, int]]:
    """Runs of contiguous sequence numbers per (emitter, model), with their first/last times.

    Vectorised like the rollups: sort by (emitter/model, seq) and cut where the
    group changes or the sequence jumps.
    """
    emitters = [e.emitter_id for e in events] + [lab.emitter_id for lab in labels]
    models = [e.model for e in events] + [lab.model for lab in labels]
    n = len(emitters)
    seqs = np.fromiter(
        itertools.chain((e.seq for e in events), (lab.seq for lab in labels)), np.int64, n
    )
    times = np.fromiter(
        itertools.chain((e.start_time_ns for e in events), (lab.time_ns for lab in labels)),
        np.int64,
        n,
    )
    pairs = list(zip(emitters, models, strict=True))
    groups = list(dict.fromkeys(pairs))
    if len(groups) == 1:
        group = np.zeros(n, np.int64)
    else:
        position = {pair: i for i, pair in enumerate(groups)}
        group = np.fromiter((position[pair] for pair in pairs), np.int64, n)
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
    connection: sa.Connection, events: Sequence[InferenceEvent], labels: Sequence[LabelEvent]
) -> None:
    """Record runs of contiguous sequence numbers per emitter and model."""
    if not events and not labels:
        return
    runs = _delivery_runs(events, labels)
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


def write_events(
    connection: sa.Connection,
    inferences: Sequence[InferenceEvent],
    labels: Sequence[LabelEvent],
    received_at_ns: int,
    *,
    rows: Sequence[tuple] | None = None,
) -> WriteOutcome:
    """Store events and labels, and the figures derived from the new ones only.

    ``rows`` are the ``events`` rows of ``inferences`` when already built by
    validation (``Validated.inference_rows``). Must run inside the caller's
    transaction; the caller commits.
    """
    outcome = WriteOutcome()
    stored_inferences: list[InferenceEvent] = []
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
            stored_inferences = list(inferences)
        else:
            seen: set[str] = set()
            for event in inferences:
                # The same id twice in one batch is inserted once: count it once.
                if event.event_id in inserted and event.event_id not in seen:
                    seen.add(event.event_id)
                    stored_inferences.append(event)
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
    _update_rollups(connection, stored_inferences)
    _update_sdk_drops(connection, stored_inferences)
    _update_delivery(connection, stored_inferences, stored_labels)
    return outcome
