"""The PagerDuty receiver against a loopback Events API v2, and the rate limiter."""

from __future__ import annotations

import dataclasses
import json

import pytest
from loopback import HttpSink, Response, closed_port_url, pagerduty_responder
from receiver_samples import (
    assert_golden,
    drift_alert,
    firing,
    many,
    notification,
    resolved,
)

from inferloop.alerts import OutcomeKind
from inferloop.alerts._pagerduty import (
    PAGERDUTY_MAX_EVENT_BYTES,
    PAGERDUTY_MAX_SUMMARY,
    PagerDutyReceiver,
    dedup_key,
    fit_event,
    pagerduty_severity,
)
from inferloop.alerts._ratelimit import RateLimiter, TokenBucket

ROUTING_KEY = "R0UT1NGKEYSECRET0000000000000042"


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pd(sink: HttpSink, **kwargs) -> PagerDutyReceiver:
    return PagerDutyReceiver(
        routing_key=kwargs.pop("routing_key", ROUTING_KEY),
        events_url=sink.url + "/v2/enqueue",
        **kwargs,
    )


def offline() -> PagerDutyReceiver:
    return PagerDutyReceiver(routing_key=ROUTING_KEY)


def _encoded_size(event: dict) -> int:
    return len(json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode())


def test_trigger_is_accepted_with_summary_severity_and_evidence() -> None:
    with HttpSink(pagerduty_responder) as sink:
        outcome = pd(sink).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED and outcome.status_code == 202, outcome
    [request] = sink.requests
    event = request.json()
    assert request.path == "/v2/enqueue"
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == dedup_key("oncall", firing().group_key)
    payload = event["payload"]
    assert payload["summary"] == "[FIRING:2] model=fraud: Drift in amount, Drift in country"
    assert (payload["severity"], payload["source"], payload["component"]) == (
        "critical",
        "fraud",
        "fraud",
    )
    first = payload["custom_details"]["alerts"][0]
    assert first["evidence"] == {
        "stattest": "psi",
        "statistic": 0.31,
        "threshold": 0.2,
        "rows": 5210,
    }
    assert event["links"][0]["href"] == firing().dashboard_url


def test_resolve_closes_the_same_incident() -> None:
    with HttpSink(pagerduty_responder) as sink:
        receiver = pd(sink)
        receiver.send(firing(), timeout_s=5)
        outcome = receiver.send(resolved(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED
    trigger, resolve = (r.json() for r in sink.requests)
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }


def test_dedup_key_is_stable_per_group_and_receiver_and_short() -> None:
    key = dedup_key("oncall", "g")
    assert key == dedup_key("oncall", "g") and len(key) <= 255
    assert key != dedup_key("other", "g") and key != dedup_key("oncall", "h")
    assert len(dedup_key("r" * 1000, "g" * 10_000)) <= 255


@pytest.mark.parametrize(
    ("label", "severity"),
    [
        ("critical", "critical"),
        ("page", "critical"),
        ("error", "error"),
        ("high", "error"),
        ("WARNING", "warning"),
        ("info", "info"),
        ("low", "info"),
        ("bogus", "warning"),
        (None, "warning"),
    ],
)
def test_severity_is_mapped_to_pagerdutys_four(label, severity) -> None:
    assert pagerduty_severity(label) == severity


def test_group_severity_is_the_highest_among_firing_alerts() -> None:
    note = notification([drift_alert("a", severity="info"), drift_alert("b", severity="error")])
    assert offline().render(note)["payload"]["severity"] == "error"


@pytest.mark.parametrize(
    ("script", "kind", "retry_after"),
    [
        (Response(429, "", {"Retry-After": "12"}), OutcomeKind.RETRY, 12.0),
        (Response(429, '{"status":"throttled"}'), OutcomeKind.RETRY, None),
        (Response(500, "oops"), OutcomeKind.RETRY, None),
        (Response(502, "bad gateway"), OutcomeKind.RETRY, None),
        (Response(403, "forbidden"), OutcomeKind.PERMANENT, None),
    ],
)
def test_pagerduty_answers_are_classified(script: Response, kind, retry_after) -> None:
    with HttpSink(pagerduty_responder) as sink:
        sink.script.append(script)
        outcome = pd(sink).send(firing(), timeout_s=5)
    assert (outcome.kind, outcome.status_code, outcome.retry_after_s) == (
        kind,
        script.status,
        retry_after,
    )


def test_invalid_event_is_permanent_and_names_the_errors_not_the_key() -> None:
    short_key = "SHORTKEYSECRET"
    with HttpSink(pagerduty_responder) as sink:
        outcome = pd(sink, routing_key=short_key).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.PERMANENT and outcome.status_code == 400
    assert "Event object is invalid" in outcome.detail and "routing_key" in outcome.detail
    assert short_key not in outcome.detail


def test_network_error_is_retried() -> None:
    receiver = PagerDutyReceiver(routing_key=ROUTING_KEY, events_url=closed_port_url())
    outcome = receiver.send(firing(), timeout_s=2)
    assert outcome.kind is OutcomeKind.RETRY and outcome.status_code is None


def test_repr_and_errors_hide_the_routing_key() -> None:
    assert ROUTING_KEY not in repr(offline())
    with pytest.raises(ValueError) as error:
        PagerDutyReceiver(routing_key="has space SECRET")
    assert "SECRET" not in str(error.value)
    with pytest.raises(ValueError, match="https"):
        PagerDutyReceiver(routing_key=ROUTING_KEY, events_url="http://events.example.com/")


# --- rate limit ------------------------------------------------------------------------


def test_rate_limited_send_is_retried_later_without_a_request() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=120, burst=2, clock=clock)
    with HttpSink(pagerduty_responder) as sink:
        receiver = pd(sink, rate_limiter=limiter)
        outcomes = [receiver.send(firing(), timeout_s=5) for _ in range(3)]
        assert [o.kind for o in outcomes] == [OutcomeKind.DELIVERED] * 2 + [OutcomeKind.RETRY]
        assert outcomes[2].retry_after_s == pytest.approx(0.5)
        assert len(sink.requests) == 2
        clock.now += 0.5
        assert receiver.send(firing(), timeout_s=5).kind is OutcomeKind.DELIVERED
    assert "limit" in outcomes[2].detail and ROUTING_KEY not in repr(limiter)


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=2.0, burst=20, clock=clock)
    assert all(bucket.try_acquire() == 0.0 for _ in range(20))
    assert bucket.try_acquire() == pytest.approx(0.5)
    clock.now += 60
    taken = sum(bucket.try_acquire() == 0.0 for _ in range(200))
    assert taken == 20  # refills to the burst, never beyond


