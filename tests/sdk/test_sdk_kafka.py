"""Kafka transport on the real broker: exactly-once arrival, outage and recovery, fork.

The outage is simulated by a TCP proxy in front of the shared broker. The broker advertises
127.0.0.1:19092, so kafka-python would bypass a plain proxy after bootstrap; this one
rewrites the advertised port in the broker's responses (same byte length, so frames stay
valid) so that every connection goes through it, and cutting it is a real outage.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import statistics
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from waiting import wait_for

from inferloop.sdk import configure, events_of, flush, monitor, shutdown, stats

pytestmark = [
    pytest.mark.kafka,
    # kafka-python 3 leaves the sockets of refused connection attempts for the garbage
    # collector; the proxy fixture collects them inside the test so that they are filtered here.
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


class CuttableKafkaProxy:
    """A real socket forwarder on 127.0.0.1 that can be cut (connections refused) and restored."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self._listener = self._listen(0)
        self.port = self._listener.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._advertised = host.encode() + struct.pack(">i", int(port))
        self._rewritten = host.encode() + struct.pack(">i", self.port)
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._start_accepting()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _start_accepting(self) -> None:
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe_raw, args=(client, server), daemon=True).start()
            threading.Thread(
                target=self._pipe_responses, args=(server, client), daemon=True
            ).start()

    @staticmethod
    def _read_exactly(sock: socket.socket, size: int) -> bytes:
        chunks = []
        while size:
            chunk = sock.recv(size)
            if not chunk:
                raise ConnectionError("closed")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def _pipe_raw(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close_pair(source, sink)

    def _pipe_responses(self, source: socket.socket, sink: socket.socket) -> None:
        """Kafka responses are size-prefixed frames: rewrite the advertised port in each."""
        try:
            while True:
                header = self._read_exactly(source, 4)
                body = self._read_exactly(source, struct.unpack(">i", header)[0])
                sink.sendall(header + body.replace(self._advertised, self._rewritten))
        except (OSError, ConnectionError):
            pass
        self._close_pair(source, sink)

    @staticmethod
    def _close_pair(*sockets: socket.socket) -> None:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        """Refuse new connections and break the open ones, like a broker going away."""
        self._close_pair(self._listener)  # shutdown() wakes the thread blocked in accept()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        self._close_pair(*sockets)

    def restore(self) -> None:
        self._listener = self._listen(self.port)
        self._start_accepting()

    def close(self) -> None:
        self.cut()


@pytest.fixture
def proxy(kafka_bootstrap: str) -> Iterator[CuttableKafkaProxy]:
    # kafka-python logs refused connections with the exception as an argument; pytest keeps
    # those records (and through them the unclosed sockets) until the session ends.
    kafka_logger = logging.getLogger("kafka")
    level = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    forwarder = CuttableKafkaProxy(kafka_bootstrap)
    yield forwarder
    shutdown(timeout=2.0)
    forwarder.close()
    gc.collect()
    kafka_logger.setLevel(level)


def consume_events(
    bootstrap: str, topic: str, expected: int, timeout_s: float = 60.0
) -> tuple[list[dict[str, Any]], list[bytes]]:
    """Read the topic from the beginning until `expected` events arrived (fail if too slow)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2_000,
    )
    events: list[dict[str, Any]] = []
    keys: list[bytes] = []

    def read_until_expected() -> bool:
        for message in consumer:  # returns after 2 s without a message
            batch = events_of(message.value)
            assert len({event["model"] for event in batch}) == 1
            assert message.key == batch[0]["model"].encode()
            keys.append(message.key)
            events.extend(batch)
            if len(events) >= expected:
                break
        return len(events) >= expected

    try:
        wait_for(read_until_expected, timeout=timeout_s, what=f"{expected} events on {topic}")
        # Give a duplicate a moment to show up, should there be one.
        events.extend(
            event
            for message in consumer.poll(timeout_ms=500).values()
            for record in message
            for event in events_of(record.value)
        )
    finally:
        consumer.close()
    return events, keys


@monitor(model="fraud", version="1")
def predict(x):
    return x


def test_100k_events_from_8_threads_arrive_exactly_once(
    kafka_bootstrap: str, make_topic: Callable[..., str]
) -> None:
    topic = make_topic(partitions=3)
    configure(
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=topic,
        queue_size=200_000,
        flush_interval_s=0.05,
    )
    per_thread = 12_500

    def work(offset: int) -> None:
        for i in range(per_thread):
            predict(offset + i)

    threads = [threading.Thread(target=work, args=(n * per_thread,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert flush(120), stats()
    current = stats()
    assert current["sent"] == 100_000 and current["dropped"] == {} and current["failed"] == 0
    events, _ = consume_events(kafka_bootstrap, topic, 100_000)
    emitter_ids = {event["emitter_id"] for event in events}
    assert emitter_ids == {current["emitter_id"]}
    seqs = sorted(event["seq"] for event in events)
    assert seqs == list(range(100_000))  # every event once: no gap, no duplicate
    assert sorted(event["inputs"]["rows"][0]["value"] for event in events) == list(range(100_000))


def test_broker_unreachable_at_start_then_delivered(
    kafka_bootstrap: str, kafka_topic: str, proxy: CuttableKafkaProxy
) -> None:
    proxy.cut()
    configure(
        transport="kafka",
        kafka_bootstrap_servers=proxy.address,
        kafka_topic=kafka_topic,
        flush_interval_s=0.05,
        retry_backoff_max_s=0.5,
    )
    started = time.perf_counter()
    for i in range(500):
        predict(i)
    assert time.perf_counter() - started < 0.5  # kafka-python's 30 s bootstrap is not on this path
    assert not flush(2.5)
    assert stats()["sent"] == 0
    proxy.restore()
    assert flush(60), stats()
    events, _ = consume_events(kafka_bootstrap, kafka_topic, 500)
    assert sorted(event["seq"] for event in events) == list(range(500))


@pytest.mark.slow
def test_broker_outage_mid_stream_buffers_then_delivers_and_counts_drops(
    kafka_bootstrap: str, kafka_topic: str, proxy: CuttableKafkaProxy
) -> None:
    buffer_bound = 8_000
    configure(
        transport="kafka",
        kafka_bootstrap_servers=proxy.address,
        kafka_topic=kafka_topic,
        flush_interval_s=0.05,
        queue_size=4_000,
        buffer_events=buffer_bound,
        batch_size=500,
        retry_backoff_max_s=1.0,
    )
    rate_per_s = 1_000
    call_ns: list[int] = []
    calls = 0

    def drive(seconds: float) -> None:
        nonlocal calls
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(rate_per_s // 100):
                started = time.perf_counter_ns()
                predict(calls)
                call_ns.append(time.perf_counter_ns() - started)
                calls += 1
            time.sleep(0.01)

    drive(3)
    assert flush(30)
    before_outage = stats()["sent"]
    assert before_outage == calls
    proxy.cut()
    outage_start = len(call_ns)
    drive(20)
    outage_ns = call_ns[outage_start:]
    proxy.restore()
    drive(3)
    assert flush(60), stats()
    current = stats()
    dropped = sum(current["dropped"].values())
    assert current["sent"] + dropped == calls
    assert dropped > 0  # 20 s at 1,000/s exceeds the 8,000-event buffer + 4,000-record queue
    assert current["sent"] >= before_outage + buffer_bound  # the whole buffer was delivered
    events, _ = consume_events(kafka_bootstrap, kafka_topic, current["sent"])
    unique = {(event["emitter_id"], event["seq"]) for event in events}
    assert len(unique) == current["sent"]  # every accepted event arrived (duplicates allowed)
    seqs = sorted(seq for _, seq in unique)
    gaps = seqs[-1] + 1 - len(seqs)
    assert gaps == current["dropped"].get("buffer_full", 0) + current["dropped"].get(
        "send_failed", 0
    )
    reported: dict[str, int] = {}
    for event in {(e["emitter_id"], e["seq"]): e for e in events}.values():
        for reason, count in event.get("dropped", {}).items():
            reported[reason] = reported.get(reason, 0) + count
    assert reported == current["dropped"]  # the platform is told exactly what was lost
    # The serving path did not notice the outage.
    assert statistics.median(outage_ns) < 20_000
    assert sorted(outage_ns)[int(len(outage_ns) * 0.99)] < 200_000


def test_forked_child_emits_and_delivers(kafka_bootstrap: str, kafka_topic: str) -> None:
    configure(
        transport="kafka",
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=kafka_topic,
        flush_interval_s=0.05,
    )
    predict("parent")
    assert flush(30)
    parent_id = stats()["emitter_id"]
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            for i in range(100):
                predict(f"child-{i}")
            code = 0 if flush(30) and stats()["sent"] == 100 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    events, _ = consume_events(kafka_bootstrap, kafka_topic, 101)
    child = [event for event in events if event["emitter_id"] != parent_id]
    assert len(child) == 100
    assert sorted(event["seq"] for event in child) == list(range(100))
    assert {event["emitter_id"] for event in events} == {parent_id, child[0]["emitter_id"]}
