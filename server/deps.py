"""FastAPI dependencies, as ``Annotated`` aliases that routes declare by type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from inferloop.settings import Settings

from .auth import AuthRefused, Principal, Scope, authorize
from .state import AppState

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`inferloop keys create --scope read|ingest|admin`), "
    "or INFERLOOP_API_KEY, as `Authorization: Bearer <key>`.",
)
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STORE_RETRY_AFTER_S = 1


def get_state(request: Request) -> AppState:
    return request.app.state.inferloop


def get_settings(state: Annotated[AppState, Depends(get_state)]) -> Settings:
    return state.settings


def get_engine(state: Annotated[AppState, Depends(get_state)]) -> Engine:
    return state.engine


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _check(state: AppState, credentials: HTTPAuthorizationCredentials | None, scope: Scope):
    token = credentials.credentials if credentials else None
    try:
        return authorize(state.settings, state.engine, token, scope, verdicts=state.verdicts)
    except AuthRefused as refused:
        raise HTTPException(
            refused.status, refused.detail, headers={"WWW-Authenticate": refused.www_authenticate}
        ) from None
    except SQLAlchemyError as error:  # keys cannot be checked: fail closed, ask for a retry
        raise HTTPException(
            503,
            f"the store is unavailable, so the API key cannot be checked ({type(error).__name__})",
            headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
        ) from None


def require_scope(scope: Scope) -> Callable[..., Principal | None]:
    """A dependency that lets a request through only with a key holding `scope`."""

    def dependency(
        state: Annotated[AppState, Depends(get_state)], credentials: Credentials
    ) -> Principal | None:
        return _check(state, credentials, scope)

    dependency.__name__ = f"require_{scope}_scope"
    return dependency


def require_method_scope(
    request: Request, state: Annotated[AppState, Depends(get_state)], credentials: Credentials
) -> Principal | None:
    """`read` for GET (and HEAD), `admin` for every write."""
    scope = Scope.READ if request.method in _READ_METHODS else Scope.ADMIN
    return _check(state, credentials, scope)


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
ApiKeyDep = Depends(require_method_scope)
"""Reads need `read`, writes `admin`: what most routers declare."""
IngestKeyDep = Depends(require_scope(Scope.INGEST))
ReadKeyDep = Depends(require_scope(Scope.READ))
AdminKeyDep = Depends(require_scope(Scope.ADMIN))
