"""API keys: issued once, stored only as a hash, listed by prefix, revoked by id.

A key is 32 random bytes (`secrets.token_urlsafe`), so a plain SHA-256 of it is
enough to store: there is nothing to brute-force that a salt or a slow hash would
protect (those are for low-entropy passwords). Lookup is by that hash through a
unique index, so a presented key is checked without ever reading or comparing the
secret itself; the prefix (`il_` and eight characters) is kept for display.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base

SCOPES = ("ingest", "read", "admin")
"""`admin` implies the others (the server decides that; the store keeps what was granted)."""

TOKEN_PREFIX = "il_"
_PREFIX_CHARS = len(TOKEN_PREFIX) + 8
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


class ApiKey(Base):
    """One issued key: its hash, a display prefix, what it may do, and whether it still may."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    prefix: Mapped[str] = mapped_column(sa.String(20))
    token_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(sa.JSON)
    created_at_ns: Mapped[int] = mapped_column(sa.BigInteger)
    revoked_at_ns: Mapped[int | None] = mapped_column(sa.BigInteger)


_KEYS = ApiKey.__table__


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key: `token` is the secret, shown to its owner once and stored nowhere."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    token: str


def token_sha256(token: str) -> str:
    """The stored form of a key (hex SHA-256 of its UTF-8 bytes)."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_key(
    connection: sa.Connection, *, name: str, scopes: Sequence[str], now_ns: int
) -> IssuedKey:
    """Make a key with `scopes` (a subset of `SCOPES`), store its hash, return the secret."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {list(scopes)}")
    granted = tuple(scope for scope in SCOPES if scope in scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    prefix = token[:_PREFIX_CHARS]
    key_id = connection.execute(
        sa.insert(_KEYS)
        .values(
            name=name,
            prefix=prefix,
            token_sha256=token_sha256(token),
            scopes=list(granted),
            created_at_ns=now_ns,
            revoked_at_ns=None,
        )
        .returning(_KEYS.c.id)
    ).scalar_one()
    return IssuedKey(id=key_id, name=name, prefix=prefix, scopes=granted, token=token)


def key_by_token(connection: sa.Connection, token: str) -> sa.Row | None:
    """The stored key `token` is (revoked or not), or None."""
    query = sa.select(_KEYS).where(_KEYS.c.token_sha256 == token_sha256(token))
    return connection.execute(query).first()


def any_key_issued(connection: sa.Connection) -> bool:
    """Whether a key was ever issued, revoked or not: that turns auth on by default, and
    revoking the last key must not open the API again."""
    return connection.execute(sa.select(_KEYS.c.id).limit(1)).first() is not None


def list_keys(connection: sa.Connection) -> list[sa.Row]:
    """Every key ever issued, oldest first (hashes included: callers show the prefix)."""
    return list(connection.execute(sa.select(_KEYS).order_by(_KEYS.c.id)))


def revoke_key(connection: sa.Connection, key_id: int, *, now_ns: int) -> bool:
    """Revoke a key from now on; False if no unrevoked key has that id."""
    result = connection.execute(
        sa.update(_KEYS)
        .where(_KEYS.c.id == key_id, _KEYS.c.revoked_at_ns.is_(None))
        .values(revoked_at_ns=now_ns)
    )
    return result.rowcount == 1
