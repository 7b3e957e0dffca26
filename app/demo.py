"""`inferloop demo` (what `make run` runs): the whole loop on the embedded default.

It starts the embedded platform on a fresh SQLite file, serves a small torch model
behind `@monitor` (events go over HTTP to the platform, as in a one-machine
deployment), ships a bad second version, logs the delayed ground truth, runs the
analyzer, and prints what an on-call engineer would want to see. The platform
then keeps serving (Ctrl-C stops it) so the API can be explored.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass

from inferloop.settings import Settings
from inferloop.signals import wait_until_set

MODEL = "fraud"


@dataclass(frozen=True)
class DemoPlan:
    requests_per_version: int = 1500
    seed: int = 7


def _say(message: str) -> None:
    print(message, flush=True)


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _serve(
    version: str, service, world, plan: DemoPlan, rng: random.Random
) -> list[tuple[str, int]]:
    """Send one version's traffic through `@monitor`; return (prediction id, true label)."""
    from inferloop.sdk import last_prediction_id, monitor

    from .demo_model import make_request, true_fraud

    predict = monitor(model=MODEL, version=version, environment="demo")(service.predict)
    labels: list[tuple[str, int]] = []
    errors = 0
    for i in range(plan.requests_per_version):
        request = make_request(world, rng)
        try:
            predict(request)
        except ValueError:
            errors += 1
        labels.append((last_prediction_id(), true_fraud(request, world, rng)))
        if (i + 1) % 500 == 0:
            _say(
                f"    version {version}: {i + 1}/{plan.requests_per_version} requests ({errors} failed)"
            )
    return labels


def _print_latency(base_url: str) -> None:
    _say("\n  Latency from the per-minute histograms (GET /v1/models/fraud/latency):")
    _say(f"    {'version':<8}{'calls':>7}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for version in ("1", "2"):
        row = _get(f"{base_url}/v1/models/{MODEL}/latency?version={version}")
        _say(
            f"    {version:<8}{row['count']:>7}{row['errors']:>8}"
            f"{row['p50_ms']:>9.3f}{row['p95_ms']:>9.3f}{row['p99_ms']:>9.3f}"
        )
    completeness = _get(f"{base_url}/v1/models/{MODEL}/completeness")
    _say(f"\n  Delivery (GET /v1/models/fraud/completeness): {json.dumps(completeness)}")


def _analyse(
    settings: Settings, engine, base_url: str, training_rows: list[dict], started_ns: int
) -> None:
    """Pin the training data as drift reference, analyse, and compare the two versions."""
    import polars as pl

    from inferloop.analyzer import (
        AnalyzerConfig,
        AnalyzerWorker,
        compare_stored_versions,
        register_reference,
    )

    register_reference(
        engine, settings.data_dir, MODEL, pl.DataFrame(training_rows), name="training data"
    )
    # The demo compresses days into seconds: one short window, no waiting for a second
    # window to confirm what the first one found.
    config = AnalyzerConfig(window_s=300, confirm_runs=1, confirm_after_s=0)
    AnalyzerWorker(settings, engine, config=config).run_once()
    findings = _get(f"{base_url}/v1/findings?model={MODEL}")
    _say(f"\n  Findings ({len(findings)}; GET {base_url}/v1/findings):")
    for finding in findings:
        report = (
            f"\n      report: {base_url}{finding['report_url']}" if finding["report_url"] else ""
        )
        _say(
            f"    [{finding['severity']:<8}] v{finding['version']} {finding['kind']}: {finding['title']}{report}"
        )

    verdict = compare_stored_versions(
        engine, MODEL, live="1", candidate="2", start_ns=started_ns, end_ns=time.time_ns()
    )
    _say(f"\n  Candidate v2 against live v1 (the guarded-rollout check): {verdict.verdict.upper()}")
    for check in verdict.checks:
        mark = "REGRESSED" if check.regressed else "ok"
        _say(
            f"    {check.metric:<16} live {check.baseline:>10.4g}  candidate {check.current:>10.4g}"
            f"  p={check.p_value:.2g}  {mark}"
        )


def run_demo(
    settings: Settings, *, plan: DemoPlan, stop_event: threading.Event, keep_serving: bool
) -> int:
    from inferloop import sdk
    from inferloop.app.embedded import EmbeddedServer, build_platform

    from .demo_model import SHIFTED_WORLD, TRAINING_WORLD, FraudService, train_model

    database = settings.data_dir / "demo.db"
    for stale in (database, database.with_suffix(".db-wal"), database.with_suffix(".db-shm")):
        stale.unlink(missing_ok=True)
    settings = settings.model_copy(update={"database_url": f"sqlite:///{database.resolve()}"})

    _say("1/5  Starting the embedded platform (SQLite, HTTP ingest, analyzer)…")
    app, engine = build_platform(settings)
    server = EmbeddedServer(app, host=settings.host, port=settings.port)
    server.start()
    base_url = server.url
    _say(f"     up at {base_url}")

    rng = random.Random(plan.seed)
    _say("2/5  Training the demo model (a small torch MLP)…")
    model, training_rows = train_model(rng)
    started_ns = time.time_ns()

    _say("3/5  Serving traffic through @monitor (HTTP transport to the platform)…")
    sdk.configure(transport="http", endpoint=base_url)
    labels = _serve("1", FraudService(model), TRAINING_WORLD, plan, rng)
    bad_release = FraudService(model, extra_latency_s=0.002, reject_large=True)
    labels += _serve("2", bad_release, SHIFTED_WORLD, plan, rng)

    _say("4/5  Ground truth arrives: logging labels for every prediction…")
    for prediction_id, label in labels:
        sdk.log_label(prediction_id, label, model=MODEL)
    sdk.flush(timeout=30)
    _say(f"     SDK: {json.dumps(sdk.stats())}")

    _say("5/5  What the platform saw:")
    _print_latency(base_url)
    _analyse(settings, engine, base_url, training_rows, started_ns)

    _say(f"\nThe platform keeps running at {base_url} (Ctrl-C stops it).")
    if keep_serving:
        wait_until_set(stop_event)
    sdk.shutdown(timeout=5)
    server.stop()
    engine.dispose()
    return 0


def main_demo(
    settings: Settings, *, requests: int, keep_serving: bool, stop_event: threading.Event
) -> int:
    started = time.monotonic()
    code = run_demo(
        settings,
        plan=DemoPlan(requests_per_version=requests),
        stop_event=stop_event,
        keep_serving=keep_serving,
    )
    print(f"demo finished in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return code
