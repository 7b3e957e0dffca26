"""Finding written → notification received, and resolve → received, on a real store.

The embedded set-up: a SQLite file (or `--database-url`), the alert evaluator and
the dispatcher running in their threads at their default pace, and a signed
webhook receiver on loopback that records when each message arrives. Findings are
written one at a time (each its own group, `group_wait: 0s`, `group_interval: 5m`);
then each is resolved. Alertmanager sends a resolve at the next `group_interval`
tick: up to 5 minutes with this config. The baseline, run in the same process, is a
bare HTTP POST of the same message to the same receiver: the floor of any design.

    .venv/bin/python bench/alerts_latency.py [--findings 1000] [--database-url URL]

Last line: one JSON object of figures.
"""

from __future__ import annotations

import argparse
import base64
import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import sqlalchemy as sa

from inferloop.alerts import AlertEvaluator, Dispatcher, build_receivers, load_config
from inferloop.settings import AlertsSettings
from inferloop.store import create_engine_for, upgrade
from inferloop.store.findings import insert_finding, update_finding

SECRET = "whsec_" + base64.b64encode(b"bench-bench-bench-bench-bench-32").decode()
NS = 1_000_000_000
GROUP_INTERVAL_S = 300


class Receiver:
    """A loopback HTTP server noting when each (finding, status) message arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[tuple[int, str], float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                now = time.time()
                for alert in body.get("alerts", []):
                    key = (alert["annotations"].get("finding_id"), body["status"])
                    receiver.arrivals.setdefault(key, now)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()


def _config(url: str):
    return load_config(
        f"""
rules:
  - name: everything
route:
  receiver: bench
  group_by: [model, subject]
  group_wait: 0s
  group_interval: {GROUP_INTERVAL_S}s
receivers:
  - name: bench
    type: webhook
    url: {url}
    secret: {SECRET}
"""
    )


def _finding(index: int, now_ns: int) -> dict:
    return {
        "fingerprint": f"bench-{index}",
        "model": "bench",
        "version": "1",
        "kind": "latency_regression",
        "subject": f"metric_{index}",
        "severity": "critical",
        "status": "open",
        "title": f"bench finding {index}",
        "evidence": {"index": index},
        "window_start_ns": now_ns - 900 * NS,
        "window_end_ns": now_ns,
        "first_seen_ns": now_ns,
        "last_seen_ns": now_ns,
        "opened_at_ns": now_ns,
        "occurrences": 1,
    }


def _wait(receiver: Receiver, keys: set, timeout_s: float) -> None:
    deadline = time.time() + timeout_s
    while not keys <= receiver.arrivals.keys():
        if time.time() > deadline:
            missing = len(keys - receiver.arrivals.keys())
            raise SystemExit(f"{missing} messages never arrived within {timeout_s:.0f} s")
        time.sleep(0.01)


def _percentiles(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds)
    return {
        "p50_s": round(float(np.percentile(values, 50)), 4),
        "p99_s": round(float(np.percentile(values, 99)), 4),
        "max_s": round(float(values.max()), 4),
    }


def bare_post_latency(url: str, rounds: int) -> list[float]:
    """The floor: one signed-size JSON POST to the same receiver, per round."""
    body = json.dumps({"status": "firing", "alerts": []}).encode()
    seconds = []
    with httpx.Client() as client:
        for _ in range(rounds):
            started = time.perf_counter()
            client.post(url, content=body, headers={"content-type": "application/json"})
            seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--findings", type=int, default=1000)
    parser.add_argument("--pace-per-s", type=float, default=50.0, help="findings written a second")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    options = parser.parse_args()
    pacing = AlertsSettings()  # the defaults `inferloop up` runs with
    with tempfile.TemporaryDirectory() as folder, Receiver() as receiver:
        url = options.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        engine = create_engine_for(url)
        config = _config(receiver.url)
        evaluator = AlertEvaluator(engine, config, interval_s=pacing.evaluate_interval_s)
        dispatcher = Dispatcher(
            engine,
            build_receivers(config),
            interval_s=pacing.dispatch_interval_s,
            batch_size=200,
        )
        evaluator.start()
        dispatcher.start()
        baseline = bare_post_latency(receiver.url, 200)
        written: dict[int, float] = {}
        print(f"writing {options.findings} findings at {options.pace_per_s:.0f}/s…", flush=True)
        for index in range(options.findings):
            with engine.begin() as connection:
                finding_id = insert_finding(connection, _finding(index, time.time_ns()))
            written[finding_id] = time.time()
            time.sleep(1 / options.pace_per_s)
        _wait(receiver, {(i, "firing") for i in written}, timeout_s=120)
        print("resolving them…", flush=True)
        resolved: dict[int, float] = {}
        for finding_id in written:
            with engine.begin() as connection:
                update_finding(
                    connection, finding_id, {"status": "resolved", "resolved_at_ns": time.time_ns()}
                )
            resolved[finding_id] = time.time()
            time.sleep(1 / options.pace_per_s)
        _wait(receiver, {(i, "resolved") for i in resolved}, timeout_s=120)
        evaluator.stop()
        dispatcher.stop()
        engine.dispose()
    fire = [receiver.arrivals[(i, "firing")] - t for i, t in written.items()]
    clear = [receiver.arrivals[(i, "resolved")] - t for i, t in resolved.items()]
    floor = _percentiles(baseline)
    figures = {
        "findings": options.findings,
        "store": sa.engine.make_url(url).get_backend_name(),
        "evaluate_interval_s": pacing.evaluate_interval_s,
        "dispatch_interval_s": pacing.dispatch_interval_s,
        "group_interval_s": GROUP_INTERVAL_S,
        "finding_to_received": _percentiles(fire),
        "resolve_to_received": _percentiles(clear),
        "baseline_bare_post": floor,
        "p99_ratio_to_bare_post": {
            "firing": round(float(np.percentile(fire, 99)) / floor["p99_s"], 1),
            "resolve": round(float(np.percentile(clear, 99)) / floor["p99_s"], 1),
        },
        "alertmanager_resolve_worst_case_s": GROUP_INTERVAL_S,
        "target_p99_s": 2.0,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
