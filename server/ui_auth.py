"""How a browser presents an API key to the dashboard: once, through a login form.

`POST /ui/login` takes the key from a form body (never from the URL, so it is not kept
in history or access logs), checks it with the same `authorize()` as the API, and puts it
in a cookie that is HttpOnly (no script reads it), SameSite=Strict (no other site's page
can make the browser send it) and scoped to `/ui`. Every page and every data route of the
dashboard then authorizes the cookie's key for the `read` scope, per request, so a revoked
key stops working at once. An `Authorization: Bearer` header is accepted too (scripts,
tests), and wins over the cookie.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from sqlalchemy.exc import SQLAlchemyError

from .auth import AuthRefused, Principal, Scope, authorize
from .state import AppState

__all__ = ["COOKIE", "COOKIE_PATH", "UiRefusal", "key_of", "ui_principal"]

COOKIE = "inferloop_key"
COOKIE_PATH = "/ui"


@dataclass(frozen=True, slots=True)
class UiRefusal(Exception):
    """A page request without the key it needs: rendered as the 401, 403 or 503 page."""

    status: int
    detail: str


def key_of(request: Request) -> str | None:
    """The key this request presents: a bearer header, else the login cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(COOKIE) or None


def ui_principal(request: Request, scope: Scope = Scope.READ) -> Principal | None:
    """The caller of a page (None when auth is off); raises `UiRefusal`."""
    state: AppState = request.app.state.inferloop
    try:
        return authorize(
            state.settings, state.engine, key_of(request), scope, verdicts=state.verdicts
        )
    except AuthRefused as refused:
        raise UiRefusal(refused.status, refused.detail) from None
    except SQLAlchemyError as error:
        raise UiRefusal(
            503, f"the store is unavailable, so the key cannot be checked ({type(error).__name__})"
        ) from None
