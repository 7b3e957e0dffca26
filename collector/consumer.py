"""The Kafka collector: one member of a consumer group feeding the ingest pipeline.

Delivery: offsets are committed only after the batch's database transaction
commits. A crash between the two redelivers the batch, and the idempotent
writes make the redelivery a no-op, so every event lands in the store once.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from inferloop.settings import Settings
from inferloop.store import create_engine_for

from .health import CollectorHealth, serve_health
from .label_records import prepare_with_labels
from .metrics import IngestMetrics
from .pipeline import BATCH_GC_THRESHOLD, IngestPipeline, IngestResult, InputMessage, PreparedBatch
from .rejection import Rejection

logger = logging.getLogger(__name__)

MAX_DEAD_LETTER_TOPIC_BYTES = 512 * 1024
"""Raw bytes republished per dead letter (brokers refuse ~1 MB+ messages by default)."""
REPORT_INTERVAL_S = 10.0
_RETRY_DELAY_S = 1.0
_POLL_RETRY_S = 0.5
RECONNECT_BACKOFF_MAX_MS = 1_000
"""kafka-python backs off reconnecting up to 30 s by default, so a broker restarted after a
10 s outage was found again only ~25 s after it came back; 1 s, as the SDK's producer uses."""
COMMIT_TIMEOUT_MS = 10_000
"""How long an offset commit may block the poll loop. Unbounded, a commit to a stopped
broker held the loop (and the group heartbeat's rejoin) for tens of seconds; a commit that
times out is only a redelivery later, which the idempotent store absorbs."""