def test_rate_limiter_keeps_keys_apart_and_forgets_the_oldest() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=1, clock=clock, max_keys=2)
    assert limiter.try_acquire("a") == 0.0 and limiter.try_acquire("b") == 0.0
    assert limiter.try_acquire("a") == pytest.approx(1.0)
    limiter.try_acquire("c")  # evicts "b", the least recently used
    assert limiter.try_acquire("b") == 0.0


def test_about_120_events_a_minute_at_the_default() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock)
    sent = 0
    for _ in range(6000):  # one try every 10 ms for a minute
        sent += limiter.try_acquire("k") == 0.0
        clock.now += 0.01
    assert 120 <= sent <= 120 + 20  # the rate plus the initial burst


# --- budgets ---------------------------------------------------------------------------


def _summary_for(length: int) -> str:
    # "[FIRING:1] model=" + value + ": Drift in amount"
    value = "m" * (length - len("[FIRING:1] model=: Drift in amount"))
    note = notification([drift_alert("amount")], group_labels={"model": value})
    return offline().render(note)["payload"]["summary"]


def test_summary_exactly_at_its_budget_is_kept_whole() -> None:
    text = _summary_for(PAGERDUTY_MAX_SUMMARY)
    assert len(text) == PAGERDUTY_MAX_SUMMARY and text.endswith("amount")


def test_summary_one_over_its_budget_is_cut() -> None:
    text = _summary_for(PAGERDUTY_MAX_SUMMARY + 1)
    assert len(text) == PAGERDUTY_MAX_SUMMARY and text.endswith("…")


def _padded(total_bytes: int):
    """A firing group of two whose full event is exactly `total_bytes` long."""

    def make(pad: str):
        second = drift_alert("country")
        evidence = {**second.annotations["evidence"], "pad": pad}
        second = dataclasses.replace(
            second, annotations={**second.annotations, "evidence": evidence}
        )
        return notification([drift_alert("amount"), second])

    base = _encoded_size(offline().render(make("")))
    return make("x" * (total_bytes - base))


def test_event_exactly_at_512_kb_keeps_every_alert_and_is_accepted() -> None:
    note = _padded(PAGERDUTY_MAX_EVENT_BYTES)
    with HttpSink(pagerduty_responder) as sink:
        outcome = pd(sink).send(note, timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED
    [request] = sink.requests
    assert len(request.body) == PAGERDUTY_MAX_EVENT_BYTES
    assert request.json()["payload"]["custom_details"]["omitted_alerts"] == 0


def test_event_one_byte_over_drops_alerts_from_the_details_first() -> None:
    note = _padded(PAGERDUTY_MAX_EVENT_BYTES + 1)
    with HttpSink(pagerduty_responder) as sink:
        outcome = pd(sink).send(note, timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED
    details = sink.requests[0].json()["payload"]["custom_details"]
    assert details["omitted_alerts"] == 1 and len(details["alerts"]) == 1
    assert details["alerts"][0]["title"] == "Drift in amount"


def test_details_are_dropped_when_even_no_alerts_do_not_fit() -> None:
    note = notification([drift_alert("amount")])
    note = dataclasses.replace(note, common_labels={"model": "fraud", "huge": "h" * 600_000})
    event = offline().render(note)
    assert "custom_details" not in event["payload"]
    assert _encoded_size(event) <= PAGERDUTY_MAX_EVENT_BYTES


def test_links_go_last_when_nothing_else_is_left_to_drop() -> None:
    note = dataclasses.replace(firing(), dashboard_url="https://x/" + "u" * 600_000)
    event = offline().render(note)
    assert "links" not in event and "client_url" not in event
    assert _encoded_size(event) <= PAGERDUTY_MAX_EVENT_BYTES


@pytest.mark.parametrize(("name", "make"), [("firing", firing), ("resolved", resolved)])
def test_events_match_golden_files(name: str, make) -> None:
    assert_golden(f"pagerduty_{name}.json", offline().render(make()))


def test_truncated_event_matches_its_golden_file() -> None:
    note = many(12)
    event = fit_event(offline().render(note), note, limit=4000)
    assert event["payload"]["custom_details"]["omitted_alerts"] > 0
    assert_golden("pagerduty_truncated.json", event)
