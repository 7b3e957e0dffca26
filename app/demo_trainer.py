"""The demo's trainer: the local command the platform runs for each of its requests.

`python -m inferloop.app.demo_trainer --platform URL --builds DIR` reads one CloudEvent on
stdin (the platform's command destination). A retrain request names a labelled snapshot:
the trainer reads it (the manifest's hash is checked on read), fits the torch model on its
rows, saves the build, and registers it with the platform's REST API as a candidate with its
source snapshot, then asks for its canary. Other requests (redeploy, rollback) are the
serving side's business; the trainer acknowledges them by exiting 0.

`--slow-builds N` makes the first N builds serve slower (a profiler left on, in the demo's
story), so the guarded rollout has a regression to catch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

RETRAIN = "io.inferloop.model.retrain.requested"
SLOW_BUILD_EXTRA_MS = 6.0


def training_rows(frame) -> tuple[list[dict], list[int]]:
    """The (request, label) pairs of a snapshot frame's labelled, successful rows."""
    requests, labels = [], []
    for inputs, label, status in frame.select("inputs", "label", "status").iter_rows():
        if label is None or status != "ok":
            continue
        document = json.loads(inputs)
        rows = document.get("rows") if isinstance(document, dict) else None
        request = rows[0] if rows else document
        if isinstance(request, dict) and "amount" in request:
            requests.append(request)
            labels.append(int(label))
    return requests, labels


def _post(url: str, body: dict[str, Any], api_key: str | None) -> dict[str, Any]:
    import httpx

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    if response.status_code >= 300:
        raise SystemExit(f"trainer: {url} answered {response.status_code}: {response.text}")
    return response.json()


def retrain(
    event: dict[str, Any],
    *,
    platform: str,
    builds: Path,
    slow_builds: int,
    environment: str,
    api_key: str | None,
) -> None:
    """Fit a build on the event's snapshot, register it, and put it in canary."""
    from inferloop.feedback import read_snapshot

    from .demo_model import fit, save_build

    data = event["data"]
    snapshot = read_snapshot(data["snapshot"]["uri"])
    if snapshot.content_hash != data["snapshot"]["content_hash"]:
        raise SystemExit("trainer: the snapshot's hash is not the one the request names")
    requests, labels = training_rows(snapshot.frame)
    if len(requests) < 50:
        raise SystemExit(f"trainer: only {len(requests)} labelled rows; not enough to train")
    model = fit(requests, labels, seed=len(requests))
    builds.mkdir(parents=True, exist_ok=True)
    number = len(list(builds.glob("retrained-*.pt"))) + 1  # this trainer's builds, 1, 2, …
    slow = number <= slow_builds
    artifact = save_build(
        model,
        builds / f"retrained-{number}.pt",
        extra_latency_ms=SLOW_BUILD_EXTRA_MS if slow else 0.0,
    )
    model_name = data["model"]
    registered = _post(
        f"{platform}/v1/models/{model_name}/versions",
        {
            "artifact_uri": artifact,
            "who": "demo-trainer",
            "metrics": {"training_rows": len(requests), "positive_rate": sum(labels) / len(labels)},
            "metadata": {"build": number, "profiler_left_on": slow, "retrain_request": event["id"]},
            "source_snapshot_uri": snapshot.uri,
            "source_snapshot_hash": snapshot.content_hash,
        },
        api_key,
    )
    version = registered["version"]
    _post(
        f"{platform}/v1/models/{model_name}/versions/{version}/moves",
        {
            "to": "canary",
            "environment": environment,
            "who": "demo-trainer",
            "why": f"retrained on snapshot {snapshot.content_hash[:12]} ({len(requests)} rows)",
        },
        api_key,
    )
    print(
        f"trainer: v{version} fitted on {len(requests)} labelled rows"
        f"{' (slow build)' if slow else ''}, registered, canary requested",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", required=True, help="base URL of the Inferloop server")
    parser.add_argument("--builds", type=Path, required=True, help="where builds are written")
    parser.add_argument("--slow-builds", type=int, default=0, help="the first N builds are slow")
    parser.add_argument("--environment", default="production", help="where the canary goes")
    parser.add_argument("--api-key", default=None, help="bearer key, when the server needs one")
    args = parser.parse_args(argv)
    event = json.load(sys.stdin)
    if event.get("type") != RETRAIN:
        return 0
    retrain(
        event,
        platform=args.platform.rstrip("/"),
        builds=args.builds,
        slow_builds=args.slow_builds,
        environment=args.environment,
        api_key=args.api_key,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
