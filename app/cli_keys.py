"""`inferloop keys …`: create, list and revoke the API's keys.

A key is printed once, by `create`, and never again: the store keeps its SHA-256
only, and `list` shows the prefix by which a key is recognised. Revoking is
immediate for every server on the same store (they look keys up per request).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

from .flags import add_setting_flags, settings_from_args

USAGE_ERROR = 2


def cmd_keys_create(args: argparse.Namespace) -> int:
    from inferloop.store.api_keys import issue_key

    engine = _engine(args)
    try:
        with engine.begin() as connection:
            issued = issue_key(connection, name=args.name, scopes=args.scope, now_ns=time.time_ns())
    finally:
        engine.dispose()
    print(issued.token)
    print(
        f"key {issued.id} ({issued.name!r}, scopes {', '.join(issued.scopes)}, "
        f"prefix {issued.prefix}): shown once only; store it now",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from inferloop.store.api_keys import list_keys

    engine = _engine(args)
    try:
        with engine.connect() as connection:
            rows = list_keys(connection)
    finally:
        engine.dispose()
    if not rows:
        print("no keys (create one with `inferloop keys create --scope read --name NAME`)")
    for row in rows:
        state = "active" if row.revoked_at_ns is None else f"revoked {_when(row.revoked_at_ns)}"
        print(
            f"{row.id:>4}  {row.prefix}…  {','.join(row.scopes):<18} {row.name!r}  "
            f"created {_when(row.created_at_ns)}  {state}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from inferloop.store.api_keys import revoke_key

    engine = _engine(args)
    try:
        with engine.begin() as connection:
            revoked = revoke_key(connection, args.id, now_ns=time.time_ns())
    finally:
        engine.dispose()
    if not revoked:
        print(f"inferloop: no active key with id {args.id}", file=sys.stderr)
        return USAGE_ERROR
    print(f"key {args.id} revoked")
    return 0


def _engine(args: argparse.Namespace):
    from inferloop.store.base import create_engine_for

    return create_engine_for(settings_from_args(args).resolved_database_url())


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def add_key_commands(commands: argparse._SubParsersAction, store_settings: tuple[str, ...]) -> None:
    """The `keys` sub-commands, under the CLI's `commands`."""
    from inferloop.store.api_keys import SCOPES

    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys with scopes: ingest (POST events and labels), read (every GET), "
        "admin (every write, and the other two). Once any key exists, the API asks for one.",
    )
    verbs = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    create = verbs.add_parser(
        "create",
        help="make a key and print it (once: it is stored hashed)",
        description="Print a new key on stdout (its id and scopes on stderr). It cannot be "
        "shown again: store it in your secret manager now.",
    )
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=SCOPES,
        help="what the key may do; repeat for several",
    )
    create.add_argument("--name", required=True, help="who or what uses the key, e.g. ci")
    add_setting_flags(create, *store_settings)
    create.set_defaults(handler=cmd_keys_create)

    listing = verbs.add_parser("list", help="every key: id, prefix, scopes, name, state")
    add_setting_flags(listing, *store_settings)
    listing.set_defaults(handler=cmd_keys_list)

    revoke = verbs.add_parser("revoke", help="revoke a key by id, at once")
    revoke.add_argument("id", type=int, help="the id `inferloop keys list` shows")
    add_setting_flags(revoke, *store_settings)
    revoke.set_defaults(handler=cmd_keys_revoke)
