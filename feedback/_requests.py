"""The request outbox and its dispatcher: CloudEvents to a signed webhook, a Kafka topic, or a
local command.

A request is enqueued in the transaction that made the decision, one row per destination,
keyed by the CloudEvent id, so the decision and its request commit together or not at all.
The dispatcher claims due rows under a lease, sends outside any transaction, and settles a
row only while it still holds the lease. A dispatcher killed between sending and settling
leaves the lease to expire; the next one re-sends once, with the same id, so a receiver
sees a request at least once and can drop the duplicate by id. Failed sends back off as the
alert dispatcher does (`Retry-After`, else full jitter) until the destination's deadline.
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from inferloop.alerts import DeliveryOutcome, OutcomeKind, RetryPolicy, _http, next_attempt_ns
from inferloop.alerts._webhook import classify, decode_secret, sign
from inferloop.periodic import PeriodicThread
from inferloop.store import feedback_queries as queries

from ._cloudevents import EVENT_CONTENT_TYPE, event_bytes

logger = logging.getLogger(__name__)
NS = 1_000_000_000


def enqueue_request(
    connection: sa.Connection,
    event: Mapping[str, Any],
    *,
    model: str,
    destinations: Sequence[str],
    now_ns: int,
) -> int:
    """Queue a CloudEvent for each destination; returns how many rows were new (0 when the
    same decision was already queued: enqueueing twice is a no-op)."""
    return queries.enqueue_requests(
        connection,
        [
            {
                "id": event["id"],
                "destination": destination,
                "type": event["type"],
                "subject": event["subject"],
                "model": model,
                "event": dict(event),
                "created_at_ns": now_ns,
            }
            for destination in destinations
        ],
    )


class Destination(Protocol):
    """Anything that delivers one CloudEvent once and says how it went."""

    def send(self, event: Mapping[str, Any], *, timeout_s: float) -> DeliveryOutcome: ...


class WebhookDestination:
    """POSTs the CloudEvent (structured mode), signed per Standard Webhooks: `webhook-id` is
    the CloudEvent id, so a receiver that dedupes on either sees one request."""

    def __init__(
        self,
        *,
        url: str,
        secrets: Sequence[str],
        clock: Callable[[], float] = time.time,
        transport: Any = None,
    ) -> None:
        self._url = _http.validate_url(url, what="request webhook url")
        if isinstance(secrets, str) or not 1 <= len(secrets) <= 2:
            raise ValueError("a webhook takes one whsec_ secret, or two during a rotation")
        self._keys = tuple(decode_secret(s) for s in secrets)
        self._secrets = (url, *secrets)
        self._clock = clock
        self._transport = transport

    def __repr__(self) -> str:
        return f"WebhookDestination(host={_http.host_of(self._url)!r})"

    def send(self, event: Mapping[str, Any], *, timeout_s: float) -> DeliveryOutcome:
        body = event_bytes(event)
        timestamp = int(self._clock())
        headers = {
            "content-type": EVENT_CONTENT_TYPE,
            "user-agent": "inferloop-feedback",
            "webhook-id": event["id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._keys, event["id"], timestamp, body),
        }
        reply = _http.post(
            self._url,
            content=body,
            headers=headers,
            timeout_s=timeout_s,
            secrets=self._secrets,
            transport=self._transport,
        )
        return classify(reply, secrets=self._secrets)


class KafkaDestination:
    """Produces the CloudEvent to a topic with acks=all, keyed by subject (one partition per
    model version keeps its requests in order); the `ce_id` header repeats the id."""

    def __init__(self, *, bootstrap_servers: str, topic: str, client_id: str = "inferloop") -> None:
        if not topic:
            raise ValueError("a Kafka destination needs a topic")
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.client_id = client_id
        self._producer: Any = None

    def _connect(self, timeout_s: float) -> Any:
        if self._producer is None:
            from kafka import KafkaProducer

            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                acks="all",
                max_block_ms=int(timeout_s * 1000),
                request_timeout_ms=int(timeout_s * 1000),
            )
        return self._producer

    def send(self, event: Mapping[str, Any], *, timeout_s: float) -> DeliveryOutcome:
        from kafka.errors import KafkaError

        started = time.perf_counter()
        try:
            producer = self._connect(timeout_s)
            future = producer.send(
                self.topic,
                key=str(event["subject"]).encode(),
                value=event_bytes(event),
                headers=[
                    ("content-type", EVENT_CONTENT_TYPE.encode()),
                    ("ce_id", str(event["id"]).encode()),
                    ("ce_type", str(event["type"]).encode()),
                ],
            )
            future.get(timeout=timeout_s)
        except KafkaError as error:
            detail = f"{type(error).__name__}: {error}"[:300]
            latency = time.perf_counter() - started
            return DeliveryOutcome(OutcomeKind.RETRY, detail=detail, latency_s=latency)
        latency = time.perf_counter() - started
        return DeliveryOutcome(OutcomeKind.DELIVERED, latency_s=latency)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


class CommandDestination:
    """Runs a local command with the CloudEvent JSON on stdin; exit 0 is delivered.

    The command is an argument list, never a shell string, so nothing in an event is
    interpreted; the event id is also in `CE_ID` for a script that dedupes.
    """

    def __init__(self, *, argv: Sequence[str]) -> None:
        if isinstance(argv, str) or not argv:
            raise ValueError("a command destination takes an argument list, not a string")
        self.argv = tuple(argv)

    def send(self, event: Mapping[str, Any], *, timeout_s: float) -> DeliveryOutcome:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                self.argv,
                input=event_bytes(event),
                capture_output=True,
                timeout=timeout_s,
                env={**os.environ, "CE_ID": str(event["id"]), "CE_TYPE": str(event["type"])},
                check=False,
            )
        except FileNotFoundError:
            return DeliveryOutcome(OutcomeKind.PERMANENT, detail=f"no command {self.argv[0]!r}")
        except subprocess.TimeoutExpired:
            return DeliveryOutcome(OutcomeKind.RETRY, detail=f"timed out after {timeout_s}s")
        latency = time.perf_counter() - started
        if done.returncode == 0:
            return DeliveryOutcome(OutcomeKind.DELIVERED, latency_s=latency)
        stderr = " ".join(done.stderr.decode(errors="replace").split())[:300]
        return DeliveryOutcome(
            OutcomeKind.RETRY, detail=f"exit {done.returncode}: {stderr}", latency_s=latency
        )


class RequestDispatcher:
    """`run_once()` sends what is due; `start()`/`stop()` run it in a named thread.

    `destinations` maps the names rows were enqueued with to their senders; `clock` returns
    Unix nanoseconds (the tests' seam); `rng` drives the back-off jitter.
    """

    def __init__(
        self,
        engine: Engine,
        destinations: Mapping[str, Destination],
        *,
        policies: Mapping[str, RetryPolicy] | None = None,
        owner: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        rng: random.Random | None = None,
        lease_s: float = 60.0,
        batch_size: int = 50,
        timeout_s: float = 10.0,
        interval_s: float = 1.0,
    ) -> None:
        if lease_s <= timeout_s:
            raise ValueError("lease_s must exceed timeout_s, or a slow send loses its lease")
        self.engine = engine
        self.destinations = dict(destinations)
        self.policies = dict(policies or {})
        self.owner = owner or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.rng = rng or random.Random()
        self.lease_ns = int(lease_s * NS)
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.interval_s = interval_s
        self._thread = PeriodicThread(
            f"inferloop-requests-{self.owner}", self._round, retry_s=interval_s, logger=logger
        )

    def run_once(self) -> int:
        """Send every request due now (one claimed batch); returns how many were tried."""
        with self.engine.begin() as connection:
            rows = queries.claim_due_requests(
                connection,
                self.owner,
                now_ns=self.clock(),
                lease_ns=self.lease_ns,
                limit=self.batch_size,
            )
        for row in rows:
            outcome = self._send(row)
            with self.engine.begin() as connection:
                if not queries.settle_request(
                    connection, row, self.owner, self._settlement(row, outcome)
                ):
                    logger.info("request %s to %s: lease lost", row.id, row.destination)
        return len(rows)

    def _send(self, row: sa.Row) -> DeliveryOutcome:
        destination = self.destinations.get(row.destination)
        if destination is None:
            return DeliveryOutcome(
                OutcomeKind.PERMANENT, detail=f"no destination named {row.destination!r}"
            )
        event = row.event if isinstance(row.event, dict) else json.loads(row.event)
        try:
            return destination.send(event, timeout_s=self.timeout_s)
        except Exception as error:  # one destination's bug must not stop the others
            logger.warning("destination %r raised %s", row.destination, type(error).__name__)
            return DeliveryOutcome(OutcomeKind.RETRY, detail=type(error).__name__)

    def _settlement(self, row: sa.Row, outcome: DeliveryOutcome) -> dict[str, Any]:
        now_ns = self.clock()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_error": outcome.detail or None}
        if outcome.kind is OutcomeKind.DELIVERED:
            return values | {"state": queries.DELIVERED, "delivered_at_ns": now_ns}
        if outcome.kind is OutcomeKind.RETRY:
            retry_at = next_attempt_ns(
                outcome,
                attempts=attempts,
                created_at_ns=row.created_at_ns,
                now_ns=now_ns,
                policy=self.policies.get(row.destination, RetryPolicy()),
                rng=self.rng,
            )
            if retry_at is not None:
                return values | {"state": queries.PENDING, "next_attempt_ns": retry_at}
            values["last_error"] = f"gave up after {attempts} attempts: {outcome.detail}"
        logger.error("request %s to %s is dead: %s", row.id, row.destination, outcome.detail)
        return values | {"state": queries.DEAD}

    def _round(self) -> float:
        return 0.0 if self.run_once() >= self.batch_size else self.interval_s

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)
