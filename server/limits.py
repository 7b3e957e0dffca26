"""Request bodies bounded before any route reads them, answered with 413 (not a reset).

`BodyLimit` is a pure ASGI middleware: a declared `Content-Length` over the limit is
refused before the app runs; a streamed (chunked) body is counted as the app reads
it and cut off when it passes the limit (the route's read raises `BodyTooLarge`, a
413). Either way the rest of the body is read and discarded before the answer is
sent, up to `drain_bytes`: a client that writes the whole body before it reads the
response (most do, httpx and urllib included) then gets the 413 instead of a reset
connection, which is what a server that answers and closes mid-body gives it. A body
longer still is not worth reading: the answer goes out and the connection closes.
The same draining applies to any early answer (a 401 to a large unauthenticated
POST), since the server sends nothing before the body's end either way.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response

DEFAULT_DRAIN_BYTES = 64 * 1024 * 1024


class BodyTooLarge(HTTPException):
    """The body passed the limit while a route was reading it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit} bytes, the most this endpoint accepts"


class BodyLimit:
    """Refuse request bodies over `limit_for(path)` bytes with a 413 problem document."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limit_for: Callable[[str], int],
        drain_bytes: int = DEFAULT_DRAIN_BYTES,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        headers = dict(scope.get("headers", ()))
        declared = _declared_length(headers.get(b"content-length"))
        # With `Expect: 100-continue` the client waits for a go-ahead before sending the
        # body; asking for it (receive) would give that go-ahead just to throw it away.
        expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        body = _BodyState()

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                body.received += len(message.get("body", b""))
                body.complete = not message.get("more_body", False)
                if body.received > limit:
                    raise BodyTooLarge(limit)
            elif message["type"] == "http.disconnect":
                body.complete = True
            return message

        async def draining_send(message: Message) -> None:
            waiting_for_go_ahead = expects_continue and body.received == 0
            starts = message["type"] == "http.response.start"
            if starts and not body.complete and not waiting_for_go_ahead:
                await _drain(receive, body, self.drain_bytes)
            await send(message)

        if declared is not None and declared > limit:
            response = problem_response(413, _too_large(limit), instance=scope["path"])
            await response(scope, receive, draining_send)
            return
        if declared == 0 or (declared is None and not _may_have_body(headers)):
            body.complete = True
        await self.app(scope, counting_receive, draining_send)


class _BodyState:
    __slots__ = ("complete", "received")

    def __init__(self) -> None:
        self.received = 0
        self.complete = False


async def _drain(receive: Receive, body: _BodyState, most: int) -> None:
    drained = 0
    while not body.complete and drained <= most:
        message = await receive()
        if message["type"] != "http.request":
            break
        drained += len(message.get("body", b""))
        body.complete = not message.get("more_body", False)


def _declared_length(value: bytes | None) -> int | None:
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def _may_have_body(headers: dict[bytes, bytes]) -> bool:
    return b"transfer-encoding" in headers
