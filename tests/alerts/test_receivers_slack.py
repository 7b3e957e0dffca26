"""The Slack receiver against a loopback server that answers and checks like Slack."""

from __future__ import annotations

import dataclasses

import pytest
from loopback import HttpSink, Response, closed_port_url, slack_responder
from receiver_samples import assert_golden, drift_alert, firing, many, notification, resolved

from inferloop.alerts import OutcomeKind
from inferloop.alerts._slack import (
    SLACK_MAX_BLOCKS,
    SLACK_MAX_HEADER_TEXT,
    SLACK_MAX_SECTION_TEXT,
    SlackReceiver,
)

SECRET_PATH = "/services/T000/B000/XXXXSECRETXXXX"


def slack(sink: HttpSink, **kwargs) -> SlackReceiver:
    return SlackReceiver(webhook_url=sink.url + SECRET_PATH, **kwargs)


def offline() -> SlackReceiver:
    return SlackReceiver(webhook_url="https://hooks.slack.com" + SECRET_PATH)


def test_firing_message_is_delivered_with_evidence_and_dashboard_link() -> None:
    with HttpSink(slack_responder) as sink:
        outcome = slack(sink).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED and outcome.status_code == 200, outcome
    [request] = sink.requests
    assert request.path == SECRET_PATH
    message = request.json()
    assert message["text"] == "[FIRING:2] model=fraud"
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert any("*Drift in amount*" in t and "• statistic: 0.31" in t for t in texts)
    [actions] = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == firing().dashboard_url


def test_labels_are_escaped_for_mrkdwn() -> None:
    alert = drift_alert("a<b>&c")
    text = offline().render(notification([alert]))["blocks"][2]["text"]["text"]
    assert "a&lt;b&gt;&amp;c" in text and "a<b>" not in text


@pytest.mark.parametrize(
    ("script", "kind", "retry_after"),
    [
        (Response(429, "rate_limited", {"Retry-After": "30"}), OutcomeKind.RETRY, 30.0),
        (Response(500, "internal_error"), OutcomeKind.RETRY, None),
        (Response(400, "invalid_payload"), OutcomeKind.PERMANENT, None),
        (Response(403, "invalid_token"), OutcomeKind.PERMANENT, None),
        (Response(404, "no_service"), OutcomeKind.GONE, None),
        (Response(410, "channel_is_archived"), OutcomeKind.GONE, None),
        (Response(200, "not ok"), OutcomeKind.PERMANENT, None),
    ],
)
def test_slack_answers_are_classified(script: Response, kind: OutcomeKind, retry_after) -> None:
    with HttpSink(slack_responder) as sink:
        sink.script.append(script)
        outcome = slack(sink).send(firing(), timeout_s=5)
    assert outcome.kind is kind, outcome
    assert outcome.status_code == script.status
    assert outcome.retry_after_s == retry_after
    assert script.body in outcome.detail or kind is OutcomeKind.RETRY
    assert "SECRET" not in outcome.detail


def test_after_a_429_the_retry_is_delivered() -> None:
    with HttpSink(slack_responder) as sink:
        sink.script.append(Response(429, "rate_limited", {"Retry-After": "1"}))
        receiver = slack(sink)
        outcomes = [receiver.send(firing(), timeout_s=5) for _ in range(2)]
    assert [o.kind for o in outcomes] == [OutcomeKind.RETRY, OutcomeKind.DELIVERED]
    assert sink.requests[0].body == sink.requests[1].body


def test_network_error_is_retried_and_hides_the_webhook_url() -> None:
    receiver = SlackReceiver(webhook_url=closed_port_url().rstrip("/") + SECRET_PATH)
    outcome = receiver.send(firing(), timeout_s=2)
    assert outcome.kind is OutcomeKind.RETRY and outcome.status_code is None
    assert "SECRET" not in outcome.detail


def test_repr_and_construction_errors_hide_the_webhook_url() -> None:
    assert "SECRET" not in repr(offline()) and "hooks.slack.com" in repr(offline())
    with pytest.raises(ValueError) as error:
        SlackReceiver(webhook_url="http://hooks.slack.com" + SECRET_PATH)
    assert "https" in str(error.value) and "SECRET" not in str(error.value)
    with pytest.raises(ValueError):
        SlackReceiver(webhook_url="not a url")


# --- budgets ---------------------------------------------------------------------------

# Header, overview and the dashboard button leave this many blocks for alerts.
ALERT_BLOCKS = SLACK_MAX_BLOCKS - 3


def _sections(message: dict) -> list[str]:
    return [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]


def test_alerts_exactly_filling_the_block_budget_are_all_shown() -> None:
    message = offline().render(many(ALERT_BLOCKS))
    assert len(message["blocks"]) == SLACK_MAX_BLOCKS
    assert not any("more alerts" in t for t in _sections(message))


def test_one_alert_over_the_block_budget_overflows_into_and_n_more() -> None:
    message = offline().render(many(ALERT_BLOCKS + 1))
    assert len(message["blocks"]) == SLACK_MAX_BLOCKS
    assert _sections(message)[-1].startswith("…and 2 more alerts (2 firing)")


def test_a_large_group_is_accepted_by_slack() -> None:
    with HttpSink(slack_responder) as sink:
        outcome = slack(sink).send(many(300), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert "…and 254 more alerts" in sink.requests[0].body.decode()


def _alert_with_section_length(length: int) -> str:
    """The rendered section of one alert padded to `length` characters before fitting."""
    base = drift_alert("amount")
    probe = dataclasses.replace(
        base, annotations={**base.annotations, "evidence": {"pad": ""}, "summary": None}
    )
    unpadded = len(offline().render(notification([probe]))["blocks"][2]["text"]["text"])
    evidence = {"pad": "x" * (length - unpadded)}
    padded = dataclasses.replace(
        base, annotations={**base.annotations, "evidence": evidence, "summary": None}
    )
    return offline().render(notification([padded]))["blocks"][2]["text"]["text"]


def test_section_exactly_at_its_budget_is_kept_whole() -> None:
    text = _alert_with_section_length(SLACK_MAX_SECTION_TEXT)
    assert len(text) == SLACK_MAX_SECTION_TEXT and "more" not in text


def test_section_one_over_its_budget_drops_lines_into_and_n_more() -> None:
    text = _alert_with_section_length(SLACK_MAX_SECTION_TEXT + 1)
    assert len(text) <= SLACK_MAX_SECTION_TEXT
    # The last line (the start time) no longer fits: the marker stands in for it.
    assert text.endswith("\n…and 1 more") and "_since" not in text


def _header(group_value_length: int) -> str:
    # "[FIRING:1] model=" is 17 characters.
    note = notification([drift_alert("amount")], group_labels={"model": "m" * group_value_length})
    return offline().render(note)["blocks"][0]["text"]["text"]


def test_header_exactly_at_its_budget_is_kept_whole() -> None:
    header = _header(SLACK_MAX_HEADER_TEXT - 17)
    assert len(header) == SLACK_MAX_HEADER_TEXT and header.endswith("m")


def test_header_one_over_its_budget_is_cut_with_an_ellipsis() -> None:
    header = _header(SLACK_MAX_HEADER_TEXT - 16)
    assert len(header) == SLACK_MAX_HEADER_TEXT and header.endswith("…")


@pytest.mark.parametrize(
    ("name", "make"), [("firing", firing), ("resolved", resolved), ("truncated", lambda: many(60))]
)
def test_messages_match_golden_files(name: str, make) -> None:
    assert_golden(f"slack_{name}.json", offline().render(make()))
