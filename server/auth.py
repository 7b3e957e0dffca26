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

While the store is unreachable, a key it admitted in the last `STALE_IF_ERROR_S` is still
admitted (`RecentVerdicts`): Prometheus keeps scraping `/metrics` through a database
outage, which is when its `store_up` gauge matters. Nothing is ever admitted from memory
while the store answers, so a revocation takes effect on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from inferloop.settings import Settings
from inferloop.store.api_keys import any_key_issued, key_by_token

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Probes call these without a key, whatever the settings."""

REALM = "inferloop"
STALE_IF_ERROR_S = 300.0
"""How long the store's last admission of a key stands in for it while the store is down."""


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


class RecentVerdicts:
    """The store's last admission per presented key (or of no key, while auth was off),
    recalled only when the store cannot be asked. Keys are held as digests, never as
    presented; at most `max_entries` are kept (the least recently admitted go first)."""

    def __init__(
        self,
        *,
        max_age_s: float = STALE_IF_ERROR_S,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_age_s = max_age_s
        self._max_entries = max_entries
        self._clock = clock
        self._admitted: OrderedDict[bytes, tuple[float, Principal | None]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, token: str | None, principal: Principal | None) -> None:
        key = _digest(token)
        with self._lock:
            self._admitted[key] = (self._clock(), principal)
            self._admitted.move_to_end(key)
            while len(self._admitted) > self._max_entries:
                self._admitted.popitem(last=False)

    def recall(self, token: str | None) -> tuple[bool, Principal | None]:
        """(found, principal): found is False when the store never admitted `token`
        or did so longer than `max_age_s` ago; principal None means auth was off."""
        with self._lock:
            entry = self._admitted.get(_digest(token))
        if entry is None or self._clock() - entry[0] > self._max_age_s:
            return False, None
        return True, entry[1]


def authorize(
    settings: Settings,
    engine: Engine,
    token: str | None,
    scope: Scope,
    *,
    verdicts: RecentVerdicts | None = None,
) -> Principal | None:
    """The caller `token` stands for, None when auth is off; raises `AuthRefused`.

    Raises SQLAlchemyError when the store cannot be asked and `verdicts` does not
    remember admitting `token` recently.
    """
    if token and settings.api_key and _same_secret(token, settings.api_key):
        return _within_scope(_CONFIGURED_KEY, scope)  # no need to ask the store
    try:
        with engine.connect() as connection:
            principal = _principal(settings, connection, token) if token else None
            auth_off = principal is None and not auth_required(settings, connection)
    except SQLAlchemyError:
        found, principal = verdicts.recall(token) if verdicts is not None else (False, None)
        if not found:
            raise
        return None if principal is None else _within_scope(principal, scope)
    if auth_off:
        if verdicts is not None:
            verdicts.remember(token, None)
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
    if verdicts is not None:
        verdicts.remember(token, principal)
    return _within_scope(principal, scope)


def _within_scope(principal: Principal, scope: Scope) -> Principal:
    if not principal.allows(scope):
        granted = ", ".join(sorted(principal.scopes)) or "none"
        raise AuthRefused(
            403,
            f"the API key {principal.name!r} has scopes {granted}; this endpoint needs {scope}",
            www_authenticate=f'Bearer realm="{REALM}", error="insufficient_scope", scope="{scope}"',
        )
    return principal


_CONFIGURED_KEY = Principal(name="INFERLOOP_API_KEY", scopes=frozenset({Scope.ADMIN}), key_id=None)


def _digest(token: str | None) -> bytes:
    return b"" if token is None else hashlib.sha256(token.encode()).digest()


def _principal(settings: Settings, connection: Connection, token: str) -> Principal | None:
    if settings.api_key and _same_secret(token, settings.api_key):
        return _CONFIGURED_KEY
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
