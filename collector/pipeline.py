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
from .writer import DeadLetterRecord, WriteOutcome, write_dead_letters, write_events

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
    return bool(names & {"DataError", "IntegrityError", "ProgrammingError", "NotSupportedError"})


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
        started = time.perf_counter()
        result = IngestResult()
        per_message: list[tuple[InputMessage, Validated]] = []
        inferences: list[InferenceEvent] = []
        labels: list[LabelEvent] = []
        for message in messages:
            if message.value is None:
                rejection = Rejection("message has no value (tombstone)", b"")
                self._reject(result, message, rejection, source)
                continue
            validated = validate_batch(message.value, max_bytes=self.max_message_bytes)
            for rejection in validated.rejections:
                self._reject(result, message, rejection, source)
            per_message.append((message, validated))
            inferences.extend(validated.inferences)
            labels.extend(validated.labels)
        received_at_ns = time.time_ns()
        with self.engine.begin() as connection:
            outcome = self._store(
                connection, per_message, inferences, labels, received_at_ns, result, source
            )
            if result.dead_letters and self.dead_letter_sink is not None:
                self.dead_letter_sink(result.dead_letters)
            write_dead_letters(connection, result.dead_letters, received_at_ns)
        result.stored, result.duplicates = outcome.inserted, outcome.duplicates
        result.seconds = time.perf_counter() - started
        self._count(result, len(messages), source)
        return result

    def _reject(
        self, result: IngestResult, message: InputMessage, rejection: Rejection, source: str
    ) -> None:
        result.rejections.append(rejection)
        result.dead_letters.append(
            DeadLetterRecord(
                source=source,
                reason=rejection.reason,
                raw=rejection.raw,
                event_index=rejection.event_index,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            )
        )

    def _store(
        self, connection, per_message, inferences, labels, received_at_ns, result, source
    ) -> WriteOutcome:
        try:
            with connection.begin_nested():
                return write_events(connection, inferences, labels, received_at_ns)
        except Exception as error:
            if not _is_data_error(error):
                raise
            logger.warning("batch refused by the store (%s); retrying event by event", error)
        # Safety net: the database refused something the contract let through
        # (e.g. a NUL character PostgreSQL text cannot hold). Store the rest.
        total = WriteOutcome()
        for message, validated in per_message:
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
                    self._reject(result, message, rejection, source)
                    continue
                total.inserted += single.inserted
                total.duplicates += single.duplicates
        return total

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
