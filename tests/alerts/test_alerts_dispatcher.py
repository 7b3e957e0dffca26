"""The dispatcher drains the outbox on both back ends: once per id, retries on virtual time,
dead letters with a meta-alert, leases that pass to a survivor, two dispatchers sharing."""

from __future__ import annotations

import base64
import random
import threading
import time
from dataclasses import replace

import pytest
from loopback import Response, closed_port_url, serving, webhook_responder
from receiver_samples import firing

from inferloop.alerts import Dispatcher, RetryPolicy, WebhookReceiver, outbox_row
from inferloop.store.outbox import (
    DeliveryState,
    claim_due,
    delivery_log,
    enqueue_notifications,
    notifications,
    pending_summary,
)

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
NS = 1_000_000_000
T0 = 1_900_000_000 * NS


class VirtualClock:
    def __init__(self, now_ns: int = T0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, seconds: float) -> None:
        self.now_ns += int(seconds * NS)


def _note(id: str, receiver: str = "oncall", created_at_ns: int = T0):
    return replace(firing(), id=id, receiver=receiver, created_at_ns=created_at_ns)


def _enqueue(engine, *notes) -> int:
    with engine.begin() as connection:
        return enqueue_notifications(connection, [outbox_row(n) for n in notes])


def _rows(engine, **filters):
    with engine.connect() as connection:
        return {row.id: row for row in notifications(connection, **filters)}


def _dispatcher(engine, receivers, clock, **kwargs) -> Dispatcher:
    return Dispatcher(engine, receivers, clock=clock, rng=random.Random(7), **kwargs)


def test_a_queued_notification_is_delivered_once_with_its_id_as_webhook_id(migrated_engine):
    clock = VirtualClock()
    assert _enqueue(migrated_engine, _note("n-1")) == 1
    assert _enqueue(migrated_engine, _note("n-1")) == 0  # the same id again: ignored
    with serving(webhook_responder(SECRET)) as sink:
        receivers = {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])}
        dispatcher = _dispatcher(migrated_engine, receivers, clock)
        assert dispatcher.run_once() == 1
        assert dispatcher.run_once() == 0
    assert [r.headers["webhook-id"] for r in sink.requests] == ["n-1"]
    row = _rows(migrated_engine)["n-1"]
    assert (row.state, row.attempts, row.delivered_at_ns) == (DeliveryState.DELIVERED, 1, T0)
    with migrated_engine.connect() as connection:
        (attempt,) = delivery_log(connection, notification_id="n-1")
        assert pending_summary(connection).count == 0
    assert (attempt.outcome, attempt.status_code) == ("delivered", 204)


def test_a_429_waits_exactly_its_retry_after_on_virtual_time(migrated_engine):
    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1"))
    with serving(webhook_responder(SECRET)) as sink:
        sink.script.append(Response(429, "slow down", {"Retry-After": "30"}))
        dispatcher = _dispatcher(
            migrated_engine, {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])}, clock
        )
        assert dispatcher.run_once() == 1
        row = _rows(migrated_engine)["n-1"]
        assert (row.state, row.next_attempt_ns) == (DeliveryState.PENDING, T0 + 30 * NS)
        clock.advance(29.999)
        assert dispatcher.run_once() == 0  # not due yet: nothing sent
        clock.advance(0.001)
        assert dispatcher.run_once() == 1
    assert len(sink.requests) == 2
    assert {r.headers["webhook-id"] for r in sink.requests} == {"n-1"}
    assert _rows(migrated_engine)["n-1"].state == DeliveryState.DELIVERED


def test_server_errors_back_off_with_jitter_below_the_exponential_ceiling(migrated_engine):
    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1"))
    policy = RetryPolicy(base_s=2.0, max_delay_s=60.0, deadline_s=3600.0)
    with serving(webhook_responder(SECRET)) as sink:
        for _ in range(3):
            sink.script.append(Response(500, "boom"))
        dispatcher = _dispatcher(
            migrated_engine,
            {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])},
            clock,
            policies={"oncall": policy},
        )
        for attempt in range(1, 4):
            assert dispatcher.run_once() == 1
            row = _rows(migrated_engine)["n-1"]
            delay_ns = row.next_attempt_ns - clock()
            assert row.state == DeliveryState.PENDING
            assert 0 <= delay_ns <= 2.0 * 2 ** (attempt - 1) * NS
            clock.now_ns = row.next_attempt_ns
        assert dispatcher.run_once() == 1
    assert len(sink.requests) == 4
    assert _rows(migrated_engine)["n-1"].state == DeliveryState.DELIVERED


