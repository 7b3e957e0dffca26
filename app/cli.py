"""The `inferloop` command line: run the platform's services and manage its store.

Each sub-command reads `Settings` from the environment, lets flags override them,
and passes them into the component it starts; components never read the
environment themselves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from inferloop import __version__
from inferloop.signals import stop_event_on_signals, wait_until_set
from inferloop.store.vocabulary import ACTIVE_STATUSES, FindingStatus

from .cli_alerts import add_alert_commands
from .cli_feedback import add_feedback_commands
from .cli_keys import add_key_commands
from .flags import add_setting_flags


def _settings(args: argparse.Namespace):
    """The settings of this invocation: environment, then flags; validated (production too)."""
    from .flags import settings_from_args

    return settings_from_args(args)


# ---------------------------------------------------------------- commands


def cmd_db(args: argparse.Namespace) -> int:
    from inferloop.store import migrate

    settings = _settings(args)
    url = settings.resolved_database_url()
    if args.db_action in ("upgrade", "downgrade"):
        move = migrate.upgrade if args.db_action == "upgrade" else migrate.downgrade
        move(url, args.revision)
        print(
            f"database at {_display_url(url)} is at revision {migrate.current(url) or 'base (empty)'}"
        )
    else:
        print(migrate.current(url) or "empty (no migrations applied)")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """The embedded deployment: migrations, server, HTTP ingest and workers in one process."""
    from inferloop.app.embedded import run_embedded

    settings = _settings(args)
    return run_embedded(settings, stop_event=stop_event_on_signals())


def cmd_demo(args: argparse.Namespace) -> int:
    """`make run`: the platform plus a monitored model, a bad release, labels and findings."""
    from inferloop.app.demo import main_demo

    settings = _settings(args)
    return main_demo(
        settings,
        fast=args.fast,
        keep_serving=not args.exit,
        stop_event=stop_event_on_signals(),
    )


def cmd_collector(args: argparse.Namespace) -> int:
    from inferloop.collector import run_collector

    settings = _settings(args)
    print(
        f"collector: group {settings.kafka_group_id!r} consuming {settings.kafka_topic!r} "
        f"from {settings.kafka_bootstrap_servers}",
        file=sys.stderr,
    )
    run_collector(settings, stop_event=stop_event_on_signals())
    return 0


def cmd_analyzer(args: argparse.Namespace) -> int:
    from inferloop.analyzer import AnalyzerWorker
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    engine = create_engine_for(settings.resolved_database_url())
    worker = AnalyzerWorker(settings, engine)
    if args.once:
        worker.run_once()
        return 0
    stop = stop_event_on_signals()
    worker.start()
    wait_until_set(stop)
    worker.stop()
    return 0


def cmd_feedback(args: argparse.Namespace) -> int:
    """The rollout guard and the dispatcher of its requests, until stopped."""
    from inferloop.store.base import create_engine_for

    from .embedded import feedback_workers

    settings = _settings(args)
    engine = create_engine_for(settings.resolved_database_url())
    workers = feedback_workers(settings, engine)
    if args.once:
        workers[0].run_once()
        for worker in workers[1:]:
            worker.run_once()
        return 0
    stop = stop_event_on_signals()
    for worker in workers:
        worker.start()
    print(f"feedback loop on {settings.resolved_database_url()}", file=sys.stderr)
    wait_until_set(stop)
    for worker in reversed(workers):
        worker.stop()
    engine.dispose()
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """Pin a Parquet/CSV dataset as the drift reference of a model (or one version)."""
    from inferloop.analyzer import ReferenceDataError, register_reference
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    if not args.file.exists():
        print(f"inferloop: no such file: {args.file}", file=sys.stderr)
        return 2
    engine = create_engine_for(settings.resolved_database_url())
    try:
        reference_id = register_reference(
            engine, settings.data_dir, args.model, args.file, version=args.version, name=args.name
        )
    except ReferenceDataError as error:  # the user's file, not a bug: no traceback
        print(f"inferloop: {args.file}: {error}", file=sys.stderr)
        return 2
    scope = (
        f"{args.model} version {args.version}" if args.version else f"every version of {args.model}"
    )
    print(f"reference {reference_id} pinned for {scope} from {args.file}")
    return 0


def cmd_findings(args: argparse.Namespace) -> int:
    """Print the findings in the chosen statuses (default: open and pending), newest last."""
    from inferloop.store import list_findings
    from inferloop.store.base import create_engine_for

    settings = _settings(args)
    engine = create_engine_for(settings.resolved_database_url())
    statuses = args.status or list(ACTIVE_STATUSES)
    with engine.connect() as connection:
        findings = list_findings(connection, model=args.model, statuses=statuses)
    if not findings:
        print(f"no {' or '.join(statuses)} findings")
    for finding in findings:
        print(
            f"#{finding.id} [{finding.status}/{finding.severity}] {finding.model} "
            f"v{finding.version or '-'} {finding.kind}: {finding.title}"
        )
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    """Start, stop or probe the local Kafka broker and PostgreSQL cluster."""
    script = resources.files("inferloop.deploy") / "services.sh"
    which = "all" if args.service == "services" else args.service
    with resources.as_file(script) as path:
        return subprocess.call(["bash", str(path), args.dev_action, which], env=os.environ.copy())


def cmd_config(args: argparse.Namespace) -> int:
    """Print the effective settings as variables (secrets hidden), or the reference."""
    if args.reference:
        from .config_reference import reference_markdown

        print(reference_markdown(), end="")
        return 0
    for name, value in sorted(_settings(args).to_environment().items()):
        hidden = name.endswith(("_KEY", "_SECRET"))
        print(f"{name}={'***' if hidden else value}")
    return 0


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------- parser


STORE_SETTINGS = ("database_url", "data_dir")
SERVER_SETTINGS = ("host", "port")
KAFKA_SETTINGS = ("kafka_bootstrap_servers", "kafka_topic")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inferloop",
        description="Inference observability and feedback loop. Settings come from "
        "INFERLOOP_* environment variables; flags override them.",
    )
    parser.add_argument("--version", action="version", version=f"inferloop {__version__}")
    add_setting_flags(parser, "log_level")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the embedded platform (server, HTTP ingest, workers) on one machine"
    )
    add_setting_flags(up, *STORE_SETTINGS, *SERVER_SETTINGS)
    up.set_defaults(handler=cmd_up)

    demo = commands.add_parser(
        "demo",
        help="the whole loop live on one machine: traffic, drift, alerts, retrain, guarded redeploy",
    )
    add_setting_flags(demo, "data_dir", *SERVER_SETTINGS)
    demo.add_argument(
        "--fast", action="store_true", help="tighter stage deadlines, for tests (the same story)"
    )
    demo.add_argument(
        "--exit", action="store_true", help="exit when done instead of keeping the platform up"
    )
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="manage the store's schema (Alembic migrations)")
    db_actions = db.add_subparsers(dest="db_action", required=True, metavar="ACTION")
    for action, help_text in (
        ("upgrade", "apply migrations up to a revision (default: head)"),
        ("downgrade", "revert migrations down to a revision"),
        ("current", "print the revision the database is at"),
    ):
        sub = db_actions.add_parser(action, help=help_text)
        add_setting_flags(sub, *STORE_SETTINGS)
        if action != "current":
            sub.add_argument(
                "revision", nargs="?", default="head" if action == "upgrade" else "base"
            )
    db.set_defaults(handler=cmd_db)

    collector = commands.add_parser(
        "collector",
        help="consume events from Kafka into the store (one member of a consumer group)",
    )
    add_setting_flags(collector, *STORE_SETTINGS, *KAFKA_SETTINGS, "kafka_group_id", "collector.*")
    collector.set_defaults(handler=cmd_collector)

    analyzer = commands.add_parser(
        "analyzer", help="find drift, regressions and quality drops, continuously"
    )
    add_setting_flags(
        analyzer, *STORE_SETTINGS, "analyzer.*", aliases={"analyzer.interval_s": "--interval"}
    )
    analyzer.add_argument("--once", action="store_true", help="analyse once and exit")
    analyzer.set_defaults(handler=cmd_analyzer)

    feedback = commands.add_parser(
        "feedback",
        help="guard canary rollouts (promote or roll back) and send their requests",
        description="Compare each canary version with the live one on the same windows of "
        "traffic (anytime-valid tests, so checking every window does not inflate false "
        "rollbacks), promote or roll it back in the registry, and deliver the redeploy and "
        "rollback requests (CloudEvents) to the configured destinations.",
    )
    add_setting_flags(feedback, *STORE_SETTINGS, "kafka_bootstrap_servers", "feedback.*")
    feedback.add_argument("--once", action="store_true", help="one pass, then exit")
    feedback.set_defaults(handler=cmd_feedback)

    reference = commands.add_parser(
        "reference", help="pin a Parquet/CSV dataset as a model's drift reference"
    )
    add_setting_flags(reference, *STORE_SETTINGS)
    reference.add_argument("model", help="model name, as given to @monitor")
    reference.add_argument("file", type=Path, help=".parquet or .csv with one column per feature")
    reference.add_argument("--version", help="only this model version (default: every version)")
    reference.add_argument("--name", help="a label for the reference (default: the file name)")
    reference.set_defaults(handler=cmd_reference)

    findings = commands.add_parser("findings", help="list open and pending findings")
    add_setting_flags(findings, *STORE_SETTINGS)
    findings.add_argument("--model", help="only this model")
    findings.add_argument(
        "--status",
        action="extend",
        nargs="+",
        choices=[str(status) for status in FindingStatus],
        help="only findings in these statuses (default: open pending)",
    )
    findings.set_defaults(status=None)
    findings.set_defaults(handler=cmd_findings)

    add_alert_commands(commands, STORE_SETTINGS)
    add_key_commands(commands, STORE_SETTINGS)
    add_feedback_commands(commands, STORE_SETTINGS)

    dev = commands.add_parser("dev", help="local Kafka and PostgreSQL for development and tests")
    dev.add_argument("service", choices=["kafka", "postgres", "services"])
    dev.add_argument("dev_action", choices=["start", "stop", "status"])
    dev.set_defaults(handler=cmd_dev)

    config = commands.add_parser(
        "config", help="print the effective settings, or the reference of every variable"
    )
    config.add_argument(
        "--reference", action="store_true", help="print every variable as Markdown tables"
    )
    config.set_defaults(handler=cmd_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from inferloop.logs import configure_logging

    try:
        configure_logging(_settings(args).log_level)
        return args.handler(args)
    except ValidationError as error:  # invalid settings: say what is wrong, no traceback
        print(f"inferloop: invalid settings:\n{_settings_problems(error)}", file=sys.stderr)
        return 2


def _settings_problems(error: ValidationError) -> str:
    """One line per invalid setting, naming its variable (production refusals included)."""
    from inferloop.settings import environment_name

    lines = []
    for problem in error.errors():
        location = ".".join(str(part) for part in problem["loc"])
        where = f"{environment_name(location)}: " if location else ""
        lines.append(f"  {where}{problem['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
