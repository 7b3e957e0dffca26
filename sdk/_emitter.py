"""The emitter: a bounded queue filled by serving threads, drained by one daemon worker.

The serving thread only appends a record (see `_monitor` and `_record`). The worker turns
records into events (`_events`), hands them to delivery (`_delivery`: batching, sending,
retrying, counting losses) and owns the lifecycle: start, flush, shutdown, the transport.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _cuda
from ._columns import ColumnBuilder, Segments
from ._config import SDKConfig
from ._delivery import Outbox
from ._events import EventBuilder
from ._gil import GilRelease
from ._ids import new_emitter_id
from ._log import RateLimitedLog
from ._record import LabelRecord, Record
from ._transports import Closeable, PipeliningTransport, Transport

# Records built between two releases of the GIL (see `_gil`). CPython hands the GIL to a
# waiting thread only every `sys.getswitchinterval()` (5 ms) unless the holder lets it go,
# so a drain of two batches (about 1,000 records at ~10 µs) would stall a serving thread
# for milliseconds. v1 events cost ~10 µs each to build, columns well under 1 µs a call
# plus ~25 µs a slice, so the queue is taken COLUMN_SLICE records at a time and what needs
# the v1 path is built DRAIN_SLICE records between two releases.
DRAIN_SLICE = 32
COLUMN_SLICE = 128


class Emitter:
    """Owns the queue, the worker thread, the transport and the counters of one process."""

    def __init__(self, config: SDKConfig, transport_factory: Callable[[], Transport]) -> None:
        self.config = config
        self._transport_factory = transport_factory
        self._transport: Transport | None = None
        self._pipelining: PipeliningTransport | None = None  # the transport, if it pipelines
        self.emitter_id = new_emitter_id()
        self._log = RateLimitedLog()
        self._release_gil = GilRelease()  # called by the worker only, between slices
        self._builder = EventBuilder(config, self.emitter_id, self._log)
        self._outbox = Outbox(config, self.emitter_id, self._log)
        self._columns = ColumnBuilder(
            emitter_id=self.emitter_id,
            environment=config.environment,
            start_base_ns=self._builder.epoch_offset_ns,
            payload_max_bytes=config.payload_max_bytes,
            take_seqs=self._builder.take_seqs,
            enabled=config.sample_rate >= 1.0 and not self._builder.redacting,
        )
        # Hot-path attributes: read by `_monitor` wrappers on every call.
        self.prediction_prefix = self._builder.prediction_prefix
        self.queue: deque[Record] = deque()
        self.queue_limit = config.queue_size
        self.wake_at = config.batch_size
        self.prediction_numbers = itertools.count()
        self.wake = threading.Event()
        self.cuda_active = _cuda.cuda_in_use()  # refreshed by the worker about once a second
        self._cuda_checked = time.monotonic()

        # Serving threads count queue-full drops with next() on an itertools.count: one C call,
        # atomic under the GIL, no lock even on the drop path.
        self._queue_full_counter = itertools.count()
        self.drop_queue_full = self._queue_full_counter.__next__
        self._queue_full_reported = 0
        self._drained = 0
        self._internal_errors = 0  # the worker's own; the builder counts payload failures
        self._idle = threading.Condition()
        self._idle_generation = 0
        self._flush_waiters = 0
        self._stopping = False
        self._abandon = False
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inferloop-sdk-emitter", daemon=True)
        self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything enqueued before this call is sent (or given up). True if so."""
        if self._thread is None or not self._thread.is_alive():
            return not self.queue and not self._outbox.pending
        deadline = time.monotonic() + timeout
        with self._idle:
            self._flush_waiters += 1
            target = self._idle_generation + 2  # one full idle cycle after this call began
            try:
                self.wake.set()
                while self._idle_generation < target:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._idle.wait(min(remaining, 0.05))
                    self.wake.set()
                return True
            finally:
                self._flush_waiters -= 1

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Flush, then stop the worker and close the transport. True if all was delivered."""
        started = time.monotonic()
        delivered = self.flush(timeout)
        # Out of time: the worker stops after its current step and what is left is abandoned,
        # so that an unreachable receiver cannot hold up the host's exit.
        self._abandon = not delivered
        self._stopping = True
        self.wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            # Only what is left of `timeout`: a worker stuck in a send (a receiver that
            # never answers) is a daemon thread and is left behind, not waited for.
            self._thread.join(max(0.0, timeout - (time.monotonic() - started)))
        return delivered

    # ------------------------------------------------------------------ serving-thread side
    def queue_full_drops(self) -> int:
        """Records the serving threads could not enqueue (read without stopping them)."""
        return int(repr(self._queue_full_counter)[len("count(") : -1])

    def enqueue_label(self, prediction_id: str, label: Any, model: str) -> None:
        if len(self.queue) < self.queue_limit:
            self.queue.append(LabelRecord(time.time_ns(), model, prediction_id, label))
        else:
            self.drop_queue_full()

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        outbox = self._outbox
        queue_full = self.queue_full_drops()
        dropped = dict(outbox.dropped)
        if queue_full:
            dropped["queue_full"] = queue_full
        depth = len(self.queue)
        return {
            "emitter_id": self.emitter_id,
            "enqueued": self._drained + depth,
            "sent": outbox.sent,
            "dropped": dropped,
            "failed": outbox.failed,
            "retried": outbox.retried,
            "queue_depth": depth,
            "buffered": outbox.events,
            "batches": outbox.batches,
            "internal_errors": self._internal_errors + self._builder.internal_errors,
        }

    # ------------------------------------------------------------------ worker
    def _run(self) -> None:
        outbox = self._outbox
        while True:
            try:
                self._cycle()
            except Exception as exc:  # noqa: BLE001 - the worker must survive its own bugs
                self._internal_errors += 1
                self._log.warning("worker", "inferloop SDK worker error: %r", exc)
                time.sleep(0.05)
            if self._stopping and (
                self._abandon
                or (not self.queue and not outbox.pending)
                or outbox.retry_at > time.monotonic()
            ):
                break
        if self._abandon:
            outbox.abandon(len(self.queue))
            self.queue.clear()
        self._close_transport()

    def _cycle(self) -> None:
        self.wake.clear()  # before looking at the state: a wake-up after this is never lost
        outbox = self._outbox
        if time.monotonic() - self._cuda_checked > 1.0:
            self.cuda_active = _cuda.cuda_in_use()
            self._cuda_checked = time.monotonic()
        if outbox.may_take():
            self._drain(limit=self.config.batch_size * 2)
        self._send_ready()
        if not self.queue and not outbox.pending:
            with self._idle:
                self._idle_generation += 1
                self._idle.notify_all()
        if self._stopping:
            return
        if len(self.queue) >= self.wake_at and outbox.may_take():
            return
        timeout = 0.002 if self._flush_waiters else self.config.flush_interval_s
        self.wake.wait(outbox.wait_s(timeout))

    def _drain(self, limit: int) -> None:
        """Turn queued records into batches, handed to delivery one model at a time.

        Taken in slices of COLUMN_SLICE records (DRAIN_SLICE for those built as v1 events)
        with the GIL released between them. The common calls become columns (`_columns`, contract v2), the others v1 events; both
        are gathered across slices, so the batches stay as full as before."""
        queue = self.queue
        build = self._builder.build
        take = self._columns.take
        segments: Segments = {}  # per model, in call order: Blocks and lists of v1 events
        taken = 0
        popleft = queue.popleft
        pause = self._release_gil
        pause.begin()
        while taken < limit and not self._abandon:
            # Only this thread pops, so the queue holds at least `size` records.
            size = min(COLUMN_SLICE, limit - taken, len(queue))
            if size <= 0:
                break
            chunk = [popleft() for _ in range(size)]
            taken += size
            try:
                others = take(chunk, segments)
            except Exception as exc:  # noqa: BLE001 - the v1 path can still build them
                self._internal_errors += 1
                self._log.warning("columns", "inferloop SDK columnar build failed: %r", exc)
                others = chunk
            for built, record in enumerate(others, 1):
                if not built % DRAIN_SLICE:
                    pause()
                try:
                    model, event = build(record)
                except Exception as exc:  # noqa: BLE001 - a bad record must not stop the others
                    self._outbox.count_drop("internal_error", 1)
                    self._internal_errors += 1
                    self._log.warning("build", "inferloop SDK could not build an event: %r", exc)
                    continue
                model_segments = segments.get(model)
                if model_segments is None:
                    segments[model] = [[event]]
                elif type(model_segments[-1]) is list:
                    model_segments[-1].append(event)
                else:
                    model_segments.append([event])
            pause()  # let serving threads run between slices (see DRAIN_SLICE)
        self._drained += taken
        queue_full = self.queue_full_drops()
        if queue_full > self._queue_full_reported:
            self._outbox.report_drop("queue_full", queue_full - self._queue_full_reported)
            self._queue_full_reported = queue_full
        outbox = self._outbox
        for model, model_segments in segments.items():
            for segment in model_segments:
                if type(segment) is list:
                    outbox.add(model, segment)
                    continue
                try:
                    outbox.add_block(segment, pause)
                except Exception as exc:  # noqa: BLE001 - counted as lost, never raised
                    outbox.count_drop("internal_error", segment.count)
                    self._internal_errors += 1
                    self._log.warning("encode", "inferloop SDK could not encode a batch: %r", exc)

    def _drain_if_due(self) -> None:
        """Between two sends: keep draining, so that serving threads never find a full queue
        just because the outbox is long."""
        if len(self.queue) >= self.wake_at and self._outbox.may_take():
            self._drain(limit=self.config.batch_size * 2)

    def _send_ready(self) -> None:
        if self._transport is None:
            try:
                transport = self._transport_factory()
            except Exception as exc:  # noqa: BLE001 - retried like a failed send
                self._outbox.transport_unavailable(exc)
                return
            self._transport = transport
            # Its capabilities are fixed: looked up once, not per batch.
            if isinstance(transport, PipeliningTransport):
                self._pipelining = transport
        if self._pipelining is not None:
            self._outbox.send_pipelined(self._pipelining, self.wake.set)
        else:
            self._outbox.send_each(self._transport, self._drain_if_due)

    def _close_transport(self) -> None:
        transport = self._transport
        if isinstance(transport, Closeable):
            try:
                transport.close()
            except Exception as exc:  # noqa: BLE001
                self._log.warning("close", "inferloop SDK transport close failed: %r", exc)
