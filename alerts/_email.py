"""Email over SMTP: one multipart/alternative message per notification, threaded per group.

The message has the plain-text part first and the HTML part last (RFC 2046: the
last part is the richest, the one a capable client shows); every label and
annotation is HTML-escaped in the HTML part. `Message-ID` is derived from the
notification id, so a re-send after a crash is recognisable as the same message;
`In-Reply-To` and `References` name one stable id per (receiver, group), so mail
clients keep a group's firing and resolved messages in one thread.

One SMTP session per send (stdlib `smtplib`): EHLO, STARTTLS unless the receiver
was told it may skip it, LOGIN when a username is set, one MAIL/RCPT/DATA. Temporary
SMTP errors (4xx) and connection errors are retried; permanent ones (5xx) are final.
The password never appears in `repr`, errors or outcome details.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from ._http import LOOPBACK_HOSTS
from ._model import AlertStatus, DeliveryOutcome, Notification, OutcomeKind
from ._render import (
    alert_title,
    evidence_lines,
    format_labels,
    iso_time,
    ordered_alerts,
    overflow,
    scrub,
    summary,
    title,
    truncate,
)

EMAIL_MAX_ALERTS = 100
"""Alerts listed in one message; the rest are `…and N more`."""
DETAIL_LIMIT = 300
_MSG_ID_SAFE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+")


def _address(value: str, *, what: str) -> str:
    name, address = parseaddr(value)
    if "@" not in address or address != address.strip() or " " in address:
        raise ValueError(f"email {what} must be an address, got {value!r}")
    return value


class EmailReceiver:
    """Sends one message per notification through an SMTP server."""

    def __init__(
        self,
        *,
        host: str,
        port: int = 587,
        sender: str,
        to: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        require_tls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        message_domain: str = "inferloop",
    ) -> None:
        """`require_tls`: STARTTLS or fail; logging in without it is refused off loopback."""
        if not host or not isinstance(host, str):
            raise ValueError("email host is required")
        if not 0 < port < 65536:
            raise ValueError("email port must be 1-65535")
        if isinstance(to, str):
            raise TypeError("to must be a sequence of addresses, not one string")
        self._to = tuple(_address(a, what="recipient") for a in to)
        if not self._to:
            raise ValueError("email needs at least one recipient")
        self._sender = _address(sender, what="sender")
        if (username is None) != (password is None):
            raise ValueError("email username and password go together")
        if password is not None and not require_tls and host not in LOOPBACK_HOSTS:
            raise ValueError("email login without TLS would send the password in clear text")
        if not _MSG_ID_SAFE.fullmatch(message_domain):
            raise ValueError("email message_domain must be a plain domain")
        self._host, self._port = host, port
        self._username, self._password = username, password
        self._require_tls = require_tls
        self._ssl_context = ssl_context
        self._domain = message_domain
        self._secrets: tuple[str, ...] = ()
        if password is not None and username is not None:
            plain = base64.b64encode(f"\0{username}\0{password}".encode()).decode()
            self._secrets = (password, base64.b64encode(password.encode()).decode(), plain)

    def __repr__(self) -> str:
        return (
            f"EmailReceiver(host={self._host!r}, port={self._port}, sender={self._sender!r}, "
            f"to={list(self._to)!r}, username={self._username!r})"
        )

    def message_id(self, notification: Notification) -> str:
        """`<{id}@inferloop>`; an id with characters a msg-id cannot hold is hashed."""
        local = notification.id
        if not _MSG_ID_SAFE.fullmatch(local) or ".." in local or local.startswith("."):
            local = hashlib.sha256(local.encode()).hexdigest()[:32]
        return f"<{local}@{self._domain}>"

    def thread_id(self, notification: Notification) -> str:
        """The stable id every message of one group replies to."""
        digest = hashlib.sha256(f"{notification.receiver}\0{notification.group_key}".encode())
        return f"<group-{digest.hexdigest()[:32]}@{self._domain}>"

    def render(self, notification: Notification) -> EmailMessage:
        """The whole message, headers included; deterministic (the boundary too)."""
        message = EmailMessage()
        message["Subject"] = title(notification)
        message["From"] = self._sender
        message["To"] = ", ".join(self._to)
        moment = datetime.fromtimestamp(notification.created_at_ns / 1e9, tz=UTC)
        message["Date"] = format_datetime(moment)
        message["Message-ID"] = self.message_id(notification)
        message["In-Reply-To"] = self.thread_id(notification)
        message["References"] = self.thread_id(notification)
        message["Auto-Submitted"] = "auto-generated"
        message["X-Inferloop-Notification-Id"] = truncate(notification.id, 200)
        message.set_content(_plain(notification), cte="quoted-printable")
        message.add_alternative(_html(notification), subtype="html", cte="quoted-printable")
        digest = hashlib.sha256(notification.id.encode()).hexdigest()[:24]
        message.set_boundary(f"=_inferloop_{digest}")
        return message

    def send(self, notification: Notification, *, timeout_s: float) -> DeliveryOutcome:
        message = self.render(notification)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=timeout_s) as smtp:
                smtp.ehlo()
                if self._require_tls:
                    if not smtp.has_extn("starttls"):
                        return self._outcome(
                            OutcomeKind.PERMANENT, None, "server offers no STARTTLS"
                        )
                    smtp.starttls(context=self._ssl_context or ssl.create_default_context())
                    smtp.ehlo()
                if self._username is not None and self._password is not None:
                    smtp.login(self._username, self._password)
                refused = smtp.send_message(message, from_addr=self._sender, to_addrs=self._to)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            temporary = all(400 <= code < 500 for code in codes)
            kind = OutcomeKind.RETRY if temporary else OutcomeKind.PERMANENT
            return self._outcome(kind, codes[0] if codes else None, f"recipients refused {codes}")
        except smtplib.SMTPAuthenticationError as exc:
            kind = OutcomeKind.RETRY if 400 <= exc.smtp_code < 500 else OutcomeKind.PERMANENT
            return self._outcome(kind, exc.smtp_code, f"authentication failed ({exc.smtp_code})")
        except smtplib.SMTPResponseException as exc:
            kind = OutcomeKind.RETRY if 400 <= exc.smtp_code < 500 else OutcomeKind.PERMANENT
            text = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return self._outcome(kind, exc.smtp_code, f"SMTP {exc.smtp_code}: {text}")
        except smtplib.SMTPServerDisconnected as exc:
            return self._outcome(OutcomeKind.RETRY, None, f"disconnected: {exc}")
        except smtplib.SMTPException as exc:  # no AUTH offered, no usable mechanism…
            return self._outcome(OutcomeKind.PERMANENT, None, f"{type(exc).__name__}: {exc}")
        except ssl.SSLCertVerificationError as exc:
            return self._outcome(OutcomeKind.PERMANENT, None, f"TLS certificate: {exc.reason}")
        except OSError as exc:  # refused, reset, timeout, TLS handshake
            return self._outcome(OutcomeKind.RETRY, None, f"{type(exc).__name__}: {exc}")
        if refused:
            codes = sorted({code for code, _ in refused.values()})
            detail = f"{len(refused)} of {len(self._to)} recipients refused {codes}"
            return self._outcome(OutcomeKind.DELIVERED, 250, detail)
        return self._outcome(OutcomeKind.DELIVERED, 250, "")

    def _outcome(self, kind: OutcomeKind, code: int | None, detail: str) -> DeliveryOutcome:
        text = truncate(scrub(" ".join(detail.split()), self._secrets), DETAIL_LIMIT)
        return DeliveryOutcome(kind=kind, status_code=code, detail=text)


def _alerts(notification: Notification) -> tuple[list, int]:
    alerts = ordered_alerts(notification)
    return alerts[:EMAIL_MAX_ALERTS], max(0, len(alerts) - EMAIL_MAX_ALERTS)


def _when(alert) -> str:
    if alert.ends_at_ns is None:
        return f"firing since {iso_time(alert.starts_at_ns)}"
    return f"resolved at {iso_time(alert.ends_at_ns)}"


def _plain(notification: Notification) -> str:
    lines = [title(notification), ""]
    lines.append(f"Firing: {len(notification.firing)}  Resolved: {len(notification.resolved)}")
    if notification.common_labels:
        lines.append(f"Labels: {format_labels(notification.common_labels)}")
    if notification.dashboard_url:
        lines.append(f"Dashboard: {notification.dashboard_url}")
    shown, hidden = _alerts(notification)
    for alert in shown:
        lines += ["", f"* {alert_title(alert)} ({_when(alert)})"]
        if text := summary(alert):
            lines.append(f"  {text}")
        lines += [f"  - {line}" for line in evidence_lines(alert)]
        lines.append(f"  labels: {format_labels(alert.labels)}")
    if hidden:
        lines += ["", overflow(hidden, "more alerts")]
    return "\n".join(lines) + "\n"


def _html(notification: Notification) -> str:
    e = html.escape
    colour = "#c0392b" if notification.status is AlertStatus.FIRING else "#27ae60"
    parts = [
        "<!DOCTYPE html>",
        '<html><body style="font-family:sans-serif">',
        f'<h2 style="color:{colour}">{e(title(notification))}</h2>',
        f"<p>Firing: {len(notification.firing)} &middot; "
        f"Resolved: {len(notification.resolved)}</p>",
    ]
    if notification.common_labels:
        parts.append(f"<p>Labels: <code>{e(format_labels(notification.common_labels))}</code></p>")
    if notification.dashboard_url:
        parts.append(f'<p><a href="{e(notification.dashboard_url)}">Open the dashboard</a></p>')
    shown, hidden = _alerts(notification)
    for alert in shown:
        parts.append(f"<h3>{e(alert_title(alert))}</h3>")
        parts.append(f"<p><small>{e(_when(alert))}</small></p>")
        if text := summary(alert):
            parts.append(f"<p>{e(text)}</p>")
        if lines := evidence_lines(alert):
            parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in lines) + "</ul>")
        parts.append(f"<p><code>{e(format_labels(alert.labels))}</code></p>")
    if hidden:
        parts.append(f"<p>{e(overflow(hidden, 'more alerts'))}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
