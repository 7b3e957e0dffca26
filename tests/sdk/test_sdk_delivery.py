"""Delivery: retries with backoff, permanent and partial refusals, the buffer bound,
batching by model and size, and the transports' optional capabilities."""

from __future__ import annotations

import time

from waiting import wait_for

from inferloop.sdk import (
    Closeable,
    FileTransport,
    KafkaTransport,
    MemoryTransport,
    PartiallyRejected,
    PermanentTransportError,
    PipeliningTransport,
    configure,
    flush,
    monitor,
    stats,
)
from inferloop.sdk._columns import expand
from inferloop.sdk._serialize import loads


@monitor(model="fraud", version="1")
def predict(x):
    return x


class FlakyTransport:
    """Fails the first `failures` sends with a retryable error, then delivers."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("receiver down")
        self.attempts = 0
        self.batches: list[dict] = []

    def send(self, batch: bytes, *, key: str) -> None:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise self.error
        self.batches.append(expand(loads(batch)))

    @property
    def events(self) -> list[dict]:
        return [event for batch in self.batches for event in batch["events"]]


def test_transport_failure_retried_with_backoff_then_delivered() -> None:
    transport = FlakyTransport(failures=3)
    configure(transport=transport, flush_interval_s=0.01, retry_backoff_s=0.01)
    for i in range(5):
        predict(i)
    assert flush(5)
    current = stats()
    assert current["retried"] == 3
    assert current["sent"] == 5 and current["failed"] == 0
    assert [event["seq"] for event in transport.events] == [0, 1, 2, 3, 4]


def test_permanent_failure_counted_as_failed_and_reported() -> None:
    transport = FlakyTransport(failures=1, error=PermanentTransportError("HTTP 400"))
    configure(transport=transport, flush_interval_s=0.01)
    predict(1)
    wait_for(lambda: stats()["failed"] == 1, timeout=5.0, what="the refused batch")
    predict(2)
    assert flush(5)
    (event,) = transport.events
    assert event["seq"] == 1  # seq 0 was lost: a gap the platform can see
    assert event["dropped"] == {"send_failed": 1}
    assert stats()["retried"] == 0


def test_buffer_bound_drops_and_counts_while_transport_down() -> None:
    transport = FlakyTransport(failures=10**9)
    configure(
        transport=transport,
        flush_interval_s=0.01,
        batch_size=10,
        buffer_events=50,
        retry_backoff_s=0.01,
        retry_backoff_max_s=0.02,
    )
    started = time.perf_counter()
    for i in range(200):
        predict(i)
        if i % 20 == 0:
            time.sleep(0.02)  # let the worker drain into its bounded buffer
    call_time = time.perf_counter() - started
    assert not flush(0.3)  # nothing can be delivered while the receiver is down
    wait_for(lambda: stats()["queue_depth"] == 0, timeout=5.0, what="an empty queue")
    transport.failures = 0  # the receiver recovers
    assert flush(5)
    predict(200)  # one event after the outage makes every gap visible
    assert flush(5)
    current = stats()
    delivered = transport.events
    assert len(delivered) == current["sent"] <= 50 + 1
    dropped = sum(current["dropped"].values())
    assert dropped > 0
    assert len(delivered) + dropped == 201
    seqs = [event["seq"] for event in delivered]
    assert len(set(seqs)) == len(seqs)
    assert max(seqs) + 1 - len(seqs) == current["dropped"].get("buffer_full", 0)
    reported = sum(sum(event.get("dropped", {}).values()) for event in delivered)
    assert reported == dropped
    assert call_time < 1.0 + 10 * 0.02


def test_flush_returns_false_when_transport_cannot_deliver_in_time() -> None:
    configure(transport=FlakyTransport(failures=10**9), flush_interval_s=0.01, retry_backoff_s=0.01)
    predict(1)
    started = time.monotonic()
    assert flush(0.2) is False
    assert time.monotonic() - started < 1.0


def test_batches_hold_one_model_each_and_share_one_sequence() -> None:
    transport = MemoryTransport()
    configure(transport=transport, flush_interval_s=0.05)
    a = monitor(model="a")(lambda x: x)
    b = monitor(model="b")(lambda x: x)
    for i in range(6):
        (a if i % 2 else b)(i)
    assert flush(5)
    for key, batch in zip(transport.keys, transport.batches, strict=True):
        assert {event["model"] for event in batch["events"]} == {key}
    assert sorted(event["seq"] for event in transport.events) == list(range(6))
    assert len({batch["emitter_id"] for batch in transport.batches}) == 1


def test_batches_split_by_size() -> None:
    transport = MemoryTransport()
    configure(transport=transport, flush_interval_s=0.5, batch_size=7)
    for i in range(30):
        predict(i)
    assert flush(5)
    assert all(len(batch["events"]) <= 7 for batch in transport.batches)
    assert len(transport.events) == 30


class ScriptedTransport(FlakyTransport):
    """Raises the given errors on the first sends, in order, then delivers."""

    def __init__(self, *errors: Exception) -> None:
        super().__init__(failures=0)
        self.errors = list(errors)

    def send(self, batch: bytes, *, key: str) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.batches.append(expand(loads(batch)))


def test_partly_rejected_batch_counts_only_the_rejected_events() -> None:
    transport = ScriptedTransport(PartiallyRejected([1, 3], "HTTP 422"))
    configure(transport=transport, flush_interval_s=10)
    for i in range(5):
        predict(i)
    assert flush(5)  # wakes the worker: the five records go as one batch
    predict(5)
    assert flush(5)
    current = stats()
    assert current["failed"] == 2 and current["sent"] == 3 + 1 and current["retried"] == 0
    assert current["batches"] == 2
    (after,) = transport.events  # the partly stored batch is not sent again
    assert after["dropped"] == {"send_failed": 2}


def test_report_on_a_rejected_first_event_is_sent_again() -> None:
    """The drop report rides on a batch's first event: if the receiver refused that event,
    the report was not stored and must go with the next batch."""
    transport = ScriptedTransport(PermanentTransportError("HTTP 400"), PartiallyRejected([0]))
    configure(transport=transport, flush_interval_s=10)
    predict(1)
    assert flush(5)  # refused whole: one event lost, reported on the next batch
    predict(2)
    predict(3)
    assert flush(5)  # its first event, carrying that report, is refused
    predict(4)
    assert flush(5)
    current = stats()
    assert current["failed"] == 2 and current["sent"] == 2
    reported = sum(event.get("dropped", {}).get("send_failed", 0) for event in transport.events)
    assert reported == current["failed"]
    assert transport.events[-1]["dropped"] == {"send_failed": 2}


class PipelinedTransport:
    """Takes batches with `submit` and acknowledges them at once; `send` must not be used."""

    class Ack:
        done = True
        error = None

    def __init__(self) -> None:
        self.batches: list[dict] = []

    def send(self, batch: bytes, *, key: str) -> None:
        raise AssertionError("a pipelining transport is sent to with submit()")

    def submit(self, batch: bytes, *, key: str, on_done=None) -> PipelinedTransport.Ack:
        self.batches.append(expand(loads(batch)))
        if on_done is not None:
            on_done()
        return self.Ack()


def test_transport_capabilities_are_protocols() -> None:
    assert isinstance(KafkaTransport("127.0.0.1:1", "topic"), PipeliningTransport)
    assert isinstance(PipelinedTransport(), PipeliningTransport)
    assert not isinstance(MemoryTransport(), PipeliningTransport)
    assert isinstance(FileTransport(), Closeable)
    assert isinstance(KafkaTransport("127.0.0.1:1", "topic"), Closeable)
    assert not isinstance(MemoryTransport(), Closeable)


def test_pipelining_transport_receives_batches_through_submit() -> None:
    transport = PipelinedTransport()
    configure(transport=transport, flush_interval_s=0.01)
    for i in range(3):
        predict(i)
    assert flush(5)
    assert [event["seq"] for batch in transport.batches for event in batch["events"]] == [0, 1, 2]
    assert stats()["sent"] == 3
