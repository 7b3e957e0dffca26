"""The demo's story, stage by stage: what it changes, and what it waits to see happen.

Each wait reads the platform's store or the demo's own receivers, never a timer alone, so a
stage line is printed only once the platform has done that part of the loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .demo_serving import ENVIRONMENT, MODEL

if TYPE_CHECKING:
    from .demo import Demo

RETRAIN = "io.inferloop.model.retrain.requested"
DRIFT_KINDS = ("data_drift", "dataset_drift", "prediction_drift")


def _findings(demo: Demo, kinds: tuple[str, ...]) -> list:
    from inferloop.store.findings import list_findings

    with demo.engine.connect() as connection:
        rows = list_findings(connection, model=MODEL)
    return [row for row in rows if row.kind in kinds]


def _retrain_requests(demo: Demo) -> list[dict]:
    from inferloop.store.feedback_tables import FeedbackRequest

    table = FeedbackRequest.__table__
    with demo.engine.connect() as connection:
        rows = connection.execute(
            sa.select(table.c.id, table.c.event, table.c.state)
            .where(table.c.type == RETRAIN, table.c.model == MODEL)
            .order_by(table.c.created_at_ns)
        ).all()
    # A request is `preparing` while its snapshot is written; its event names it once released.
    unique = {row.id: row.event for row in rows if row.state != "preparing"}
    return list(unique.values())


def _state_of(demo: Demo, version: int) -> str | None:
    from inferloop.feedback import version_states

    with demo.engine.connect() as connection:
        states = version_states(connection, MODEL, environment=ENVIRONMENT)
    return next((str(s.state) for s in states if s.version == version), None)


def _link(demo: Demo, name: str, path: str) -> None:
    """A dashboard page for the summary, on the last 15 minutes: the demo's whole story."""
    demo.links[name] = f"{demo.url}{path}?range=15m"


def run_stages(demo: Demo) -> None:
    from .demo_model import SHIFTED_WORLD

    say, plan = demo.say, demo.plan
    demo.traffic.start()

    say.stage(1, f"Normal traffic: {plan.rate:.0f} requests/s to the model over HTTP")
    demo.pause(plan.normal_traffic_s)
    say.note(
        f"served {demo.traffic.sent['requests']} requests; labels trickle in a few seconds late"
    )
    _link(demo, "overview", "/ui")

    say.stage(2, "The inputs drift (bigger amounts, a new country mix)…")
    demo.traffic.world = SHIFTED_WORLD
    drift_at_ns = time.time_ns()
    drift = demo.wait_for("a drift finding", lambda: _findings(demo, DRIFT_KINDS))
    say.note(f"finding: {drift[0].title}")
    demo.wait_for("the drift alert at the on-call", lambda: demo.oncall.statuses(drift[0].kind))
    _link(demo, "drift finding", f"/ui/findings/{drift[0].id}")
    _link(demo, "alerts", "/ui/alerts")

    say.stage(3, "Ground truth arrives, late and sometimes corrected: is the model still right?")
    quality = demo.wait_for("a quality finding", lambda: _findings(demo, ("quality_drop",)))
    say.note(f"finding: {quality[0].title}")
    say.note(
        f"labels logged {demo.labels.logged['labels']} "
        f"(late {demo.labels.logged['late']}, corrected {demo.labels.logged['corrections']})"
    )
    _link(demo, "model", f"/ui/models/{MODEL}")

    say.stage(4, "The platform asks for a retrain, with a labelled snapshot…")
    requests = demo.wait_for("a retrain request", lambda: _retrain_requests(demo))
    snapshot = requests[0]["data"]["snapshot"]
    say.note(
        f"snapshot {snapshot['uri']} ({snapshot['rows']} rows, sha256 {snapshot['content_hash'][:12]}…)"
    )
    demo.wait_for("the trainer's version 2", lambda: _state_of(demo, 2))
    say.note("the trainer fitted v2 on the snapshot and registered it")

    say.stage(5, "Redeploy: the candidate serves next to live, and the guard compares them")
    demo.wait_for(
        "v2 loaded by the serving side", lambda: demo.deployment.versions()["candidate"] == 2
    )
    _link(demo, "feedback loop", f"/ui/feedback/{MODEL}")

    say.stage(6, "v2 is slow (a profiler left on): the guard should roll it back")
    demo.wait_for("v2 rolled back", lambda: _state_of(demo, 2) == "rolled_back")
    demo.wait_for("the rollout alert", lambda: demo.oncall.statuses("rollout_failed"))
    say.note("the team fixes the build and asks for a retrain by hand")
    from inferloop.feedback import request_retrain

    request_retrain(
        demo.engine,
        MODEL,
        snapshot_dir=demo.platform_settings.snapshots_root(),
        destinations=demo.platform_settings.feedback.destination_names(),
        now_ns=time.time_ns(),
        reason="v2 rolled back for latency; the profiler is off now",
        requested_by="demo team",
        idempotency_key="fixed-build",
        snapshot_window_s=(time.time_ns() - drift_at_ns) / 1e9,
    )
    demo.wait_for("the trainer's version 3", lambda: _state_of(demo, 3))
    demo.wait_for(
        "v3 promoted", lambda: _state_of(demo, 3) == "live", timeout=plan.stage_timeout_s * 2
    )
    demo.wait_for(
        "the rollout alert resolved", lambda: "resolved" in demo.oncall.statuses("rollout_failed")
    )

    say.stage(7, "Summary")
    summarize(demo)


def summarize(demo: Demo) -> None:
    import json
    import urllib.request

    say = demo.say
    with urllib.request.urlopen(f"{demo.url}/v1/models/{MODEL}/completeness", timeout=30) as r:
        completeness = json.loads(r.read())
    say.note(f"delivery: {json.dumps(completeness)}")
    say.note(f"traffic: {dict(demo.traffic.sent)}")
    say.note(f"on-call got {len(demo.oncall.pages)} notifications")
    for name, url in demo.links.items():
        say.note(f"{name:<14} {url}")
