"""A dispatcher process killed with SIGKILL loses nothing: after its lease runs out the
survivor sends what it held, at most once more, with the same idempotency key."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
from loopback import serving, webhook_responder
from receiver_samples import firing, resolved
from waiting import wait_for

from inferloop.alerts import Dispatcher, WebhookReceiver, outbox_row
from inferloop.store.outbox import DeliveryState, enqueue_notifications, notifications

pytestmark = pytest.mark.slow

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
LEASE_S = 3.0
TIMEOUT_S = 2.0

_DISPATCHER = """
import os, signal, sys, time
from inferloop.alerts import Dispatcher, WebhookReceiver
from inferloop.store import create_engine_for
from inferloop.store.outbox import claim_due

url, sink_url, secret, mode = sys.argv[1:5]
engine = create_engine_for(url)
if mode == "claim-then-die":  # killed after taking the row, before sending it
    with engine.begin() as connection:
        claim_due(connection, "doomed", now_ns=time.time_ns(), lease_ns=int(3e9))
    os.kill(os.getpid(), signal.SIGKILL)
receiver = WebhookReceiver(url=sink_url, secrets=[secret])
dispatcher = Dispatcher(
    engine, {"oncall": receiver}, owner="doomed", lease_s=3.0, timeout_s=2.0, interval_s=0.05
)
dispatcher.start()
time.sleep(60)
"""


def _spawn(database_url: str, sink_url: str, mode: str) -> subprocess.Popen:
    """The dispatcher in its own process; its output goes to the test's (captured) stderr."""
    return subprocess.Popen(
        [sys.executable, "-c", _DISPATCHER, database_url, sink_url, SECRET, mode],
        env={**os.environ},
        stdin=subprocess.DEVNULL,
    )


def _enqueue(engine, note) -> None:
    with engine.begin() as connection:
        enqueue_notifications(connection, [outbox_row(note)])


def _state(engine, notification_id: str) -> str:
    with engine.connect() as connection:
        return {row.id: row.state for row in notifications(connection)}[notification_id]


def _survivor(engine, sink_url: str) -> Dispatcher:
    receiver = WebhookReceiver(url=sink_url, secrets=[SECRET])
    return Dispatcher(engine, {"oncall": receiver}, lease_s=LEASE_S, timeout_s=TIMEOUT_S)


def _deliver_with_survivor(engine, sink_url: str, notification_id: str) -> float:
    """Run a survivor until the row is delivered; seconds it took."""
    survivor = _survivor(engine, sink_url)
    started = time.monotonic()

    def delivered() -> bool:
        survivor.run_once()
        return _state(engine, notification_id) == DeliveryState.DELIVERED

    wait_for(delivered, timeout=LEASE_S + 10, what="the survivor to deliver")
    return time.monotonic() - started


def test_killed_after_claiming_before_sending_the_survivor_sends_it_once(
    migrated_engine, database_url
):
    note = replace(firing(), id="crash-a", created_at_ns=time.time_ns())
    _enqueue(migrated_engine, note)
    with serving(webhook_responder(SECRET)) as sink:
        doomed = _spawn(database_url, sink.url, "claim-then-die")
        assert doomed.wait(30) == -signal.SIGKILL
        took = _deliver_with_survivor(migrated_engine, sink.url, "crash-a")
    assert [r.headers["webhook-id"] for r in sink.requests] == ["crash-a"]
    assert took <= LEASE_S + 2  # the lease passes to the survivor once it runs out


@pytest.mark.parametrize("make", [firing, resolved], ids=["firing", "pending-resolve"])
def test_killed_between_send_and_ack_resends_once_with_the_same_id(
    migrated_engine, database_url, make
):
    note = replace(make(), id=f"crash-{make.__name__}", created_at_ns=time.time_ns())
    _enqueue(migrated_engine, note)
    with serving(webhook_responder(SECRET), delay_s=1.5) as sink:
        doomed = _spawn(database_url, sink.url, "serve")
        try:
            wait_for(lambda: sink.requests, timeout=30, what="the doomed dispatcher's send")
            doomed.send_signal(signal.SIGKILL)  # the receiver has it; the ack never comes
            assert doomed.wait(30) == -signal.SIGKILL
        finally:
            doomed.kill()
        assert _state(migrated_engine, note.id) == DeliveryState.PENDING
        sink.delay_s = 0.0
        _deliver_with_survivor(migrated_engine, sink.url, note.id)
    ids = [r.headers["webhook-id"] for r in sink.requests]
    assert ids == [note.id, note.id]  # one duplicate at most, recognisable by its id
    assert {r.json()["status"] for r in sink.requests} == {str(note.status)}
