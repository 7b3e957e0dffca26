"""`inferloop alerts …` and `inferloop silences …`: check a config, test routes and receivers,
manage silences.

The same rules as the API's (`inferloop.alerts` shares them): matchers in
Alertmanager's syntax, a silence ends after it starts, an edit of the matchers
replaces the silence. A user's mistake (a bad file, matcher or id) is a message
and exit status 2 (1 for a failed test send), never a traceback; no secret is ever
printed, since receivers' outcomes and errors are written to leave them out.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from .flags import add_setting_flags, settings_from_args

USAGE_ERROR = 2
NOT_DELIVERED = 1


# ---------------------------------------------------------------- alerts


def cmd_alerts_check(args: argparse.Namespace) -> int:
    """Validate a config: a summary when it is sound, every problem with its line if not.

    Unless `--syntax-only`, each receiver is also built as `inferloop up` builds it
    (secret files read, URLs checked), so a check that passes means the start will.
    """
    from inferloop.alerts import ConfigError, build_receiver, load_config

    path = args.file or settings_from_args(args).alerts.config_file
    if path is None:
        return _fail("give a FILE or set INFERLOOP_ALERTS__CONFIG_FILE")
    try:
        config = load_config(Path(path).read_text(), str(path))
    except OSError as error:
        return _fail(f"cannot read {path}: {error.strerror or error}")
    except ConfigError as error:
        print(f"{path}: {len(error.problems)} problem(s):", file=sys.stderr)
        for problem in error.problems:  # `file:line: where: what`, as compilers write it
            line = f"{problem.line}:" if problem.line is not None else ""
            where = f" {problem.path}:" if problem.path else ""
            print(f"  {path}:{line}{where} {problem.message}", file=sys.stderr)
        return USAGE_ERROR
    if not args.syntax_only:
        unbuildable = []
        for declaration in config.receivers:
            try:
                build_receiver(declaration)
            except (OSError, ValueError) as error:  # messages leave secrets out
                unbuildable.append(f"receiver {declaration.name!r}: {error}")
        if unbuildable:
            print(f"{path}: receivers that cannot be built:", file=sys.stderr)
            for line in unbuildable:
                print(f"  {line}", file=sys.stderr)
            print("  (--syntax-only checks the file alone)", file=sys.stderr)
            return USAGE_ERROR
    routes = config.root.walk()
    receivers = ", ".join(f"{r.name} ({r.type})" for r in config.receivers)
    print(f"{path}: valid")
    print(f"  rules: {len(config.rules)}")
    print(f"  routes: {len(routes)} (the root and {len(routes) - 1} below it)")
    print(f"  receivers: {len(config.receivers)}: {receivers}")
    print(f"  inhibit rules: {len(config.inhibit_rules)}")
    print(f"  time intervals: {len(config.time_intervals)}")
    return 0


def cmd_alerts_route(args: argparse.Namespace) -> int:
    """Which receivers a label set reaches now, and what (silence, inhibition, mute) stops it."""
    from sqlalchemy.exc import SQLAlchemyError

    from inferloop.alerts import explain_now

    labels = {}
    for item in args.labels:
        name, sep, value = item.partition("=")
        if not sep or not name:
            return _fail(f"label {item!r} must be NAME=VALUE (e.g. model=fraud)")
        labels[name] = value
    settings = settings_from_args(args)
    config = _config(settings)
    if isinstance(config, int):
        return config
    now_ns = time.time_ns()
    engine = _engine(settings)
    try:
        with engine.connect() as connection:
            reach = explain_now(connection, config, labels, now_ns)
    except SQLAlchemyError as error:  # the store, not the config: say so and how to fix it
        return _store_unavailable(error)
    finally:
        engine.dispose()
    print("labels: " + ", ".join(f"{k}={v!r}" for k, v in sorted(labels.items())))
    for route in reach:
        print(f"{route.route_id} -> {route.receiver}  group {route.group_key.partition(':')[2]}")
        if route.delivered:
            print("  sent now: no silence, inhibition or mute stops it")
        if route.silenced_by is not None:
            silence = route.silenced_by
            print(
                f"  silenced by {silence.id} ({', '.join(str(m) for m in silence.matchers)}) "
                f"until {_when(silence.ends_at_ns)}{_about(silence.comment, silence.created_by)}"
            )
        if route.inhibited_by is not None:
            source = route.inhibited_by.source
            shown = ", ".join(f"{k}={v!r}" for k, v in sorted(source.labels.items()))
            print(
                f"  inhibited by inhibit rule {route.inhibited_by.rule_index} "
                f"while this fires: {shown}"
            )
        if route.muted_by:
            print(f"  muted now by time interval(s): {', '.join(route.muted_by)}")
    return 0


def cmd_alerts_test(args: argparse.Namespace) -> int:
    """Send one clearly marked test notification through a receiver and say what happened."""
    from inferloop.alerts import OutcomeKind, build_receiver

    settings = settings_from_args(args)
    config = _config(settings)
    if isinstance(config, int):
        return config
    names = [r.name for r in config.receivers]
    if args.receiver not in names:
        return _fail(f"no receiver {args.receiver!r} in the config (it has: {', '.join(names)})")
    try:
        receiver = build_receiver(config.receiver(args.receiver))
    except (OSError, ValueError) as error:  # a secret file, a URL: messages leave secrets out
        return _fail(f"receiver {args.receiver!r} cannot be built: {error}")
    notification = marked_test_notification(args.receiver, config.external_url, time.time_ns())
    try:
        outcome = receiver.send(notification, timeout_s=settings.alerts.send_timeout_s)
    except Exception as error:  # a receiver bug; its message might quote a secret URL
        print(f"{args.receiver}: the receiver failed: {type(error).__name__}", file=sys.stderr)
        return NOT_DELIVERED
    status = f"HTTP {outcome.status_code}" if outcome.status_code is not None else "no status"
    line = f"{args.receiver}: {outcome.kind} ({status}) in {outcome.latency_s * 1000:.0f} ms"
    if outcome.detail:
        line += f": {outcome.detail}"
    if outcome.retry_after_s is not None:
        line += f"; the receiver asks to retry after {outcome.retry_after_s:g} s"
    print(line)
    print(f"  test notification id {notification.id}")
    return 0 if outcome.kind is OutcomeKind.DELIVERED else NOT_DELIVERED


def marked_test_notification(receiver: str, dashboard_url: str | None, now_ns: int):
    """A firing notification nobody can mistake for a real one."""
    from inferloop.alerts import Alert, AlertStatus, Notification

    labels = {
        "alertname": "InferloopTestNotification",
        "model": "inferloop-test",
        "kind": "test",
        "severity": "info",
    }
    alert = Alert(
        labels=labels,
        annotations={
            "title": "Test notification from inferloop: please ignore",
            "summary": f"Sent by `inferloop alerts test {receiver}` to check this receiver.",
        },
        starts_at_ns=now_ns,
    )
    return Notification(
        id=f"test-{uuid.uuid4().hex}",
        receiver=receiver,
        group_key=f"inferloop-test:{receiver}",
        status=AlertStatus.FIRING,
        group_labels={"alertname": labels["alertname"]},
        common_labels=labels,
        alerts=(alert,),
        created_at_ns=now_ns,
        dashboard_url=dashboard_url,
    )


# ---------------------------------------------------------------- silences


def cmd_alerts_run(args: argparse.Namespace) -> int:
    """The evaluator and the dispatcher as a service (scale-out: run several on PostgreSQL)."""
    from prometheus_client import CollectorRegistry

    from inferloop.alerts import ConfigError
    from inferloop.signals import stop_event_on_signals, wait_until_set

    from .embedded import alerting_workers
    from .flags import settings_from_args

    settings = settings_from_args(args)
    if settings.alerts.config_file is None:
        return _fail("no alerting config: pass --config-file or set INFERLOOP_ALERTS__CONFIG_FILE")
    engine = _engine(settings)
    try:
        workers = alerting_workers(settings, engine, CollectorRegistry())
    except (ConfigError, OSError) as error:
        return _fail(f"{error}")
    stop = stop_event_on_signals()
    for worker in workers:
        worker.start()
    print(f"alerting from {settings.alerts.config_file} on {settings.resolved_database_url()}")
    wait_until_set(stop)
    for worker in reversed(workers):
        worker.stop()
    engine.dispose()
    return 0


def cmd_silences_add(args: argparse.Namespace) -> int:
    from inferloop.alerts import add_silence

    def add(connection, now_ns):
        return (
            add_silence(
                connection,
                args.matchers,
                now_ns=now_ns,
                duration=args.duration,
                comment=args.comment,
                created_by=args.created_by if args.created_by is not None else _user(),
            ),
        )

    return _silence_command(args, add, "silenced")


def cmd_silences_list(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from inferloop.alerts import stored_silences

    now_ns = time.time_ns()
    engine = _engine(settings_from_args(args))
    try:
        with engine.connect() as connection:
            silences = stored_silences(connection, now_ns=now_ns, include_expired=args.all)
    except SQLAlchemyError as error:
        return _store_unavailable(error)
    finally:
        engine.dispose()
    if not silences:
        print("no silences" if args.all else "no active or pending silences")
    for silence in silences:
        _print_silence(silence, now_ns)
    return 0


def cmd_silences_expire(args: argparse.Namespace) -> int:
    from inferloop.alerts import expire_stored_silence

    def expire(connection, now_ns):
        return (expire_stored_silence(connection, args.id, now_ns=now_ns),)

    return _silence_command(args, expire, "expired")


def cmd_silences_edit(args: argparse.Namespace) -> int:
    from inferloop.alerts import edit_stored_silence

    if args.matchers is None and args.duration is None and args.comment is None:
        return _fail("nothing to change: give --matchers, --duration or --comment")

    def edit(connection, now_ns):
        return edit_stored_silence(
            connection,
            args.id,
            now_ns=now_ns,
            matchers=args.matchers,
            duration=args.duration,
            comment=args.comment,
        )

    return _silence_command(args, edit, "edited")


def _silence_command(args: argparse.Namespace, change, verb: str) -> int:
    """Run one change in a transaction and print the silences it stored."""
    from sqlalchemy.exc import SQLAlchemyError

    from inferloop.alerts import SilenceError, UnknownSilence

    now_ns = time.time_ns()
    engine = _engine(settings_from_args(args))
    try:
        with engine.begin() as connection:
            silences = change(connection, now_ns)
    except (SilenceError, ValueError, UnknownSilence) as error:
        return _fail(str(error))
    except SQLAlchemyError as error:
        return _store_unavailable(error)
    finally:
        engine.dispose()
    if len(silences) == 2:
        old, new = silences
        print(f"silence {old.id} expired; its matchers changed, so {new.id} replaces it:")
        _print_silence(new, now_ns)
    else:
        print(f"{verb}:")
        _print_silence(silences[0], now_ns)
    return 0


def _print_silence(silence, now_ns: int) -> None:
    from inferloop.alerts import silence_state

    matchers = ", ".join(str(m) for m in silence.matchers)
    print(
        f"{silence.id}  {silence_state(silence, now_ns):<7}  {{{matchers}}}  "
        f"{_when(silence.starts_at_ns)} .. {_when(silence.ends_at_ns)}"
        f"{_about(silence.comment, silence.created_by)}"
    )


# ---------------------------------------------------------------- helpers


def _config(settings):
    """The alerting config of the settings, or the exit status after saying what is wrong."""
    from inferloop.alerts import ConfigError

    from .embedded import alerting_config

    path = settings.alerts.config_file
    if path is None:
        return _fail("no alerting config: pass --config-file or set INFERLOOP_ALERTS__CONFIG_FILE")
    try:
        return alerting_config(settings)
    except OSError as error:
        return _fail(f"cannot read {path}: {error.strerror or error}")
    except ConfigError as error:
        return _fail(f"{error} (see `inferloop alerts check {path}`)")


def _engine(settings):
    from inferloop.store.base import create_engine_for

    return create_engine_for(settings.resolved_database_url())


def _store_unavailable(error: Exception) -> int:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return _fail(
        f"cannot use the store ({type(error).__name__}: {first_line}); "
        "is it running and migrated (`inferloop db upgrade`)?"
    )


def _fail(message: str) -> int:
    print(f"inferloop: {message}", file=sys.stderr)
    return USAGE_ERROR


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _about(comment: str, created_by: str) -> str:
    text = f"  {comment!r}" if comment else ""
    return text + (f" by {created_by}" if created_by else "")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return ""


# ---------------------------------------------------------------- parser


def add_alert_commands(
    commands: argparse._SubParsersAction, store_settings: tuple[str, ...]
) -> None:
    """The `alerts` and `silences` sub-commands, under the CLI's `commands`."""
    alerts = commands.add_parser(
        "alerts",
        help="check the alerting config, test which receivers a label set reaches, test a receiver",
        description="Work with the alerting config (INFERLOOP_ALERTS__CONFIG_FILE).",
    )
    actions = alerts.add_subparsers(dest="alerts_action", required=True, metavar="ACTION")

    check = actions.add_parser(
        "check",
        help="validate an alerting config file",
        description="Validate an alerting config: exit 0 with a summary of its rules, routes "
        "and receivers, or exit 2 printing every problem with its line. Each receiver is "
        "also built (secret files read) as `inferloop up` would, unless --syntax-only.",
    )
    check.add_argument(
        "file", nargs="?", type=Path, help="the YAML file (default: INFERLOOP_ALERTS__CONFIG_FILE)"
    )
    check.add_argument(
        "--syntax-only",
        action="store_true",
        help="check the file alone: do not read the receivers' secret files",
    )
    check.set_defaults(handler=cmd_alerts_check)

    route = actions.add_parser(
        "route",
        help="which receivers a label set reaches, and what would stop it now",
        description="The route tester: every route the labels reach, its receiver and group, "
        "and whether a silence (from the store), an inhibition (by an alert of an open "
        "finding) or a mute time interval stops the notification right now.",
    )
    route.add_argument(
        "labels", nargs="+", metavar="LABEL=VALUE", help="the alert's labels, e.g. model=fraud"
    )
    add_setting_flags(route, "alerts.config_file", "alerts.dashboard_url", *store_settings)
    route.set_defaults(handler=cmd_alerts_route)

    test = actions.add_parser(
        "test",
        help="send one test notification through a receiver",
        description="Send one notification marked as a test (alertname "
        "InferloopTestNotification, severity info) through RECEIVER of the config, at once, "
        "and print the outcome: delivered, retry, permanent or gone, with the status code. "
        "Exit 1 unless delivered. Secrets are never printed.",
    )
    test.add_argument("receiver", help="the receiver's name in the config")
    add_setting_flags(test, "alerts.config_file", "alerts.dashboard_url", "alerts.send_timeout_s")
    test.set_defaults(handler=cmd_alerts_test)

    run = actions.add_parser(
        "run",
        help="evaluate findings and deliver notifications until stopped",
        description="The alert evaluator and the outbox dispatcher as one long-running "
        "process (what `inferloop up` runs inside). Several can share a PostgreSQL store: "
        "the core's state is locked per pass and notifications are claimed with leases.",
    )
    add_setting_flags(run, *store_settings, "alerts.*")
    run.set_defaults(handler=cmd_alerts_run)

    silences = commands.add_parser(
        "silences",
        help="add, list, edit and expire silences",
        description="Silences keep alerts matching all their matchers from being sent during "
        "their window. They live in the store, so every process sees them at once.",
    )
    verbs = silences.add_subparsers(dest="silences_action", required=True, metavar="ACTION")

    add = verbs.add_parser(
        "add",
        help="silence the alerts matching every MATCHER for a while",
        description='Add a silence from now, e.g. `inferloop silences add model="fraud" '
        "'kind=~\".*drift\"' --duration 2h --comment 'retraining'`. At least one matcher must "
        "not match an empty value.",
    )
    add.add_argument(
        "matchers",
        nargs="+",
        metavar="MATCHER",
        help="NAME=VALUE, NAME!=VALUE, NAME=~REGEX or NAME!~REGEX (regexes are anchored)",
    )
    add.add_argument(
        "--duration", required=True, help="how long, e.g. 30m, 2h, 1h30m, 1d (from now)"
    )
    add.add_argument("--comment", default="", help="why (shown wherever the silence is)")
    add.add_argument("--created-by", help="who (default: your login name)")
    add_setting_flags(add, *store_settings)
    add.set_defaults(handler=cmd_silences_add)

    listing = verbs.add_parser(
        "list",
        help="list active and pending silences",
        description="List silences by start: id, state, matchers, window, comment and author.",
    )
    listing.add_argument("--all", action="store_true", help="include expired silences")
    add_setting_flags(listing, *store_settings)
    listing.set_defaults(handler=cmd_silences_list)

    expire = verbs.add_parser(
        "expire",
        help="end a silence now",
        description="End a silence now (a pending one never begins). It stays listed with --all.",
    )
    expire.add_argument("id", help="the silence's id (see `inferloop silences list`)")
    add_setting_flags(expire, *store_settings)
    expire.set_defaults(handler=cmd_silences_expire)

    edit = verbs.add_parser(
        "edit",
        help="change a silence's matchers, duration or comment",
        description="Edit a silence that is not over. Changing its matchers expires it and "
        "creates a new silence with a new id (so what was silenced when stays on record); a "
        "new duration or comment keeps the id.",
    )
    edit.add_argument("id", help="the silence's id")
    edit.add_argument("--matchers", nargs="+", metavar="MATCHER", help="the new matchers")
    edit.add_argument(
        "--duration", help="new length, counted from now (or from its start if not begun)"
    )
    edit.add_argument("--comment", help="the new comment")
    add_setting_flags(edit, *store_settings)
    edit.set_defaults(handler=cmd_silences_edit)
