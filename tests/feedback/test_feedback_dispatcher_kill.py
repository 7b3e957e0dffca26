"""A request dispatcher killed with SIGKILL between sending a request and recording it, in a
real subprocess, against a real HTTP receiver on loopback, on both back ends.

The guarantee, precisely: **at-least-once delivery with one event id per decision**. Every
queued request reaches the receiver at least once; the only duplicate is a re-send of a
request whose send was not recorded (the dispatcher died in between), and it carries the
same CloudEvent id and `webhook-id` and the same body, so a receiver that keeps the ids it
has seen processes each decision exactly once. Nothing the killed process did is recorded
(its attempt is not counted); its lease expires and the next dispatcher sends again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

from sinks import serving_sink

from inferloop.feedback import ROLLBACK_REQUESTED, cloud_event, enqueue_request
from inferloop.store.feedback_queries import feedback_requests

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NS = 1_000_000_000
LEASE_S = 30

DISPATCHER = textwrap.dedent(
    """
    import sys, time
    from inferloop.feedback import RequestDispatcher, WebhookDestination
    from inferloop.store import create_engine_for

    url, database, offsets, mode = sys.argv[1:5]
    offset_ns = [0]


    class SendThenHang:
        # The seam: the real webhook send, then the process stops before it settles.
        def __init__(self, inner):
            self.inner = inner

        def send(self, event, *, timeout_s):
            outcome = self.inner.send(event, timeout_s=timeout_s)
            print("sent", event["id"], outcome.kind, flush=True)
            time.sleep(3600)  # SIGKILL lands here, before the row is recorded
            return outcome


    hook = WebhookDestination(url=url, secrets=[sys.argv[5]])
    dispatcher = RequestDispatcher(
        create_engine_for(database),
        {"hook": SendThenHang(hook) if mode == "hang" else hook},
        clock=lambda: time.time_ns() + offset_ns[0],
        lease_s=LEASE_S,
        timeout_s=5,
    )
    for offset_s in offsets.split(","):  # one round per clock offset, in order
        offset_ns[0] = int(float(offset_s) * 1e9)
        print("tried", dispatcher.run_once(), flush=True)
    """
).replace("LEASE_S", str(LEASE_S))


def dispatcher(url: str, database: str, *, offsets_s: str, mode: str) -> subprocess.Popen:
    """A dispatcher process; it runs one round per clock offset (seconds, comma-separated)."""
    return subprocess.Popen(
        [sys.executable, "-c", DISPATCHER, url, database, offsets_s, mode, SECRET],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("INFERLOOP_")},
    )


def queue_decisions(engine, count: int) -> list[str]:
    """`count` rollback requests, one decision each, queued for the `hook` destination."""
    ids = []
    now_ns = int(1.7e9) * NS
    with engine.begin() as connection:
        for version in range(2, 2 + count):
            event = cloud_event(
                ROLLBACK_REQUESTED,
                subject=f"ranker/{version}",
                decision={"model": "ranker", "environment": "production", "version": version},
                data={"model": "ranker", "version": version, "restore_version": 1},
                time_ns=now_ns,
            )
            enqueue_request(connection, event, model="ranker", destinations=["hook"], now_ns=now_ns)
            ids.append(event["id"])
    return ids


def test_a_dispatcher_killed_after_sending_resends_once_with_the_same_id(migrated_engine):
    database = migrated_engine.url.render_as_string(hide_password=False)
    decisions = queue_decisions(migrated_engine, 2)
    with serving_sink() as sink:
        killed = dispatcher(sink.url, database, offsets_s="0", mode="hang")
        try:
            line = killed.stdout.readline()  # blocks until the first send came back
            assert line.startswith("sent "), line + killed.stderr.read()
            first_id = line.split()[1]
            assert "delivered" in line.lower()  # the receiver answered 2xx
            os.kill(killed.pid, signal.SIGKILL)
            assert killed.wait(30) == -signal.SIGKILL
        finally:
            if killed.poll() is None:
                killed.kill()
                killed.wait(30)
            killed.stdout.close()
            killed.stderr.close()
        assert len(sink.received) == 1  # sent and acknowledged by the receiver...
        with migrated_engine.connect() as connection:
            rows = {r["id"]: r for r in feedback_requests(connection, model="ranker")}
        # ...but never recorded: still pending, no attempt counted, leased to the dead one
        assert rows[first_id]["state"] == "pending" and rows[first_id]["attempts"] == 0
        assert rows[first_id]["lease_owner"] is not None

        # The restarted process: a round inside the dead one's lease sends nothing (it
        # had claimed both rows); a round after it resends; a third finds nothing to do.
        offsets = f"0,{LEASE_S + 5},{LEASE_S + 10}"
        restarted = dispatcher(sink.url, database, offsets_s=offsets, mode="send")
        out, err = restarted.communicate(timeout=120)
        assert restarted.returncode == 0, err
        assert out.split("\n")[:3] == ["tried 0", "tried 2", "tried 0"], out + err

    ids = [r.headers["webhook-id"] for r in sink.received]
    bodies = [json.loads(r.body) for r in sink.received]
    assert [b["id"] for b in bodies] == ids  # the CloudEvent id is the webhook-id
    assert Counter(ids) == {first_id: 2, **{d: 1 for d in decisions if d != first_id}}
    assert set(ids) == set(decisions)  # one event id per decision
    resent = [r.body for r in sink.received if r.headers["webhook-id"] == first_id]
    assert resent[0] == resent[1]  # the same bytes: only the signature's timestamp may differ
    with migrated_engine.connect() as connection:
        rows = feedback_requests(connection, model="ranker")
    assert {(r["id"], r["state"], r["attempts"]) for r in rows} == {
        (d, "delivered", 1) for d in decisions
    }