def test_a_refused_payload_is_dead_lettered_and_the_fallback_hears_of_it(migrated_engine):
    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1", receiver="team"))
    with (
        serving(webhook_responder(SECRET)) as team,
        serving(webhook_responder(SECRET)) as fallback,
    ):
        team.script.append(Response(400, "bad payload"))
        receivers = {
            "team": WebhookReceiver(url=team.url, secrets=[SECRET]),
            "fallback": WebhookReceiver(url=fallback.url, secrets=[SECRET]),
        }
        dispatcher = _dispatcher(migrated_engine, receivers, clock, fallback_receiver="fallback")
        assert dispatcher.run_once() == 1  # the refused one; the meta-alert is queued
        assert dispatcher.run_once() == 1  # the meta-alert
    rows = _rows(migrated_engine)
    assert rows["n-1"].state == DeliveryState.DEAD
    assert rows["meta-n-1"].state == DeliveryState.DELIVERED
    (meta,) = [r.json() for r in fallback.requests]
    assert meta["alerts"][0]["labels"]["receiver"] == "team"
    assert meta["alerts"][0]["annotations"]["notification_id"] == "n-1"


def test_a_receiver_that_stays_down_is_given_up_at_its_deadline(migrated_engine):
    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1"))
    receivers = {"oncall": WebhookReceiver(url=closed_port_url(), secrets=[SECRET])}
    policy = RetryPolicy(base_s=10.0, max_delay_s=10.0, deadline_s=60.0)
    dispatcher = _dispatcher(migrated_engine, receivers, clock, policies={"oncall": policy})
    attempts = 0
    while _rows(migrated_engine)["n-1"].state == DeliveryState.PENDING:
        assert dispatcher.run_once() == 1
        attempts += 1
        clock.now_ns = max(clock(), _rows(migrated_engine)["n-1"].next_attempt_ns)
        assert attempts < 100
    row = _rows(migrated_engine)["n-1"]
    assert row.state == DeliveryState.DEAD
    assert row.last_error.startswith(f"gave up after {attempts} attempts")
    assert row.next_attempt_ns <= T0 + 60 * NS


def test_a_lease_left_by_a_dead_dispatcher_passes_to_the_survivor(migrated_engine):
    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1"))
    with migrated_engine.begin() as connection:  # a dispatcher claims, then dies
        (claimed,) = claim_due(connection, "dead-one", now_ns=clock(), lease_ns=60 * NS)
    with serving(webhook_responder(SECRET)) as sink:
        survivor = _dispatcher(
            migrated_engine,
            {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])},
            clock,
            lease_s=60.0,
        )
        assert survivor.run_once() == 0  # still leased
        clock.advance(60)
        assert survivor.run_once() == 1
    assert [r.headers["webhook-id"] for r in sink.requests] == ["n-1"]
    assert _rows(migrated_engine)["n-1"].state == DeliveryState.DELIVERED


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_dispatchers_share_the_outbox_without_sending_twice(migrated_engine):
    ids = [f"n-{i:03d}" for i in range(60)]
    _enqueue(migrated_engine, *[_note(i, created_at_ns=time.time_ns()) for i in ids])
    with serving(webhook_responder(SECRET)) as sink:
        receivers = {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])}
        pair = [
            Dispatcher(migrated_engine, receivers, owner=name, batch_size=5)
            for name in ("first", "second")
        ]
        threads = [
            threading.Thread(target=lambda d=d: [d.run_once() for _ in range(8)]) for d in pair
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    sent = [r.headers["webhook-id"] for r in sink.requests]
    assert sorted(sent) == ids  # every one, once
    assert set(_rows(migrated_engine, states=[DeliveryState.DELIVERED])) == set(ids)


def test_the_api_shows_the_outbox_the_attempts_and_receiver_health(migrated_engine, tmp_path):
    import httpx
    from serving import served

    from inferloop.server import create_app
    from inferloop.settings import Settings

    clock = VirtualClock()
    _enqueue(migrated_engine, _note("n-1"), _note("n-2"))
    with serving(webhook_responder(SECRET)) as sink:
        sink.script.append(Response(500, "boom"))
        receivers = {"oncall": WebhookReceiver(url=sink.url, secrets=[SECRET])}
        _dispatcher(migrated_engine, receivers, clock).run_once()
    app = create_app(Settings(data_dir=tmp_path), engine=migrated_engine)
    with served(app) as base:
        pending = httpx.get(f"{base}/v1/alerts/notifications", params={"state": "pending"})
        attempts = httpx.get(f"{base}/v1/alerts/notifications/n-1/attempts")
        unknown = httpx.get(f"{base}/v1/alerts/notifications/nope/attempts")
        health = httpx.get(f"{base}/v1/alerts/receivers")
    assert [n["id"] for n in pending.json()["items"]] == ["n-1"]  # n-2 went through
    assert pending.json()["items"][0]["last_error"] and SECRET not in pending.text
    assert [(a["outcome"], a["status_code"]) for a in attempts.json()["items"]] == [("retry", 500)]
    assert unknown.status_code == 404
    (oncall,) = health.json()
    assert (oncall["name"], oncall["disabled"], oncall["consecutive_failures"]) == (
        "oncall",
        False,
        0,
    )
