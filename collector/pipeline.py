"""The ingest pipeline both inputs share: validate, dead-letter, store, in one transaction.

A caller (Kafka consumer, HTTP route) hands in whole messages; when ``ingest``
returns, everything in them is durably stored or dead-lettered, so the caller
may then acknowledge (commit offsets, answer the request).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .contract import InferenceEvent, LabelEvent, Rejection, Validated, validate_batch
from .metrics import IngestMetrics
from .writer import (
    DeadLetterRecord,
    DerivedFigures,
    WriteOutcome,
    derive_figures,
    write_dead_letters,
    write_events,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

DeadLetterSink = Callable[[Sequence[DeadLetterRecord]], None]
"""Publishes dead letters elsewhere (the dead-letter topic) before the store commits."""


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
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0


def _dead_letter(message: InputMessage, rejection: Rejection, source: str) -> DeadLetterRecord:
    return DeadLetterRecord(
        source=source,
        reason=rejection.reason,
        raw=rejection.raw,
        event_index=rejection.event_index,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )


@dataclass(slots=True)
class PreparedBatch:
    """Validated messages waiting to be stored (the output of ``IngestPipeline.prepare``)."""

    source: str
    message_count: int
    per_message: list[tuple[InputMessage, Validated]] = field(default_factory=list)
    inferences: list[InferenceEvent] = field(default_factory=list)
    inference_rows: list[tuple] = field(default_factory=list)
    labels: list[LabelEvent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    dead_letters: list[DeadLetterRecord] = field(default_factory=list)
    derived: DerivedFigures | None = None
    """Rollups and delivery runs of all the batch's events, valid if all of them are new."""
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    def reject(self, message: InputMessage, rejection: Rejection) -> None:
        self.rejections.append(rejection)
        self.dead_letters.append(_dead_letter(message, rejection, self.source))


@dataclass(frozen=True, slots=True)
class _RefusedByStore:
    rejection: Rejection
    dead_letter: DeadLetterRecord


def _is_data_error(error: BaseException) -> bool:
    """True for "this data cannot be stored" (DB-API DataError, IntegrityError, ...).

    False for "the database is unreachable or busy" (OperationalError,
    InterfaceError), which must fail the batch so it is retried, not dead-lettered.
    Errors of the raw driver (COPY, RETURNING paths) are recognised too.
    """
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    names = {cls.__name__ for cls in type(original).__mro__}
    if names & {"OperationalError", "InterfaceError"}:
        return False
    return bool(names & {"DataError", "IntegrityError"})


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
        """Store the valid events of ``messages`` and dead-letter the rest; then return."""
        return self.store(self.prepare(messages, source=source))

    def prepare(self, messages: Sequence[InputMessage], *, source: str) -> PreparedBatch:
        """Decode and validate (CPU only, no I/O): the first half of ``ingest``.

        Split out so that the collector can validate the next batch while the
        database is busy with the previous one.
        """
        prepared = PreparedBatch(source=source, message_count=len(messages))
        received_at_ns = time.time_ns()
        for message in messages:
            if message.value is None:
                rejection = Rejection("message has no value (tombstone)", b"")
                prepared.reject(message, rejection)
                continue
            validated = validate_batch(
                message.value, max_bytes=self.max_message_bytes, received_at_ns=received_at_ns
            )
            for rejection in validated.rejections:
                prepared.reject(message, rejection)
            prepared.per_message.append((message, validated))
            prepared.inferences.extend(validated.inferences)
            prepared.inference_rows.extend(validated.inference_rows)
            prepared.labels.extend(validated.labels)
        prepared.derived = derive_figures(prepared.inference_rows, prepared.labels)
        prepared.seconds = time.perf_counter() - prepared.started
        return prepared

    def store(self, prepared: PreparedBatch) -> IngestResult:
        """Write a prepared batch in one transaction; safe to call again if it raised."""
        started = time.perf_counter()
        received_at_ns = time.time_ns()
        with self.engine.begin() as connection:
            outcome, refused = self._store(connection, prepared, received_at_ns)
            dead_letters = [*prepared.dead_letters, *(r.dead_letter for r in refused)]
            if dead_letters and self.dead_letter_sink is not None:
                self.dead_letter_sink(dead_letters)
            write_dead_letters(connection, dead_letters, received_at_ns)
        result = IngestResult(
            stored=outcome.inserted,
            duplicates=outcome.duplicates,
            dead_letters=dead_letters,
            rejections=[*prepared.rejections, *(r.rejection for r in refused)],
            seconds=prepared.seconds + time.perf_counter() - started,
        )
        self._count(result, prepared.message_count, prepared.source)
        return result

    def _store(
        self, connection: sa.Connection, prepared: PreparedBatch, received_at_ns: int
    ) -> tuple[WriteOutcome, list[_RefusedByStore]]:
        try:
            with connection.begin_nested():
                outcome = write_events(
                    connection,
                    prepared.inferences,
                    prepared.labels,
                    received_at_ns,
                    rows=prepared.inference_rows,
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
        refused: list[_RefusedByStore] = []
        for message, validated in prepared.per_message:
            events = [*validated.inferences, *validated.labels]
            positions = [*validated.inference_positions, *validated.label_positions]
            for index, event in zip(positions, events, strict=True):
                try:
                    with connection.begin_nested():
                        single = write_events(
                            connection,
                            [event] if isinstance(event, InferenceEvent) else [],
                            [event] if isinstance(event, LabelEvent) else [],
                            received_at_ns,
                        )
                except Exception as error:
                    if not _is_data_error(error):
                        raise
                    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
                    reason = f"store rejected the event: {str(original).splitlines()[0]}"
                    rejection = Rejection(reason, msgspec.json.encode(event), index)
                    refused.append(
                        _RefusedByStore(
                            rejection, _dead_letter(message, rejection, prepared.source)
                        )
                    )
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
        if result.dead_letters:
            metrics.dead_letters.labels(source).inc(len(result.dead_letters))
        metrics.batch_seconds.labels(source).observe(result.seconds)
