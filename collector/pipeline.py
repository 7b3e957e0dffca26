"""The ingest pipeline both inputs share: validate, dead-letter, store, in one transaction.

A caller (Kafka consumer, HTTP route) hands in whole messages; when ``ingest``
returns, everything in them is durably stored or dead-lettered, so the caller
may then acknowledge (commit offsets, answer the request). A batch is stamped
with one receive time when it is prepared: its events, labels and dead letters
all carry that instant.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .contract import LabelEvent
from .metrics import IngestMetrics
from .rejection import Rejection, RejectionCode
from .rollups import DerivedFigures, derive_figures
from .upserts import write_dead_letters
from .validation import DropReport, Validated, event_bytes, validate_batch
from .writer import WriteOutcome, write_events

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

DeadLetterSink = Callable[[Sequence[Rejection]], None]
"""Publishes dead letters elsewhere (the dead-letter topic) before the store commits."""

BATCH_GC_THRESHOLD = 20_000
"""Allocations between two young-generation garbage collections in a collector process
(CPython's default is 700; `run_collector` sets this one while it runs).

A batch's decoded columns and rows are alive, and young, until its store commits, and it
allocates several objects an event: at 700, each of the ~85 collections of a 10,000-event
poll walks all that is alive of it again, for nothing (it is freed by reference count).
At 20,000, `prepare` + `store` of v2 batches took 2.85 → 2.5 µs of CPU an event (with no
collection at all, 2.4), and `bench/collector_v2.py`, alternating 700 and 20,000, gave
310k → 334k and 312k → 329k v2 events per CPU second (v1 +2–4 %). Cycles wait at most
20,000 allocations longer; the older generations keep their thresholds."""


class StoreUnavailable(Exception):
    """The database could not be reached or was busy: nothing was stored, try again later.

    Not a rejection: the input may be fine, so it is not dead-lettered.
    """


@dataclass(frozen=True, slots=True)
class InputMessage:
    """One batch as received; Kafka coordinates are None for HTTP input."""

    value: bytes | None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None


@dataclass(slots=True)
class IngestResult:
    stored: int = 0
    duplicates: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    """Everything refused, each one dead-lettered, with its origin."""
    seconds: float = 0.0


@dataclass(slots=True)
class PreparedBatch:
    """Validated messages waiting to be stored (the output of ``IngestPipeline.prepare``)."""

    source: str
    message_count: int
    received_at_ns: int
    """The batch's one receive time, on its events, labels and dead letters."""
    per_message: list[tuple[InputMessage, Validated]] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    labels: list[LabelEvent] = field(default_factory=list)
    drops: list[DropReport] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    derived: DerivedFigures | None = None
    """Rollups, delivery runs and drops of all the batch's events, valid if all are new."""
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def reject(self, message: InputMessage, rejection: Rejection) -> None:
        self.rejections.append(_from(message, rejection, self.source))


def _from(message: InputMessage, rejection: Rejection, source: str) -> Rejection:
    return rejection.from_origin(source, message.topic, message.partition, message.offset)


def _database_error_kinds(error: BaseException) -> set[str]:
    """Class names of the DB-API error behind ``error`` (wrapped by SQLAlchemy or raw)."""
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    return {cls.__name__ for cls in type(original).__mro__}


def _is_data_error(error: BaseException) -> bool:
    """True for "this data cannot be stored" (DB-API DataError, IntegrityError, ...).

    False for "the database is unreachable or busy" (OperationalError,
    InterfaceError), which must fail the batch so it is retried, not dead-lettered.
    Errors of the raw driver (COPY, RETURNING paths) are recognised too.
    """
    names = _database_error_kinds(error)
    if names & {"OperationalError", "InterfaceError"}:
        return False
    return bool(names & {"DataError", "IntegrityError"})


_UNDEFINED_TABLE = "42P01"
"""PostgreSQL's SQLSTATE for a missing table (SQLite reports it as an OperationalError)."""


def _is_unavailable(error: BaseException) -> bool:
    """True when the store cannot take writes now: unreachable, busy, or not yet migrated."""
    if isinstance(error, sa.exc.TimeoutError):  # no pooled connection came free in time
        return True
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    if getattr(original, "sqlstate", None) == _UNDEFINED_TABLE:
        return True
    return bool(_database_error_kinds(error) & {"OperationalError", "InterfaceError"})


class IngestPipeline:
    """Validates batch messages and writes them to the store in one transaction each call."""

    def __init__(
        self,
        engine: Engine,
        *,
        metrics: IngestMetrics | None = None,
        dead_letter_sink: DeadLetterSink | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.engine = engine
        self.metrics = metrics or IngestMetrics()
        self.dead_letter_sink = dead_letter_sink
        self.max_message_bytes = max_message_bytes

    def ingest(self, messages: Sequence[InputMessage], *, source: str) -> IngestResult:
        """Store the valid events of ``messages`` and dead-letter the rest; then return.

        Raises ``StoreUnavailable`` when the database cannot be reached (nothing stored).
        """
        return self.store(self.prepare(messages, source=source))

    def prepare(self, messages: Sequence[InputMessage], *, source: str) -> PreparedBatch:
        """Decode and validate (CPU only, no I/O): the first half of ``ingest``.

        Split out so that the collector can validate the next batch while the
        database is busy with the previous one.
        """
        prepared = PreparedBatch(
            source=source, message_count=len(messages), received_at_ns=time.time_ns()
        )
        for message in messages:
            if message.value is None:
                rejection = Rejection(
                    RejectionCode.NO_VALUE, "message has no value (tombstone)", b""
                )
                prepared.reject(message, rejection)
                continue
            validated = validate_batch(
                message.value,
                max_bytes=self.max_message_bytes,
                received_at_ns=prepared.received_at_ns,
            )
            for rejection in validated.rejections:
                prepared.reject(message, rejection)
            prepared.per_message.append((message, validated))
            prepared.rows.extend(validated.rows)
            prepared.labels.extend(validated.labels)
            prepared.drops.extend(validated.drops)
        prepared.derived = derive_figures(prepared.rows, prepared.labels, prepared.drops)
        prepared.seconds = time.perf_counter() - prepared.started
        return prepared

    def store(self, prepared: PreparedBatch) -> IngestResult:
        """Write a prepared batch in one transaction; safe to call again if it raised."""
        started = time.perf_counter()
        try:
            with self.engine.begin() as connection:
                outcome, refused = self._store(connection, prepared)
                rejections = [*prepared.rejections, *refused]
                if rejections and self.dead_letter_sink is not None:
                    self.dead_letter_sink(rejections)
                write_dead_letters(connection, rejections, prepared.received_at_ns)
        except Exception as error:
            if _is_unavailable(error):
                raise StoreUnavailable(str(error).splitlines()[0]) from error
            raise
        result = IngestResult(
            stored=outcome.inserted,
            duplicates=outcome.duplicates,
            rejections=rejections,
            seconds=prepared.seconds + time.perf_counter() - started,
        )
        self._count(result, prepared.message_count, prepared.source)
        return result

    def _store(
        self, connection: sa.Connection, prepared: PreparedBatch
    ) -> tuple[WriteOutcome, list[Rejection]]:
        received_at_ns = prepared.received_at_ns
        try:
            with connection.begin_nested():
                outcome = write_events(
                    connection,
                    prepared.rows,
                    prepared.labels,
                    received_at_ns,
                    drops=prepared.drops,
                    derived=prepared.derived,
                )
                return outcome, []
        except Exception as error:
            if not _is_data_error(error):
                raise
            logger.warning("batch refused by the store (%s); retrying event by event", error)
        # Safety net: the database refused something the contract let through
        # (e.g. a NUL character PostgreSQL text cannot hold). Store the rest.
        total = WriteOutcome()
        refused: list[Rejection] = []
        for message, validated in prepared.per_message:
            singles = [
                *(
                    ([row], [], row[0], index)
                    for row, index in zip(validated.rows, validated.row_positions, strict=True)
                ),
                *(
                    ([], [label], label.event_id, index)
                    for label, index in zip(
                        validated.labels, validated.label_positions, strict=True
                    )
                ),
            ]
            for rows, labels, event_id, index in singles:
                drops = [drop for drop in validated.drops if drop.event_id == event_id]
                try:
                    with connection.begin_nested():
                        single = write_events(connection, rows, labels, received_at_ns, drops=drops)
                except Exception as error:
                    if not _is_data_error(error):
                        raise
                    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
                    reason = f"store rejected the event: {str(original).splitlines()[0]}"
                    raw = event_bytes(message.value or b"", index)
                    rejection = Rejection(RejectionCode.STORE_REFUSED, reason, raw, index)
                    refused.append(_from(message, rejection, prepared.source))
                    continue
                total.inserted += single.inserted
                total.duplicates += single.duplicates
        return total, refused

    def _count(self, result: IngestResult, message_count: int, source: str) -> None:
        metrics = self.metrics
        metrics.messages.labels(source).inc(message_count)
        if result.stored:
            metrics.events.labels(source, "stored").inc(result.stored)
        if result.duplicates:
            metrics.events.labels(source, "duplicate").inc(result.duplicates)
        if result.rejections:
            metrics.dead_letters.labels(source).inc(len(result.rejections))
        metrics.batch_seconds.labels(source).observe(result.seconds)
