"""Real receivers on 127.0.0.1 that record what they get and answer like the real ones.

`HttpSink` is a stdlib HTTP server in a thread (port 0). What it answers comes from
a script of canned responses first (a 429 with Retry-After, a 500, a 410…), then from
a responder that checks the request the way the real service does: Slack's block
budgets, PagerDuty's event rules, a Standard Webhooks signature verified with the
`standardwebhooks` package. `SmtpSink` is an aiosmtpd server on a socket bound
here, since aiosmtpd's controller mishandles port 0.
"""

from __future__ import annotations

import collections
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Response:
    status: int
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)


Responder = Callable[[Request], Response]


class HttpSink:
    """Records every request; answers from `script` first, then from `responder`."""

    def __init__(self, responder: Responder, *, delay_s: float = 0.0) -> None:
        self.requests: list[Request] = []
        self.script: collections.deque[Response] = collections.deque()
        self.responder = responder
        self.delay_s = delay_s
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's naming
                length = int(self.headers.get("content-length", "0"))
                request = Request(
                    "POST",
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                sink.requests.append(request)
                if sink.delay_s:
                    threading.Event().wait(sink.delay_s)
                answer = sink.script.popleft() if sink.script else sink.responder(request)
                data = answer.body.encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                # The client may have given up first (a timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: the test reads `requests`, not the log

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="http-sink", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HttpSink:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connection refused."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    return f"http://{LOOPBACK}:{port}/"


# --- Slack -----------------------------------------------------------------------------

SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION = 3000
SLACK_MAX_HEADER = 150


def slack_responder(request: Request) -> Response:
    """Slack's incoming webhook: 200 `ok`, or 400 with the error code it documents."""
    try:
        payload = request.json()
    except ValueError:
        return Response(400, "invalid_payload")
    if not isinstance(payload, dict) or not (payload.get("text") or payload.get("blocks")):
        return Response(400, "no_text")
    blocks = payload.get("blocks", [])
    if len(blocks) > SLACK_MAX_BLOCKS:
        return Response(400, "invalid_blocks")
    for block in blocks:
        text = block.get("text", {}).get("text", "")
        if block["type"] == "header" and len(text) > SLACK_MAX_HEADER:
            return Response(400, "invalid_blocks")
        if block["type"] == "section" and len(text) > SLACK_MAX_SECTION:
            return Response(400, "invalid_blocks")
    return Response(200, "ok", {"content-type": "text/html"})


# --- PagerDuty -------------------------------------------------------------------------

PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}
PAGERDUTY_MAX_EVENT = 512 * 1024


def pagerduty_responder(request: Request) -> Response:
    """Events API v2: 202 with the dedup key, or 400 `Event object is invalid`."""
    errors: list[str] = []
    if len(request.body) > PAGERDUTY_MAX_EVENT:
        errors.append("Event object is too large")
    try:
        event = request.json()
    except ValueError:
        return _pagerduty_invalid(["Invalid JSON"])
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        errors.append("'routing_key' must be 32 characters")
    if event.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid")
    dedup_key = event.get("dedup_key", "")
    if len(dedup_key) > 255:
        errors.append("'dedup_key' is too long")
    if event.get("event_action") == "trigger":
        payload = event.get("payload") or {}
        if not payload.get("summary") or len(payload["summary"]) > 1024:
            errors.append("'payload.summary' is missing or too long")
        if not payload.get("source"):
            errors.append("'payload.source' is missing")
        if payload.get("severity") not in PAGERDUTY_SEVERITIES:
            errors.append("'payload.severity' is invalid")
    if errors:
        return _pagerduty_invalid(errors)
    body = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
    return Response(202, json.dumps(body), {"content-type": "application/json"})


def _pagerduty_invalid(errors: list[str]) -> Response:
    body = {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    return Response(400, json.dumps(body), {"content-type": "application/json"})


# --- Standard Webhooks -----------------------------------------------------------------


def webhook_responder(secret: str, *, tamper: bool = False) -> Responder:
    """Verifies the signature with `standardwebhooks` (5 min tolerance): 204 or 401.

    `tamper` flips one byte of the body before verifying, as a man in the middle would.
    """
    verifier = Webhook(secret)

    def respond(request: Request) -> Response:
        body = request.body
        if tamper:
            body = body.replace(b'"firing"', b'"resolved"', 1)
        try:
            verifier.verify(body, request.headers, json_parse=False)
        except WebhookVerificationError as exc:
            return Response(401, f"signature rejected: {exc}")
        return Response(204)

    return respond


# --- SMTP ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes


class _Recorder:
    """aiosmtpd handler: records each message; scripted codes for RCPT and DATA."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook names
        self, server: Any, session: Any, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.sink.rcpt_script:
            return self.sink.rcpt_script.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Envelope
    ) -> str:
        if self.sink.data_script:
            return self.sink.data_script.popleft()
        self.sink.mails.append(
            Mail(str(envelope.mail_from), list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 Message accepted for delivery"


class _SocketController(Controller):
    """aiosmtpd's threaded controller serving on a socket bound before it starts."""

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname=LOOPBACK, port=sock.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class SmtpSink:
    """An SMTP server on loopback; `login` makes it offer AUTH (plain text: loopback)."""

    def __init__(self, *, login: tuple[str, str] | None = None) -> None:
        self.mails: list[Mail] = []
        self.rcpt_script: collections.deque[str] = collections.deque()
        self.data_script: collections.deque[str] = collections.deque()
        self.logins: list[str] = []
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen()
        self.port: int = self._sock.getsockname()[1]
        kwargs: dict[str, Any] = {}
        if login is not None:
            kwargs = {
                # Offered, not required: aiosmtpd warns on required AUTH without TLS.
                "authenticator": self._authenticator(login),
                "auth_require_tls": False,
            }
        self._controller = _SocketController(_Recorder(self), self._sock, **kwargs)

    def _authenticator(self, login: tuple[str, str]) -> Callable[..., AuthResult]:
        def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = (
                isinstance(data, LoginPassword)
                and (
                    data.login.decode(),
                    data.password.decode(),
                )
                == login
            )
            if isinstance(data, LoginPassword):
                self.logins.append(data.login.decode())
            return AuthResult(success=ok, handled=False)

        return check

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()
        self._sock.close()


@contextmanager
def serving(responder: Responder, **kwargs: Any) -> Iterator[HttpSink]:
    with HttpSink(responder, **kwargs) as sink:
        yield sink
