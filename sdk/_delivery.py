"""Delivery: the outbox of serialised batches, their retries, and what was lost and why.

Events are cut into batches of one model each and kept in a bounded outbox until the
transport takes them. A failed send is retried with jittered exponential backoff; a batch
refused for good, or retried past `retry_timeout_s`, is given up and counted. Every loss is
also reported to the platform on the first event of the next batch (`"dropped"`), so that
its completeness figures match what the SDK knows. Worker thread only.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ._columns import Block
from ._config import SDKConfig
from ._log import RateLimitedLog
from ._serialize import dumps
from ._transports import (
    PartiallyRejected,
    PermanentTransportError,
    PipeliningTransport,
    RetryLater,
    Transport,
)

SEND_FAILED = "send_failed"
MAX_IN_FLIGHT = 4  # batches awaiting the broker's ack at once (pipelining transports)


class Batch:
    """One batch envelope as JSON (v1 events or v2 columns), the events it holds and the drop report it carries."""

    __slots__ = ("key", "data", "count", "report", "attempts", "first_failure", "handle")

    def __init__(self, key: str, data: bytes, count: int, report: dict[str, int]) -> None:
        self.key = key
        self.data = data
        self.count = count
        self.report = report
        self.attempts = 0
        self.first_failure: float | None = None
        self.handle: Any = None  # pending delivery of a pipelining transport


class Outbox:
    """One emitter's batches awaiting delivery: sending, retrying, and the delivery counters."""

    def __init__(self, config: SDKConfig, emitter_id: str, log: RateLimitedLog) -> None:
        self._config = config
        self._log = log
        self._header = b'{"schema_version":1,"emitter_id":"' + emitter_id.encode() + b'","events":['
        self._batches: deque[Batch] = deque()
        self.events = 0  # events in the outbox
        self._in_flight: list[Batch] = []
        # While deliveries keep up, records wait in the emitter's queue rather than here.
        self._healthy_events = config.batch_size * (MAX_IN_FLIGHT + 2)
        self.retry_at = 0.0  # > 0 while the transport is failing: no send before this time
        self.sent = 0
        self.failed = 0
        self.retried = 0
        self.batches = 0
        self.dropped: dict[str, int] = {}  # by reason, as `stats()` shows them
        self._unreported: dict[str, int] = {}  # by reason, for the next batch's report
        self._random = random.Random()

    # ------------------------------------------------------------------ state
    @property
    def pending(self) -> bool:
        """True while some batch awaits delivery."""
        return bool(self._batches)

    def may_take(self) -> bool:
        """While deliveries keep up, records wait in the queue (its bound is the back-pressure)
        rather than piling up as serialised batches; while the transport is failing, they are
        drained into the outbox so that its own bound (buffer_events) applies."""
        return self.events < self._healthy_events or self.retry_at > 0

    def wait_s(self, timeout: float) -> float:
        """How long the worker may sleep, at most `timeout`, before there is sending to do."""
        if self._batches and self.retry_at > 0:
            return min(timeout, max(0.001, self.retry_at - time.monotonic()))
        if (
            self._batches
            and len(self._in_flight) < MAX_IN_FLIGHT
            and len(self._in_flight) < len(self._batches)
        ):
            return 0.0  # batches are ready and a slot is free
        return timeout

    # ------------------------------------------------------------------ losses
    def count_drop(self, reason: str, count: int) -> None:
        """Events lost before a batch was sent: shown in `stats()` and reported."""
        self.dropped[reason] = self.dropped.get(reason, 0) + count
        self.report_drop(reason, count)

    def report_drop(self, reason: str, count: int) -> None:
        """Events lost that the platform has yet to be told of (on the next batch)."""
        self._unreported[reason] = self._unreported.get(reason, 0) + count

    def abandon(self, queued: int) -> None:
        """Shutdown ran out of time: what is buffered, and `queued` records, are lost."""
        left = queued + self.events
        self._batches.clear()
        self._in_flight = []
        self.events = 0
        if left:
            self.dropped["shutdown"] = self.dropped.get("shutdown", 0) + left

    # ------------------------------------------------------------------ batching
    def add(self, model: str, encoded: list[bytes]) -> None:
        """Cut encoded events into batches by count and by bytes (no re-encoding).

        The first event of a batch carries the drops not yet reported to the platform.
        """
        header = self._header
        max_bytes = self._config.batch_max_bytes - len(header) - 2
        max_count = self._config.batch_size
        total = len(encoded)
        start = 0
        while start < total:
            report = self._unreported
            if report:  # splice `"dropped": {...}` into the event's closing brace
                encoded[start] = encoded[start][:-1] + b',"dropped":' + dumps(report) + b"}"
                self._unreported = {}
            size = len(encoded[start])
            end = start + 1
            limit = min(total, start + max_count)
            while end < limit:
                size += len(encoded[end]) + 1
                if size > max_bytes:
                    break
                end += 1
            data = header + b",".join(encoded[start:end]) + b"]}"
            self._add_batch(model, data, end - start, report)
            start = end

    def add_block(self, block: Block, pause: Callable[[], None]) -> None:
        """Cut a columnar block (contract v2) into batches by count and by bytes.

        Each batch is encoded once; one over `batch_max_bytes` is halved until it fits. The
        batch carries the drops not yet reported to the platform in its `dropped` field.
        """
        max_bytes = self._config.batch_max_bytes
        max_count = self._config.batch_size
        total = block.count
        start = 0
        while start < total:
            report = self._unreported
            if report:
                self._unreported = {}
            end = min(total, start + max_count)
            data = block.encode(start, end, report, pause)
            while len(data) > max_bytes and end - start > 1:
                end = start + (end - start) // 2
                data = block.encode(start, end, report, pause)
            self._add_batch(block.model, data, end - start, report)
            start = end

    def _add_batch(self, model: str, data: bytes, count: int, report: dict[str, int]) -> None:
        if self.events + count > self._config.buffer_events:
            self._restore_report(report)
            self.count_drop("buffer_full", count)
            self._log.warning("buffer", "inferloop SDK buffer full: dropping %d events", count)
            return
        self._batches.append(Batch(model, data, count, report))
        self.events += count

    # ------------------------------------------------------------------ sending
    def transport_unavailable(self, exc: BaseException) -> None:
        """The transport could not be created: retried like a failed send."""
        if self._batches:
            self._on_failure(self._batches[0], exc)

    def send_each(self, transport: Transport, between_sends: Callable[[], None]) -> None:
        """Plain transports: `send()` returns once delivered, raises otherwise."""
        batches = self._batches
        while batches:
            if time.monotonic() < self.retry_at:
                return
            batch = batches[0]
            try:
                transport.send(batch.data, key=batch.key)
            except Exception as exc:  # noqa: BLE001 - classified in _on_failure
                if not self._on_failure(batch, exc):
                    return
            else:
                self._on_success(batch)
                between_sends()

    def send_pipelined(self, transport: PipeliningTransport, on_done: Callable[[], None]) -> None:
        """Pipelining transports (Kafka): keep up to MAX_IN_FLIGHT batches awaiting acks, so
        that building the next batch overlaps the broker's round trip."""
        self._reap_in_flight()
        in_flight = self._in_flight
        if time.monotonic() < self.retry_at:
            return
        waiting = [
            batch
            for batch in itertools.islice(self._batches, 0, 2 * MAX_IN_FLIGHT)
            if batch.handle is None
        ]
        for batch in waiting:
            if len(in_flight) >= MAX_IN_FLIGHT:
                return
            try:
                batch.handle = transport.submit(batch.data, key=batch.key, on_done=on_done)
            except Exception as exc:  # noqa: BLE001 - classified in _on_failure
                if not self._on_failure(batch, exc):
                    return
            else:
                in_flight.append(batch)

    def _reap_in_flight(self) -> None:
        if not self._in_flight:
            return
        still: list[Batch] = []
        for batch in self._in_flight:
            handle = batch.handle
            if not handle.done:
                still.append(batch)
                continue
            batch.handle = None
            error = handle.error
            if error is None:
                self._on_success(batch)
            else:
                self._on_failure(batch, error)
        self._in_flight = still

    # ------------------------------------------------------------------ outcomes
    def _on_success(self, batch: Batch) -> None:
        self._remove(batch)
        self.sent += batch.count
        self.batches += 1
        self.retry_at = 0.0

    def _on_failure(self, batch: Batch, exc: BaseException) -> bool:
        """Count a failed attempt. True if the batch is done with (the caller may go on)."""
        if isinstance(exc, PartiallyRejected):
            self._on_partly_rejected(batch, exc)
            return True
        if isinstance(exc, PermanentTransportError):
            self._give_up(batch, f"refused: {exc}")
            return True
        now = time.monotonic()
        self.retried += 1
        batch.attempts += 1
        if batch.first_failure is None:
            batch.first_failure = now
        if now - batch.first_failure > self._config.retry_timeout_s:
            self._give_up(batch, f"gave up after {batch.attempts} attempts: {exc!r}")
            return True
        backoff = min(
            self._config.retry_backoff_max_s,
            self._config.retry_backoff_s * (2 ** min(batch.attempts - 1, 16)),
        )
        wait_s = backoff * (0.5 + self._random.random() / 2)
        if isinstance(exc, RetryLater):  # the receiver knows better when it will be back
            wait_s = max(wait_s, exc.after_s)
        self.retry_at = now + wait_s
        self._log.warning("send", "inferloop SDK send failed, will retry: %r", exc)
        return False

    def _on_partly_rejected(self, batch: Batch, refusal: PartiallyRejected) -> None:
        """The receiver stored the batch except the events it names: only those are lost."""
        rejected = {index for index in refusal.indices if 0 <= index < batch.count}
        if len(rejected) == batch.count:
            self._give_up(batch, f"refused: {refusal}")
            return
        self._remove(batch)
        self.sent += batch.count - len(rejected)
        self.batches += 1
        self.retry_at = 0.0  # the receiver answered: the transport works
        if 0 in rejected:  # the drop report rode on the first event, which was not stored
            self._restore_report(batch.report)
        if rejected:
            self.failed += len(rejected)
            self.report_drop(SEND_FAILED, len(rejected))
            self._log.warning(
                "failed",
                "inferloop SDK: the receiver refused %d of a batch's %d events: %s",
                len(rejected),
                batch.count,
                refusal,
            )

    def _remove(self, batch: Batch) -> None:
        if self._batches and self._batches[0] is batch:
            self._batches.popleft()
        else:
            self._batches.remove(batch)
        self.events -= batch.count

    def _give_up(self, batch: Batch, why: str) -> None:
        self._remove(batch)
        self.failed += batch.count
        self._restore_report(batch.report)
        self.report_drop(SEND_FAILED, batch.count)
        self._log.warning(
            "failed", "inferloop SDK dropped a batch of %d events: %s", batch.count, why
        )

    def _restore_report(self, report: dict[str, int]) -> None:
        for reason, count in report.items():
            self.report_drop(reason, count)
