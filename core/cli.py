"""The `inferloop` command line: run the platform's services and manage its store.

Each sub-command reads `Settings` from the environment, lets flags override them,
and passes them into the component it starts; components never read the
environment themselves.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from inferloop import __version__
from inferloop.signals import stop_event_on_signals, wait_until_set

SERVICES_SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "services.sh"


def _settings(args: argparse.Namespace):
    from inferloop.settings import Settings

    overrides = {
        name: value
        for name in ("database_url", "data_dir", "host", "port", "kafka_bootstrap_servers", "kafka_topic")
        if (value := getattr(args, name, None)) is not None
    }
    settings = Settings(**overrides)
    settings.check_safe_for_production()
    return settings


# ---------------------------------------------------------------- commands


def cmd_db(args: argparse.Namespace) -> int:
    from inferloop.store import migrate

    settings = _settings(args)
    url = settings.resolved_database_url()
    if args.db_action in ("upgrade", "downgrade"):
        move = migrate.upgrade if args.db_action == "upgrade" else migrate.downgrade
        move(url, args.revision)
        print(f"database at {_display_url(url)} is at revision {migrate.current(url) or 'base (empty)'}")
    else:
        print(migrate.current(url) or "empty (no migrations applied)")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """The embedded deployment: migrations, server, HTTP ingest and workers in one process."""
    from inferloop.embedded import run_embedded

    settings = _settings(args)
    return run_embedded(settings, stop_event=stop_event_on_signals())


def cmd_demo(args: argparse.Namespace) -> int:
    """`make run`: the platform plus a monitored model, a bad release, labels and findings."""
    from inferloop.demo import main_demo

    settings = _settings(args)
    return main_demo(
        settings, requests=args.requests, keep_serving=not args.exit, stop_event=stop_event_on_signals()
    )


def cmd_collector(args: argparse.Namespace) -> int:
    from inferloop.collector import run_collector

    settings = _settings(args)
    print(
        f"collector: group {settings.kafka_group_id!r} consuming {settings.kafka_topic!r} "
        f"from {settings.kafka_bootstrap_servers}",
        file=sys.stderr,
    )
    run_collector(settings, stop_event=stop_event_on_signals(), metrics_port=args.metrics_port)
    return 0


def cmd_analyzer(args: argparse.Namespace) -> int:
    from inferloop.analyzer import AnalyzerWorker
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    engine = create_engine_for(settings.resolved_database_url())
    worker = AnalyzerWorker(settings, engine, interval_s=args.interval)
    if args.once:
        worker.run_once()
        return 0
    stop = stop_event_on_signals()
    worker.start()
    wait_until_set(stop)
    worker.stop()
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """Pin a Parquet/CSV dataset as the drift reference of a model (or one version)."""
    from inferloop.analyzer import register_reference
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    if not args.file.exists():
        print(f"inferloop: no such file: {args.file}", file=sys.stderr)
        return 2
    engine = create_engine_for(settings.resolved_database_url())
    reference_id = register_reference(
        engine, settings.data_dir, args.model, args.file, version=args.version, name=args.name
    )
    scope = f"{args.model} version {args.version}" if args.version else f"every version of {args.model}"
    print(f"reference {reference_id} pinned for {scope} from {args.file}")
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    """Print the open and pending findings, newest last."""
    from inferloop.analyzer import list_findings
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    engine = create_engine_for(settings.resolved_database_url())
    with engine.connect() as connection:
        findings = list_findings(connection, model=args.model)
    if not findings:
        print("no open findings")
    for finding in findings:
        print(
            f"#{finding.id} [{finding.status}/{finding.severity}] {finding.model} "
            f"v{finding.version or '-'} {finding.kind}: {finding.title}"
        )
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    if not SERVICES_SCRIPT.exists():
        print(
            "`inferloop dev` needs a source checkout (deploy/services.sh); "
            "with Docker, use docker-compose.yml instead.",
            file=sys.stderr,
        )
        return 2
    which = "all" if args.service == "services" else args.service
    return subprocess.call(["bash", str(SERVICES_SCRIPT), args.dev_action, which])


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------- parser


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL of the store (env INFERLOOP_DATABASE_URL; "
        "default: SQLite file in the data dir)"
    )
    parser.add_argument("--data-dir", type=Path, help="data directory (env INFERLOOP_DATA_DIR)")


def _add_kafka_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kafka-bootstrap-servers", help="brokers, comma-separated (env INFERLOOP_KAFKA_BOOTSTRAP_SERVERS)"
    )
    parser.add_argument("--kafka-topic", help="events topic (env INFERLOOP_KAFKA_TOPIC)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferloop",
        description="Inference observability and feedback loop. Settings come from "
        "INFERLOOP_* environment variables; flags override them.",
    )
    parser.add_argument("--version", action="version", version=f"inferloop {__version__}")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING… (env INFERLOOP_LOG_LEVEL)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the embedded platform (server, HTTP ingest, workers) on one machine"
    )
    _add_store_options(up)
    up.add_argument("--host", help="listen address (env INFERLOOP_HOST, default 127.0.0.1)")
    up.add_argument("--port", type=int, help="listen port (env INFERLOOP_PORT, default 8765)")
    up.set_defaults(handler=cmd_up)

    demo = commands.add_parser(
        "demo", help="the whole loop on one machine: platform, monitored model, bad release, findings"
    )
    demo.add_argument("--data-dir", type=Path, help="data directory (env INFERLOOP_DATA_DIR)")
    demo.add_argument("--host", help="listen address (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="listen port (default 8765; 0 picks a free one)")
    demo.add_argument("--requests", type=int, default=1500, help="requests per model version")
    demo.add_argument("--exit", action="store_true", help="exit when done instead of serving on")
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="manage the store's schema (Alembic migrations)")
    db_actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    for action, help_text in (
        ("upgrade", "apply migrations up to a revision (default: head)"),
        ("downgrade", "revert migrations down to a revision"),
        ("current", "print the revision the database is at"),
    ):
        sub = db_actions.add_parser(action, help=help_text)
        _add_store_options(sub)
        if action != "current":
            sub.add_argument("revision", nargs="?", default="head" if action == "upgrade" else "base")
    db.set_defaults(handler=cmd_db)

    collector = commands.add_parser(
        "collector", help="consume events from Kafka into the store (one member of a consumer group)"
    )
    _add_store_options(collector)
    _add_kafka_options(collector)
    collector.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics (lag, rate, dead letters) on this port"
    )
    collector.set_defaults(handler=cmd_collector)

    analyzer = commands.add_parser(
        "analyzer", help="find drift, regressions and quality drops, continuously"
    )
    _add_store_options(analyzer)
    analyzer.add_argument("--interval", type=float, default=60.0, help="seconds between runs")
    analyzer.add_argument("--once", action="store_true", help="analyse once and exit")
    analyzer.set_defaults(handler=cmd_analyzer)

    reference = commands.add_parser(
        "reference", help="pin a Parquet/CSV dataset as a model's drift reference"
    )
    _add_store_options(reference)
    reference.add_argument("model", help="model name, as given to @monitor")
    reference.add_argument("file", type=Path, help=".parquet or .csv with one column per feature")
    reference.add_argument("--version", help="only this model version (default: every version)")
    reference.add_argument("--name", help="a label for the reference (default: the file name)")
    reference.set_defaults(handler=cmd_reference)

    findings = commands.add_parser("findings", help="list open and pending findings")
    _add_store_options(findings)
    findings.add_argument("--model", help="only this model")
    findings.set_defaults(handler=cmd_findings)

    dev = commands.add_parser("dev", help="local Kafka and PostgreSQL for development and tests")
    dev.add_argument("service", choices=["kafka", "postgres", "services"])
    dev.add_argument("dev_action", choices=["start", "stop", "status"])
    dev.set_defaults(handler=cmd_dev)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from inferloop.logs import configure_logging

    configure_logging(args.log_level)
    try:
        return args.handler(args)
    except ValueError as error:  # invalid settings: say what is wrong, no traceback
        print(f"inferloop: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
