"""The embedded deployment: one process runs migrations, the API, HTTP ingest and workers.

`EmbeddedServer` runs the FastAPI app under uvicorn in a named thread so that the
demo and the tests can start a real server in-process and learn its address.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from prometheus_client import CollectorRegistry

from inferloop.settings import Settings
from inferloop.signals import wait_until_set

log = logging.getLogger(__name__)


class EmbeddedServer:
    """uvicorn serving an app from a background thread, with a blocking `start()`."""

    def __init__(self, app, *, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="inferloop-server", daemon=True
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start serving and return once the socket is bound and the app's lifespan has run."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(
                    "the server stopped while starting (is the port already in use?)"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {timeout:.0f} s")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        """Base URL of the running server, with the port the OS picked when asked for 0."""
        host, port = self._server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self, timeout: float = 30.0) -> None:
        """Ask uvicorn to finish in-flight requests and run the app's shutdown, then wait."""
        self._server.should_exit = True
        self._thread.join(timeout)


def build_platform(settings: Settings):
    """Migrate the store and build the app with the in-process workers: (app, engine)."""
    from inferloop.analyzer import AnalyzerWorker
    from inferloop.server.app import create_app
    from inferloop.store import RetentionWorker, migrate
    from inferloop.store.base import create_engine_for

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_database_url()
    migrate.upgrade(url)
    engine = create_engine_for(url)
    registry = CollectorRegistry()
    workers = [
        AnalyzerWorker(settings, engine),
        RetentionWorker(engine, older_than_days=settings.raw_event_retention_days),
        *alerting_workers(settings, engine, registry),
        *feedback_workers(settings, engine),
    ]
    app = create_app(settings, engine=engine, background=workers, registry=registry)
    return app, engine


def alerting_config(settings: Settings):
    """The alerting config file of the settings, with the dashboard link filled in.

    Raises `OSError` if the file cannot be read, `inferloop.alerts.ConfigError` naming
    each problem and its line if it is invalid.
    """
    from inferloop.alerts import load_config

    path = settings.alerts.config_file
    config = load_config(path.read_text(), str(path))
    if settings.alerts.dashboard_url and config.external_url is None:
        config = config.model_copy(update={"external_url": settings.alerts.dashboard_url})
    return config


def alerting_workers(settings: Settings, engine, registry) -> list:
    """The alert evaluator and dispatcher when `alerts.config_file` is set (else none).

    Raises `inferloop.alerts.ConfigError` naming each problem and its line.
    """
    path = settings.alerts.config_file
    if path is None:
        return []
    from inferloop.alerts import (
        AlertEvaluator,
        AlertMetrics,
        Dispatcher,
        build_rate_limits,
        build_receivers,
    )

    config = alerting_config(settings)
    metrics = AlertMetrics(registry)
    metrics.watch_outbox(engine)
    evaluator = AlertEvaluator(engine, config, interval_s=settings.alerts.evaluate_interval_s)
    dispatcher = Dispatcher(
        engine,
        build_receivers(config),
        rate_limits=build_rate_limits(config),
        lease_s=settings.alerts.lease_s,
        timeout_s=settings.alerts.send_timeout_s,
        interval_s=settings.alerts.dispatch_interval_s,
        metrics=metrics,
    )
    return [evaluator, dispatcher]


def rollout_guard(promote_after_calls: int):
    """A factory of the guard every rollout gets: the default tests, with the budget after
    which "no regression found" promotes set from the settings."""
    from dataclasses import replace
    from functools import partial

    from inferloop.feedback import (
        DEFAULT_ACCURACY,
        DEFAULT_ERROR_RATE,
        DEFAULT_LATENCY,
        RolloutGuard,
    )

    return partial(
        RolloutGuard,
        error_rate=replace(DEFAULT_ERROR_RATE, budget=promote_after_calls),
        latency=replace(DEFAULT_LATENCY, budget=promote_after_calls),
        accuracy=replace(
            DEFAULT_ACCURACY, budget=min(DEFAULT_ACCURACY.budget, promote_after_calls)
        ),
    )


def feedback_workers(settings: Settings, engine) -> list:
    """The rollout worker; with a request destination set, also the retrain policy and the
    dispatcher that delivers their requests (with none, nothing would ever read them)."""
    import shlex

    from inferloop.feedback import (
        CommandDestination,
        KafkaDestination,
        RequestDispatcher,
        RetrainPolicy,
        RetrainWorker,
        RolloutWorker,
        WebhookDestination,
    )

    section = settings.feedback
    destinations = {}
    if section.webhook_url is not None:
        destinations["webhook"] = WebhookDestination(
            url=section.webhook_url, secrets=[section.webhook_secret]
        )
    if section.kafka_topic is not None:
        destinations["kafka"] = KafkaDestination(
            bootstrap_servers=settings.kafka_bootstrap_servers, topic=section.kafka_topic
        )
    if section.command is not None:
        destinations["command"] = CommandDestination(argv=shlex.split(section.command))
    rollout = RolloutWorker(
        engine,
        destinations=list(destinations),
        guard=rollout_guard(section.promote_after_calls),
        interval_s=section.check_interval_s,
        baseline_s=section.baseline_s,
        grace_s=section.grace_s,
        poll_s=section.poll_s,
        on_inconclusive=section.on_inconclusive,
        max_checks=section.max_checks,
    )
    if not destinations:
        return [rollout]
    policy = RetrainPolicy(
        kinds=tuple(k.strip() for k in section.retrain_kinds.split(",") if k.strip()),
        min_severity=section.retrain_min_severity,
        min_new_labels=section.retrain_min_new_labels,
        cooldown_s=section.retrain_cooldown_s,
    )
    retrain = RetrainWorker(
        engine,
        policy=policy,
        snapshot_dir=settings.snapshots_root(),
        destinations=list(destinations),
        poll_s=section.poll_s,
    )
    dispatcher = RequestDispatcher(
        engine,
        destinations,
        timeout_s=section.send_timeout_s,
        lease_s=max(60.0, 2 * section.send_timeout_s),  # a slow send keeps its lease
    )
    return [rollout, retrain, dispatcher]


def run_embedded(settings: Settings, *, stop_event: threading.Event) -> int:
    """`inferloop up`: serve until `stop_event` is set (Ctrl-C or SIGTERM)."""
    from inferloop.alerts import ConfigError

    try:
        app, engine = build_platform(settings)
    except (ConfigError, OSError) as error:  # the alerting config: the user's to fix
        print(f"inferloop: {error}", file=sys.stderr)
        return 2
    server = EmbeddedServer(app, host=settings.host, port=settings.port)
    try:
        server.start()
    except RuntimeError as error:
        print(f"inferloop: {error} ({settings.host}:{settings.port})", file=sys.stderr)
        return 1
    print(f"Inferloop is up at {server.url}  (store: {settings.resolved_database_url()})")
    print("Ctrl-C stops it.")
    wait_until_set(stop_event)
    server.stop()
    engine.dispose()
    return 0
