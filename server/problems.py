"""One error format for the whole API: `application/problem+json` (RFC 9457).

Every refusal is a problem document, `{"type", "title", "status", "detail",
"instance"}`, whoever raised it: an `HTTPException` in a route, a request that
fails validation (422, with `errors` naming each field by its path), a path no
route has (404), a method it does not take (405), or a bug (500, with no internals:
the traceback goes to the log). Routes that return their own JSON error bodies
(ingest's `rejected`/`stored`/`duplicates`, labels' `errors`) keep those fields: the
`ProblemFormat` middleware adds the problem members around them, so the SDK's
accounting of partly rejected batches reads the same fields as before.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_MEDIA_TYPE = "application/problem+json"
ABOUT_BLANK = "about:blank"
_MAX_LISTED_ERRORS = 5
_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")

log = logging.getLogger("inferloop.server")


class FieldError(BaseModel):
    path: str = Field(description="Where: `query.limit`, `body.matchers.0`, `path.finding_id`.")
    message: str
    type: str = Field(description="The kind of error (pydantic's), e.g. `less_than_equal`.")


class Problem(BaseModel):
    """An RFC 9457 problem document; some refusals add members of their own."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(ABOUT_BLANK, description="A URI for the kind of problem.")
    title: str = Field(description="The HTTP status phrase, e.g. `Unprocessable Content`.")
    status: int
    detail: str = Field(description="What was wrong with this request, and how to fix it.")
    instance: str = Field(description="The path of the request that was refused.")
    errors: list[dict[str, Any]] | None = Field(
        None,
        description="What was refused, item by item: for validation errors each invalid "
        "field (FieldError: path, message, type); an ingest route lists its refused records.",
    )


def problem_response(
    status: int,
    detail: str,
    *,
    instance: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """A problem document response."""
    body: dict[str, Any] = dict(extra or {})
    body.update(_members(status, instance))
    body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _members(status: int, instance: str) -> dict[str, Any]:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {"type": ABOUT_BLANK, "title": title, "status": status, "instance": instance}


async def _http_exception(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail
    headers = error.headers
    if error.status_code == 404 and detail == HTTPStatus.NOT_FOUND.phrase:
        detail = f"no route matches {request.url.path}; see /openapi.json for the API's paths"
    elif error.status_code == 405 and detail == HTTPStatus.METHOD_NOT_ALLOWED.phrase:
        allowed = _allowed_methods(request)
        headers = {**(headers or {}), "Allow": allowed}
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return problem_response(
        error.status_code,
        detail if isinstance(detail, str) else json.dumps(detail),
        instance=request.url.path,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route takes at this path, asked of the router itself. Starlette's
    405 names only the methods of the first route whose path matched (`/silences` answered
    OPTIONS with "POST" while GET is there too)."""
    routes = request.app.router.routes
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.append(method)
    return ", ".join(allowed)


def _path(location: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in location)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # The input itself is left out: it may be a secret, and the client has it anyway.
    errors = [
        {"path": _path(tuple(e["loc"])), "message": e["msg"], "type": e["type"]}
        for e in error.errors()
    ]
    listed = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:_MAX_LISTED_ERRORS])
    more = f" (and {len(errors) - _MAX_LISTED_ERRORS} more)" if len(errors) > 5 else ""
    return problem_response(
        422,
        f"the request is not valid: {listed}{more}",
        instance=request.url.path,
        errors=errors,
    )


async def _unexpected(request: Request, error: Exception) -> JSONResponse:
    log.error("unexpected error answering %s %s", request.method, request.url.path, exc_info=error)
    return problem_response(
        500,
        "the server failed to answer this request; the error is in the server's log",
        instance=request.url.path,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of `app` with a problem document."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(ProblemFormat)


class ProblemFormat:
    """Turn a route's own JSON error body into a problem document (members added, its
    fields kept). Only error responses are buffered, and they are small."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def normalising_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] >= 400 and _is_plain_json(message):
                    start = message
                    return
                await send(message)
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await _send_problem(send, start, b"".join(chunks), scope["path"])
            else:
                await send(message)

        await self.app(scope, receive, normalising_send)


def _is_plain_json(start: Message) -> bool:
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


async def _send_problem(send: Send, start: Message, body: bytes, path: str) -> None:
    status = start["status"]
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict):
        document = {**_members(status, path), **document, "status": status}
        if not isinstance(document.get("detail"), str):
            document["detail"] = document["title"]
        body = json.dumps(document, separators=(",", ":")).encode()
        media_type = PROBLEM_MEDIA_TYPE.encode()
    else:
        media_type = b"application/json"
    headers = [
        (name, value)
        for name, value in start.get("headers", ())
        if name.lower() not in (b"content-type", b"content-length")
    ]
    headers += [(b"content-type", media_type), (b"content-length", str(len(body)).encode())]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
