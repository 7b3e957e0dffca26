"""The email receiver against an aiosmtpd server on loopback."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from loopback import LOOPBACK, SmtpSink
from receiver_samples import assert_golden, drift_alert, firing, many, notification, resolved

from inferloop.alerts import OutcomeKind
from inferloop.alerts._email import EMAIL_MAX_ALERTS, EmailReceiver

PASSWORD = "s3cr3t-SMTP-password"


def mailer(sink: SmtpSink | None = None, **kwargs) -> EmailReceiver:
    settings = {
        "host": LOOPBACK,
        "port": sink.port if sink else 2525,
        "sender": "Inferloop <alerts@inferloop.example>",
        "to": ["oncall@example.com", "ml@example.com"],
        "require_tls": False,
        **kwargs,
    }
    return EmailReceiver(**settings)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def test_message_is_delivered_as_multipart_alternative_plain_then_html() -> None:
    with SmtpSink() as sink:
        outcome = mailer(sink).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    [mail] = sink.mails
    assert mail.mail_from == "alerts@inferloop.example"
    assert mail.rcpt_tos == ["oncall@example.com", "ml@example.com"]
    message = parse(mail.data)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert "statistic: 0.31" in parts[0].get_content()
    assert message["Subject"] == "[FIRING:2] model=fraud"


def test_message_id_and_thread_headers_are_stable_per_notification_and_group() -> None:
    with SmtpSink() as sink:
        receiver = mailer(sink)
        receiver.send(firing(), timeout_s=5)
        receiver.send(resolved(), timeout_s=5)
    first, second = (parse(m.data) for m in sink.mails)
    assert first["Message-ID"] == "<n-0001@inferloop>"
    assert second["Message-ID"] == "<n-0002@inferloop>"
    assert first["In-Reply-To"] == second["In-Reply-To"] == first["References"]
    assert first["In-Reply-To"].startswith("<group-")
    assert second["Subject"] == "[RESOLVED] model=fraud"


def test_thread_differs_between_receivers_and_ids_are_made_safe() -> None:
    a, b = firing(), notification([drift_alert("amount")], receiver="other", id="n 1<x>")
    receiver = mailer()
    assert receiver.thread_id(a) != receiver.thread_id(b)
    assert "<x>" not in receiver.message_id(b) and receiver.message_id(b).endswith("@inferloop>")


def test_labels_are_html_escaped_in_the_html_part_only() -> None:
    note = notification([drift_alert("<script>alert(1)</script>")])
    message = mailer().render(note)
    plain, rich = (p.get_content() for p in message.iter_parts())
    assert "<script>" not in rich and "&lt;script&gt;" in rich
    assert "<script>alert(1)</script>" in plain


def test_login_is_used_when_configured() -> None:
    with SmtpSink(login=("alerts", PASSWORD)) as sink:
        outcome = mailer(sink, username="alerts", password=PASSWORD).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert sink.logins == ["alerts"] and len(sink.mails) == 1


def test_wrong_password_is_permanent_and_not_in_the_detail() -> None:
    with SmtpSink(login=("alerts", "other")) as sink:
        outcome = mailer(sink, username="alerts", password=PASSWORD).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.PERMANENT and outcome.status_code == 535
    assert PASSWORD not in outcome.detail and not sink.mails


@pytest.mark.parametrize(
    ("rcpt", "data", "kind", "code"),
    [
        (["451 4.3.0 try again later"] * 2, [], OutcomeKind.RETRY, 451),
        (["550 5.1.1 no such user"] * 2, [], OutcomeKind.PERMANENT, 550),
        ([], ["452 4.3.1 insufficient storage"], OutcomeKind.RETRY, 452),
        ([], ["554 5.6.0 message refused"], OutcomeKind.PERMANENT, 554),
    ],
)
def test_smtp_errors_are_classified(rcpt, data, kind, code) -> None:
    with SmtpSink() as sink:
        sink.rcpt_script.extend(rcpt)
        sink.data_script.extend(data)
        outcome = mailer(sink).send(firing(), timeout_s=5)
    assert (outcome.kind, outcome.status_code) == (kind, code), outcome


def test_one_refused_recipient_of_two_is_delivered_and_reported() -> None:
    with SmtpSink() as sink:
        sink.rcpt_script.append("550 5.1.1 no such user")
        outcome = mailer(sink).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED
    assert "1 of 2 recipients refused [550]" in outcome.detail
    assert sink.mails[0].rcpt_tos == ["ml@example.com"]


def test_connection_refused_is_retried() -> None:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    outcome = mailer(port=port).send(firing(), timeout_s=2)
    assert outcome.kind is OutcomeKind.RETRY and outcome.status_code is None


def test_required_tls_missing_on_the_server_is_permanent() -> None:
    with SmtpSink() as sink:
        outcome = mailer(sink, require_tls=True).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.PERMANENT and "STARTTLS" in outcome.detail
    assert not sink.mails


def test_construction_refuses_clear_text_login_off_loopback_and_hides_the_password() -> None:
    with pytest.raises(ValueError, match="clear text") as error:
        EmailReceiver(
            host="smtp.example.com",
            sender="a@example.com",
            to=["b@example.com"],
            username="u",
            password=PASSWORD,
            require_tls=False,
        )
    assert PASSWORD not in str(error.value)
    with pytest.raises(ValueError, match="together"):
        mailer(username="u")
    with pytest.raises(ValueError, match="recipient"):
        mailer(to=["not-an-address"])
    receiver = mailer(username="u", password=PASSWORD)
    assert PASSWORD not in repr(receiver)


def test_alerts_beyond_the_budget_become_and_n_more() -> None:
    at_limit = mailer().render(many(EMAIL_MAX_ALERTS))
    over = mailer().render(many(EMAIL_MAX_ALERTS + 1))
    plain_at = next(at_limit.iter_parts()).get_content()
    plain_over = next(over.iter_parts()).get_content()
    assert "more alerts" not in plain_at and plain_at.count("\n* ") == EMAIL_MAX_ALERTS
    assert plain_over.count("\n* ") == EMAIL_MAX_ALERTS
    assert plain_over.rstrip().endswith("…and 1 more alerts")


@pytest.mark.parametrize(
    ("name", "make"), [("firing", firing), ("resolved", resolved), ("truncated", lambda: many(102))]
)
def test_messages_match_golden_files(name: str, make) -> None:
    assert_golden(f"email_{name}.eml", mailer().render(make()).as_string())
