"""`inferloop registry …`, `inferloop snapshots …`, `inferloop retrain` and `inferloop lineage`:
the feedback loop from a terminal, on the store directly (no server needed).

Each command does what its API route does, through the same functions: a move to canary
queues the redeploy request (`start_canary`), a retrain exports its snapshot and queues
its request (`request_retrain`). A user's mistake (an unknown version, an illegal move,
a bad time) is one line and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from inferloop.times import format_time_ns, parse_time_ns

from .flags import add_setting_flags, settings_from_args

USAGE_ERROR = 2
NS = 1_000_000_000


def cmd_registry_register(args: argparse.Namespace) -> int:
    """Register a version: its number is the next one, assigned in the transaction."""
    from inferloop.feedback import register_version

    try:
        metrics = _key_values(args.metric, numbers=True)
        metadata = _key_values(args.meta, numbers=False)
    except ValueError as error:
        return _fail(str(error))
    with _engine(args).begin() as connection:
        try:
            registered = register_version(
                connection,
                args.model,
                artifact_uri=args.artifact_uri,
                who=args.who,
                now_ns=time.time_ns(),
                metrics=metrics,
                metadata=metadata,
                source_snapshot_uri=args.snapshot_uri,
                source_snapshot_hash=args.snapshot_hash,
            )
        except ValueError as error:
            return _fail(str(error))
    print(f"{registered.model} version {registered.version} registered (candidate)")
    return 0


def cmd_registry_move(args: argparse.Namespace) -> int:
    """Move a version in an environment; to canary also queues the redeploy request."""
    from inferloop.feedback import (
        IllegalMoveError,
        UnknownVersionError,
        VersionState,
        move_version,
        start_canary,
    )

    settings = settings_from_args(args)
    destinations = settings.feedback.destination_names()
    made: dict[str, Any] = {
        "environment": args.environment,
        "who": args.who,
        "why": args.why,
        "now_ns": time.time_ns(),
    }
    try:
        target = VersionState(args.to)
        with _engine(args).begin() as connection:
            if target is VersionState.CANARY:
                moves, event = start_canary(
                    connection, args.model, args.version, destinations=destinations, **made
                )
            else:
                moves = move_version(connection, args.model, args.version, target, **made)
                event = None
    except (UnknownVersionError, IllegalMoveError, ValueError) as error:
        return _fail(str(error))
    for move in moves:
        print(
            f"{move.model} v{move.version} {move.environment}: {move.from_state} → {move.to_state}"
        )
    if event is not None:
        where = ", ".join(destinations) or "no destination configured: nobody will receive it"
        print(f"redeploy request {event['id']} queued ({where})")
    return 0


def cmd_registry_list(args: argparse.Namespace) -> int:
    """Every version of a model with its state per environment."""
    from inferloop.store.feedback_pages import versions_page

    with _engine(args).connect() as connection:
        rows = versions_page(connection, args.model, after=None, limit=10_000)
    if not rows:
        print(f"{args.model}: no registered version")
        return 0
    for row in rows:
        states = ", ".join(f"{env}={state}" for env, state in sorted(row["states"].items()))
        print(
            f"v{row['version']:<4} {format_time_ns(row['registered_at_ns'])}  "
            f"{states or 'candidate'}  {row['artifact_uri']}"
        )
    return 0


def cmd_registry_history(args: argparse.Namespace) -> int:
    """Every move of a model (or one version), oldest first: who, when, why."""
    from inferloop.feedback import version_history

    with _engine(args).connect() as connection:
        moves = version_history(connection, args.model, args.version)
    for move in moves:
        change = (
            "registered"
            if move.environment is None
            else f"{move.environment}: {move.from_state} → {move.to_state}"
        )
        print(f"{format_time_ns(move.at_ns)}  v{move.version} {change}  by {move.who}: {move.why}")
    if not moves:
        print(f"{args.model}: no moves yet")
    return 0


def cmd_registry_live(args: argparse.Namespace) -> int:
    """Which version served an environment at a time (default: now), from the history."""
    from inferloop.feedback import live_at

    try:
        at_ns = time.time_ns() if args.at is None else parse_time_ns(args.at)
    except ValueError as error:
        return _fail(str(error))
    with _engine(args).connect() as connection:
        version = live_at(connection, args.model, environment=args.environment, time_ns=at_ns)
    if version is None:
        print(f"{args.model} {args.environment}: no version was live at {format_time_ns(at_ns)}")
        return 1
    print(f"{args.model} {args.environment}: v{version} was live at {format_time_ns(at_ns)}")
    return 0


def cmd_snapshots_export(args: argparse.Namespace) -> int:
    """Export the joined rows of a model as Parquet plus a manifest; print its URI and hash."""
    from inferloop.feedback import SnapshotExistsError, export_snapshot

    settings = settings_from_args(args)
    now_ns = time.time_ns()
    try:
        snapshot = export_snapshot(
            _engine(args),
            model=args.model,
            versions=args.versions,
            start_ns=now_ns - int(args.since_s * NS),
            end_ns=now_ns,
            label_as_of_ns=now_ns,
            destination=args.destination or str(settings.snapshots_root()),
            join_policy=args.join_policy,
            include_unlabeled=args.include_unlabeled,
        )
    except SnapshotExistsError as error:
        return _fail(f"{error}: the same export was made before")
    except (ValueError, TypeError) as error:
        return _fail(str(error))
    manifest = snapshot.manifest
    print(snapshot.uri)
    print(
        f"  {manifest['row_count']} rows, {manifest['labeled_count']} labeled, "
        f"hash {snapshot.content_hash}"
    )
    return 0


def cmd_snapshots_verify(args: argparse.Namespace) -> int:
    """Read a snapshot back and check its content hash: exit 0 if intact, 1 if not."""
    from inferloop.feedback import SnapshotError, read_snapshot

    try:
        snapshot = read_snapshot(args.uri)
    except SnapshotError as error:
        print(f"{args.uri}: NOT intact: {error}", file=sys.stderr)
        return 1
    rows = snapshot.manifest["row_count"]
    print(f"{args.uri}: intact, {rows} rows, hash {snapshot.content_hash}")
    return 0


def cmd_retrain(args: argparse.Namespace) -> int:
    """Export a snapshot as of now and queue a retrain request that carries it."""
    from inferloop.feedback import RetrainError, request_retrain
    from inferloop.settings import NO_REQUEST_DESTINATION

    settings = settings_from_args(args)
    destinations = settings.feedback.destination_names()
    if not destinations:
        return _fail(NO_REQUEST_DESTINATION)
    try:
        made = request_retrain(
            _engine(args),
            args.model,
            snapshot_dir=settings.snapshots_root(),
            destinations=destinations,
            now_ns=time.time_ns(),
            reason=args.reason,
            idempotency_key=args.key,
            requested_by=args.who,
            snapshot_window_s=args.since_s,
        )
    except (RetrainError, ValueError) as error:
        return _fail(str(error))
    state = "queued" if made.queued else "already queued before (same decision)"
    print(f"retrain request {made.id} {state} for {', '.join(destinations)}")
    print(
        f"  snapshot {made.snapshot['uri']} (hash {made.snapshot['content_hash']}, {made.snapshot['rows']} rows)"
    )
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Finding → retrain request → snapshot → version → redeploy → rollout, as JSON."""
    from inferloop.store.lineage import UnknownLineageSubject, lineage_of

    if (args.finding is None) == (args.model is None):
        return _fail("give --finding ID, or MODEL and --version N")
    if args.model is not None and args.version is None:
        return _fail("give --version N with MODEL")
    with _engine(args).connect() as connection:
        try:
            lineage = lineage_of(
                connection, finding_id=args.finding, model=args.model, version=args.version
            )
        except UnknownLineageSubject as error:
            return _fail(str(error))
    json.dump(lineage.to_dict(), sys.stdout, indent=2, default=str)
    print()
    return 0