class DeadLetterTopic:
    """Publishes rejected input to the dead-letter topic, raw bytes with the reason in headers."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic

    def __call__(self, records: Sequence[Rejection]) -> None:
        for record in records:
            headers = [
                ("inferloop.reason", record.reason.encode()),
                ("inferloop.reason_code", record.code.value.encode()),
                ("inferloop.source", record.source.encode()),
                ("inferloop.event_index", str(record.event_index).encode()),
            ]
            if record.topic is not None:
                headers.append(
                    (
                        "inferloop.origin",
                        f"{record.topic}/{record.partition}/{record.offset}".encode(),
                    )
                )
            raw = record.raw
            if len(raw) > MAX_DEAD_LETTER_TOPIC_BYTES:
                headers.append(("inferloop.truncated_from", str(len(raw)).encode()))
                raw = raw[:MAX_DEAD_LETTER_TOPIC_BYTES]
            self.producer.send(self.topic, value=raw, headers=headers)
        # Published before the store commits: a crash afterwards republishes (at-least-once).
        self.producer.flush()


class _Reporter:
    """Logs rate, lag, dead letters and batch timings every REPORT_INTERVAL_S."""

    def __init__(self) -> None:
        self.window_started = time.monotonic()
        self.events = 0
        self.dead_letters = 0
        self.batches = 0
        self.batch_seconds = 0.0

    def add(self, events: int, dead_letters: int, seconds: float) -> None:
        self.events += events
        self.dead_letters += dead_letters
        self.batches += 1
        self.batch_seconds += seconds

    def maybe_report(self, lag: int) -> None:
        elapsed = time.monotonic() - self.window_started
        if elapsed < REPORT_INTERVAL_S:
            return
        logger.info(
            "collector: %.0f events/s, lag %d messages, %d dead letters, %d batches, "
            "%.1f ms mean batch",
            self.events / elapsed,
            lag,
            self.dead_letters,
            self.batches,
            1000 * self.batch_seconds / max(self.batches, 1),
        )
        self.__init__()


def crc_checks_are_cheap() -> bool:
    """kafka-python verifies record CRC32C in pure Python unless the C ``crc32c``
    package is installed; the pure-Python check costs ~10x the rest of ingest."""
    try:
        import crc32c  # noqa: F401
    except ImportError:
        return False
    return True


def _update_lag(
    consumer: KafkaConsumer, positions: dict[TopicPartition, int], metrics: IngestMetrics
) -> int:
    """Lag per assigned partition from what this process already knows: the highwater of
    the last fetch and the offset after the last record it polled. No network call:
    `consumer.position()` asks the broker, and raised out of the loop (stopping the
    collector) when the broker went away between two polls."""
    total = 0
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        position = positions.get(partition)
        if highwater is None or position is None:
            continue
        lag = max(highwater - position, 0)
        metrics.consumer_lag.labels(partition.topic, str(partition.partition)).set(lag)
        total += lag
    return total


def run_collector(
    settings: Settings,
    *,
    stop_event: threading.Event | None = None,
    metrics: IngestMetrics | None = None,
) -> None:
    """Consume ``settings.kafka_topic`` as a member of ``settings.kafka_group_id`` until stopped.

    Also consumes ``settings.kafka_labels_topic``: plain label records
    (``label_records.py``), stored under the same guarantee as events.

    Blocks. Returns once ``stop_event`` is set (the caller sets it from its
    SIGTERM/SIGINT handler). The schema must already be migrated. Tuning comes
    from ``settings.collector`` (``INFERLOOP_COLLECTOR__*``):

    ``check_crcs``: verify Kafka record checksums on the consumer. Default: only
    when the C ``crc32c`` package is installed (the broker already verified them
    on produce, and TCP protects the fetch; the pure-Python check is the
    bottleneck otherwise).

    ``metrics_port``: serve this process's Prometheus metrics (lag, rates, dead
    letters, batch timings) on ``http://<settings.host>:<metrics_port>/metrics``, and
    its probes on ``/readyz`` (503 while the store or the broker fails) and ``/healthz``.
    """
    tuning = settings.collector
    check_crcs = tuning.check_crcs
    if check_crcs is None:
        check_crcs = crc_checks_are_cheap()
        if not check_crcs:
            logger.warning(
                "consumer CRC checks are off: install the `crc32c` package to have them cheaply"
            )
    stop_event = stop_event or threading.Event()
    metrics = metrics or IngestMetrics()
    health = CollectorHealth()
    metrics_server = None
    if tuning.metrics_port is not None:
        metrics_server = serve_health(settings.host, tuning.metrics_port, metrics.registry, health)
    engine = create_engine_for(settings.resolved_database_url())
    producer = KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        acks="all",
        max_request_size=16 * 1024 * 1024,
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )
    consumer = KafkaConsumer(
        settings.kafka_topic,
        settings.kafka_labels_topic,
        bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
        group_id=settings.kafka_group_id,
        client_id=tuning.client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=tuning.max_poll_records,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
        session_timeout_ms=tuning.session_timeout_ms,
        check_crcs=check_crcs,
        heartbeat_interval_ms=max(tuning.session_timeout_ms // 4, 500),
        reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
    )
    pipeline = IngestPipeline(
        engine,
        metrics=metrics,
        dead_letter_sink=DeadLetterTopic(producer, settings.kafka_dead_letter_topic),
        max_message_bytes=tuning.max_message_bytes,
    )
    metrics.store_up.labels("kafka").set(1)  # until a write fails
    reporter = _Reporter()
    # One writer thread: the next batch is decoded and validated here while the
    # database works on the previous one (psycopg/sqlite3 release the GIL).
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inferloop-store")
    in_flight: _InFlight | None = None
    positions: dict[TopicPartition, int] = {}  # the offset after the last record polled
    logger.info(
        "collector joined group %s on %s and %s",
        settings.kafka_group_id,
        settings.kafka_topic,
        settings.kafka_labels_topic,
    )
    gc_threshold = gc.get_threshold()
    gc.set_threshold(BATCH_GC_THRESHOLD, *gc_threshold[1:])
    try:
        while not stop_event.is_set():
            try:
                polled = consumer.poll(timeout_ms=50 if in_flight else 500)
            except KafkaError as error:  # the broker is away: wait for it, keep what is in flight
                health.broker_failed(error)
                logger.warning("polling failed (%s); retrying in %.1f s", error, _POLL_RETRY_S)
                stop_event.wait(_POLL_RETRY_S)
                continue
            health.broker_ok()
            if polled:
                messages, offsets = _to_messages(polled)
                positions.update((partition, meta.offset) for partition, meta in offsets.items())
                prepared = prepare_with_labels(
                    pipeline,
                    messages,
                    labels_topic=settings.kafka_labels_topic,
                    source="kafka",
                    now_ns=time.time_ns(),
                )
                if not _finish(consumer, in_flight, reporter):
                    in_flight = None
                    break  # nothing after an unstored batch may be committed
                future = writer.submit(_store_until_done, pipeline, prepared, health, stop_event)
                in_flight = _InFlight(future, offsets)
            else:
                stored = _finish(consumer, in_flight, reporter)
                in_flight = None
                if not stored:
                    break
            reporter.maybe_report(_update_lag(consumer, positions, metrics))
        _finish(consumer, in_flight, reporter)
    finally:
        gc.set_threshold(*gc_threshold)
        writer.shutdown(wait=True)
        try:
            consumer.close(autocommit=False)
        finally:
            producer.close(timeout=5)
            engine.dispose()
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
        logger.info("collector stopped")


@dataclass(frozen=True, slots=True)
class _InFlight:
    future: Future[IngestResult | None]
    offsets: dict[TopicPartition, OffsetAndMetadata]


def _to_messages(polled) -> tuple[list[InputMessage], dict[TopicPartition, OffsetAndMetadata]]:
    messages: list[InputMessage] = []
    offsets: dict[TopicPartition, OffsetAndMetadata] = {}
    for partition, records in polled.items():
        for record in records:
            messages.append(
                InputMessage(record.value, record.topic, record.partition, record.offset)
            )
        offsets[partition] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
    return messages, offsets


def _store_until_done(
    pipeline: IngestPipeline,
    prepared: PreparedBatch,
    health: CollectorHealth,
    stop_event: threading.Event,
) -> IngestResult | None:
    """Store the batch, retrying while the store is down; no offset moves meanwhile, and
    ``inferloop_ingest_store_up{source="kafka"}`` reads 0 (``/readyz`` 503) until a retry
    succeeds."""
    store_up = pipeline.metrics.store_up.labels("kafka")
    while True:
        try:
            result = pipeline.store(prepared)
        except Exception as error:  # the store is down or unreachable: wait, keep the batch
            store_up.set(0)
            health.store_failed(error)
            pipeline.metrics.store_unavailable.labels("kafka").inc()
            logger.exception("storing a batch failed; retrying in %.0f s", _RETRY_DELAY_S)
            if stop_event.wait(_RETRY_DELAY_S):
                return None  # uncommitted: the next owner of these partitions redelivers them
        else:
            store_up.set(1)
            health.store_ok()
            return result


def _finish(consumer: KafkaConsumer, in_flight: _InFlight | None, reporter: _Reporter) -> bool:
    """Wait for the batch being stored, then commit its offsets (never before).

    False when the batch was abandoned unstored (stop requested while the
    store was down): then no later offset may be committed either.
    """
    if in_flight is None:
        return True
    result = in_flight.future.result()
    if result is None:
        return False
    reporter.add(result.stored + result.duplicates, len(result.rejections), result.seconds)
    try:
        consumer.commit(in_flight.offsets, timeout_ms=COMMIT_TIMEOUT_MS)
    except (CommitFailedError, KafkaError) as error:
        # The group rebalanced while we were writing; the new owner redelivers
        # these records and the idempotent store ignores them.
        logger.warning("offset commit failed (%s); records will be redelivered", error)
    return True
