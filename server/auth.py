"""Who may call what: scoped API keys, and when a key is asked for at all.

Scopes: `ingest` (POST events and labels), `read` (every GET), `admin` (every write:
silences, rules, references; and everything else, since admin implies the others).
Keys are stored hashed (`inferloop.store.api_keys`); `INFERLOOP_API_KEY`, the single
key of earlier releases, still works as an admin key.

When auth is on is decided per request, so that the first `inferloop keys create`
closes the API without a restart: `INFERLOOP_AUTH__REQUIRED` if set; otherwise on
when `INFERLOOP_API_KEY` is set, when the server listens beyond loopback, or once
any key was ever issued (revoking the last one does not open the API again). The
embedded default, `inferloop up` on 127.0.0.1 with no key, is therefore open to
local processes only.

Refusals never repeat what was presented: a message names the scope needed, never
the key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.engine import Connection, Engine

from inferloop.settings import Settings
from inferloop.store.api_keys import any_key_issued, key_by_token

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Probes call these without a key, whatever the settings."""

REALM = "inferloop"


class Scope(StrEnum):
    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller a key stands for: `key_id` None is the configured INFERLOOP_API_KEY."""

    name: str
    scopes: frozenset[str]
    key_id: int | None

    def allows(self, scope: Scope) -> bool:
        return Scope.ADMIN in self.scopes or scope in self.scopes


class AuthRefused(Exception):
    """A request without the key it needs: `status` 401 (no or bad key) or 403 (scope)."""

    def __init__(self, status: int, detail: str, *, www_authenticate: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.www_authenticate = www_authenticate


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the server reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: assume it is reachable
        return False


def auth_required(settings: Settings, connection: Connection) -> bool:
    """Whether this request needs a key (see the module docstring for the rule)."""
    if settings.auth.required is not None:
        return settings.auth.required
    if settings.api_key or not is_loopback(settings.host):
        return True
    return any_key_issued(connection)


def authorize(
    settings: Settings, engine: Engine, token: str | None, scope: Scope
) -> Principal | None:
    """The caller `token` stands for, None when auth is off; raises `AuthRefused`."""
    with engine.connect() as connection:
        principal = _principal(settings, connection, token) if token else None
        if principal is None and not auth_required(settings, connection):
            return None
    if principal is None:
        if token:
            raise AuthRefused(
                401,
                "the API key is not valid (unknown or revoked); "
                "list keys with `inferloop keys list`",
                www_authenticate=f'Bearer realm="{REALM}", error="invalid_token"',
            )
        raise AuthRefused(
            401,
            f"this endpoint needs an API key with the {scope} scope: "
            "send 'Authorization: Bearer <key>' (make one with `inferloop keys create`)",
            www_authenticate=f'Bearer realm="{REALM}"',
        )
    if not principal.allows(scope):
        granted = ", ".join(sorted(principal.scopes)) or "none"
        raise AuthRefused(
            403,
            f"the API key {principal.name!r} has scopes {granted}; this endpoint needs {scope}",
            www_authenticate=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"',
        )
    return principal


def _principal(settings: Settings, connection: Connection, token: str) -> Principal | None:
    if settings.api_key and _same_secret(token, settings.api_key):
        return Principal(name="INFERLOOP_API_KEY", scopes=frozenset({Scope.ADMIN}), key_id=None)
    row = key_by_token(connection, token)
    if row is None or row.revoked_at_ns is not None:
        return None
    return Principal(name=row.name, scopes=frozenset(row.scopes), key_id=row.id)


def _same_secret(presented: str, expected: str) -> bool:
    # Digests first: compare_digest is constant-time only for equal lengths, and the
    # length of the configured key is itself something not to leak.
    return hmac.compare_digest(
        hashlib.sha256(presented.encode()).digest(), hashlib.sha256(expected.encode()).digest()
    )