def _key_values(items: list[str], *, numbers: bool) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if numbers:
            try:
                values[name] = float(value)
            except ValueError:
                raise ValueError(f"metric {name!r}: {value!r} is not a number") from None
        else:
            values[name] = value
    return values


def _engine(args: argparse.Namespace):
    from inferloop.store.base import create_engine_for

    return create_engine_for(settings_from_args(args).resolved_database_url())


def _friendly_store_errors(handler: Callable[[argparse.Namespace], int]):
    """Run `handler`; a store that cannot be used is one line of advice, not a traceback."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return handler(args)
        except SQLAlchemyError as error:
            first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
            return _fail(
                f"cannot use the store ({type(error).__name__}: {first_line}); "
                "is it running and migrated (`inferloop db upgrade`)?"
            )

    return run


def _fail(message: str) -> int:
    print(f"inferloop: {message}", file=sys.stderr)
    return USAGE_ERROR


def add_feedback_commands(
    commands: argparse._SubParsersAction, store_settings: tuple[str, ...]
) -> None:
    """The `registry`, `snapshots`, `retrain` and `lineage` sub-commands."""
    destinations = ("feedback.webhook_url", "feedback.webhook_secret", "feedback.kafka_topic")
    destinations += ("feedback.command", "kafka_bootstrap_servers")

    registry = commands.add_parser(
        "registry",
        help="register model versions, move them (canary, live, rolled back), read the history",
        description="The model registry: versions numbered in the transaction that registers "
        "them, and every move kept with who, when and why.",
    )
    actions = registry.add_subparsers(dest="registry_action", required=True, metavar="ACTION")
    register = actions.add_parser("register", help="register a new version (a candidate)")
    register.add_argument("model")
    register.add_argument("--artifact-uri", required=True, help="where the build is stored")
    register.add_argument("--metric", action="append", default=[], metavar="NAME=NUMBER")
    register.add_argument("--meta", action="append", default=[], metavar="NAME=TEXT")
    register.add_argument("--snapshot-uri", help="the labeled snapshot it was trained on")
    register.add_argument("--snapshot-hash", help="that snapshot's content hash")
    register.add_argument("--who", default=getpass.getuser(), help="who registers (audit)")
    register.set_defaults(handler=cmd_registry_register)

    move = actions.add_parser(
        "move",
        help="move a version: canary (queues a redeploy request), live, retired, rolled_back",
    )
    move.add_argument("model")
    move.add_argument("version", type=int)
    move.add_argument("--to", required=True, metavar="STATE")
    move.add_argument("--environment", default="production")
    move.add_argument("--why", required=True, help="the reason, kept in the history")
    move.add_argument("--who", default=getpass.getuser())
    add_setting_flags(move, *destinations)
    move.set_defaults(handler=cmd_registry_move)

    listing = actions.add_parser("list", help="the versions of a model and their states")
    listing.add_argument("model")
    listing.set_defaults(handler=cmd_registry_list)

    history = actions.add_parser("history", help="every move of a model, oldest first")
    history.add_argument("model")
    history.add_argument("--version", type=int, help="only this version's moves")
    history.set_defaults(handler=cmd_registry_history)

    live = actions.add_parser("live", help="which version was live at a time (default: now)")
    live.add_argument("model")
    live.add_argument("--environment", default="production")
    live.add_argument("--at", help="Unix seconds or ISO 8601, e.g. 2026-12-01T10:00:00Z")
    live.set_defaults(handler=cmd_registry_live)

    snapshots = commands.add_parser(
        "snapshots",
        help="export labeled rows as a Parquet snapshot with a manifest, or verify one",
    )
    snapshot_actions = snapshots.add_subparsers(
        dest="snapshots_action", required=True, metavar="ACTION"
    )
    export = snapshot_actions.add_parser("export", help="export a model's joined rows as of now")
    export.add_argument("model")
    export.add_argument("--since-s", type=float, default=30 * 86_400.0, help="how far back")
    export.add_argument("--versions", nargs="+", help="only these versions' traffic")
    export.add_argument("--destination", help="a folder or object-store URL (default: data_dir)")
    export.add_argument("--join-policy", default="latest", choices=("latest", "earliest"))
    export.add_argument("--include-unlabeled", action="store_true")
    add_setting_flags(export, "feedback.snapshots_dir")
    export.set_defaults(handler=cmd_snapshots_export)
    verify = snapshot_actions.add_parser("verify", help="read a snapshot and check its hash")
    verify.add_argument("uri")
    verify.set_defaults(handler=cmd_snapshots_verify)

    retrain = commands.add_parser(
        "retrain",
        help="ask for a retrain by hand: a snapshot as of now, and a request carrying it",
    )
    retrain.add_argument("model")
    retrain.add_argument("--reason", required=True, help="why, kept in the request")
    retrain.add_argument("--key", help="idempotency key: the same key is the same request")
    retrain.add_argument("--since-s", type=float, default=30 * 86_400.0)
    retrain.add_argument("--who", default=getpass.getuser())
    add_setting_flags(retrain, *destinations, "feedback.snapshots_dir")
    retrain.set_defaults(handler=cmd_retrain)

    lineage = commands.add_parser(
        "lineage",
        help="finding → retrain → snapshot → version → redeploy → rollout, as JSON",
    )
    lineage.add_argument("model", nargs="?")
    lineage.add_argument("--version", type=int)
    lineage.add_argument("--finding", type=int, help="start from this finding instead")
    lineage.set_defaults(handler=cmd_lineage)

    for parser in (
        register,
        move,
        listing,
        history,
        live,
        export,
        verify,
        retrain,
        lineage,
    ):
        add_setting_flags(parser, *store_settings)
        parser.set_defaults(handler=_friendly_store_errors(parser.get_default("handler")))
