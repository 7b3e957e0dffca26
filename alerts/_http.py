"""One HTTP POST for the HTTP receivers, with the answer reduced to what they classify.

Each send opens its own `httpx.Client` (no pool to close, nothing shared between
dispatcher threads) and never follows redirects: a receiver that moved is a
configuration problem to report, not something to chase with the payload. Network
errors come back as a `Reply` with no status, and their text is scrubbed of the
receiver's secrets: httpx puts the URL into some messages, and a Slack or webhook
URL is itself a secret.
"""

from __future__ import annotations

import functools
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from ._model import DeliveryOutcome, OutcomeKind
from ._render import scrub, truncate

DETAIL_LIMIT = 300
"""Characters of a receiver's answer kept in `DeliveryOutcome.detail`."""


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int | None
    """None when no answer came (connection refused, timeout, TLS failure…)."""
    body: str
    headers: httpx.Headers
    latency_s: float
    error: str = ""


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def validate_url(url: str, *, what: str, https_only: bool = False) -> str:
    """`url` if it is an absolute http(s) URL; the error never repeats it (it may be secret).

    `https_only` still admits plain http to a loopback host (tests, a local relay):
    a secret URL then never crosses a network in clear text.
    """
    if not isinstance(url, str) or not url:
        raise ValueError(f"{what} is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} must be an absolute http:// or https:// URL")
    if https_only and parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{what} must be an https:// URL")
    return url


def host_of(url: str) -> str:
    """The host (and port) only: what `repr` may show of a secret URL."""
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The system's CA bundle, loaded once: loading it costs ~28 ms, each send would pay it."""
    return ssl.create_default_context()


def post(
    url: str,
    *,
    content: bytes,
    headers: Mapping[str, str],
    timeout_s: float,
    secrets: Sequence[str],
    transport: httpx.BaseTransport | None = None,
) -> Reply:
    """POST `content` once; a transport error is a `Reply` without status, never raised."""
    start = time.perf_counter()
    try:
        with httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=False,
            transport=transport,
            verify=_tls_context(),
        ) as client:
            response = client.post(url, content=content, headers=dict(headers))
    except httpx.HTTPError as exc:
        error = scrub(f"{type(exc).__name__}: {exc}", secrets)
        return Reply(None, "", httpx.Headers(), time.perf_counter() - start, error)
    return Reply(response.status_code, response.text, response.headers, time.perf_counter() - start)


def retry_after_s(headers: httpx.Headers, *, now_s: float | None = None) -> float | None:
    """`Retry-After` as seconds (delta-seconds or an HTTP date), or None if absent or bad."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now_s is None else now_s)
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer


def outcome(
    kind: OutcomeKind, reply: Reply, detail: str, *, secrets: Sequence[str], retry: bool = False
) -> DeliveryOutcome:
    """A `DeliveryOutcome` from a reply; `retry` reads the receiver's `Retry-After`."""
    return DeliveryOutcome(
        kind=kind,
        status_code=reply.status_code,
        detail=truncate(scrub(detail, secrets), DETAIL_LIMIT),
        retry_after_s=retry_after_s(reply.headers) if retry else None,
        latency_s=reply.latency_s,
    )


def network_outcome(reply: Reply, *, secrets: Sequence[str]) -> DeliveryOutcome:
    """No answer at all: try again later."""
    return outcome(OutcomeKind.RETRY, reply, reply.error or "no response", secrets=secrets)


def body_excerpt(reply: Reply) -> str:
    return " ".join(reply.body.split())[:DETAIL_LIMIT]
