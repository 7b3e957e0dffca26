"""The generic webhook receiver against a loopback sink that verifies Standard Webhooks."""

from __future__ import annotations

import base64
import json
import time

import pytest
from loopback import HttpSink, Response, closed_port_url, webhook_responder
from receiver_samples import assert_golden, firing, many, resolved
from standardwebhooks.webhooks import Webhook

from inferloop.alerts import OutcomeKind
from inferloop.alerts._webhook import WebhookReceiver, decode_secret, sign

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
FIXED_TS = 1_767_225_900


def receiver(url: str, *secrets: str, clock=time.time) -> WebhookReceiver:
    return WebhookReceiver(url=url, secrets=secrets or (SECRET,), clock=clock)


def test_signed_delivery_verifies_with_standardwebhooks_and_carries_the_id() -> None:
    with HttpSink(webhook_responder(SECRET)) as sink:
        outcome = receiver(sink.url + "/hook").send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.DELIVERED, outcome
    assert outcome.status_code == 204
    [request] = sink.requests
    assert request.path == "/hook"
    assert request.headers["webhook-id"] == "n-0001"
    assert request.headers["content-type"] == "application/json"
    payload = Webhook(SECRET).verify(request.body, request.headers)
    assert payload["id"] == "n-0001" and payload["status"] == "firing"
    assert [a["labels"]["feature"] for a in payload["alerts"]] == ["amount", "country"]


def test_timestamp_comes_from_the_injected_clock() -> None:
    with HttpSink(lambda r: Response(200)) as sink:
        receiver(sink.url, clock=lambda: FIXED_TS + 0.9).send(firing(), timeout_s=5)
    assert sink.requests[0].headers["webhook-timestamp"] == str(FIXED_TS)


def test_tampered_body_is_rejected_by_the_sink_and_is_permanent() -> None:
    with HttpSink(webhook_responder(SECRET, tamper=True)) as sink:
        outcome = receiver(sink.url).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.PERMANENT and outcome.status_code == 401
    assert "No matching signature" in outcome.detail


def test_stale_timestamp_is_rejected_by_the_sink() -> None:
    ten_minutes_ago = time.time() - 600
    with HttpSink(webhook_responder(SECRET)) as sink:
        outcome = receiver(sink.url, clock=lambda: ten_minutes_ago).send(firing(), timeout_s=5)
    assert outcome.kind is OutcomeKind.PERMANENT and outcome.status_code == 401
    assert "too old" in outcome.detail


def test_rotation_sends_two_signatures_and_either_secret_verifies() -> None:
    with HttpSink(lambda r: Response(200)) as sink:
        receiver(sink.url, NEW_SECRET, SECRET).send(firing(), timeout_s=5)
    [request] = sink.requests
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    for secret in (SECRET, NEW_SECRET):
        Webhook(secret).verify(request.body, request.headers)


def test_signature_is_hmac_of_id_timestamp_and_body() -> None:
    # The spec's own example (standardwebhooks.com, "Verifying webhook authenticity").
    key = decode_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected


@pytest.mark.parametrize(
    ("script", "kind", "retry_after"),
    [
        (Response(429, "slow down", {"Retry-After": "7"}), OutcomeKind.RETRY, 7.0),
        (Response(500, "boom"), OutcomeKind.RETRY, None),
        (Response(503, "", {"Retry-After": "2"}), OutcomeKind.RETRY, 2.0),
        (Response(400, "bad"), OutcomeKind.PERMANENT, None),
        (Response(404, "no such hook"), OutcomeKind.PERMANENT, None),
        (Response(201, "created"), OutcomeKind.DELIVERED, None),
        (Response(302, "", {"Location": "http://127.0.0.1:1/"}), OutcomeKind.PERMANENT, None),
    ],
)
def test_answers_are_classified(script: Response, kind: OutcomeKind, retry_after) -> None:
    with HttpSink(webhook_responder(SECRET)) as sink:
        sink.script.append(script)
        outcome = receiver(sink.url).send(firing(), timeout_s=5)
    assert outcome.kind is kind, outcome
    assert outcome.status_code == script.status
    assert outcome.retry_after_s == retry_after


def test_a_retry_after_the_scripted_failure_is_delivered_with_the_same_id() -> None:
    with HttpSink(webhook_responder(SECRET)) as sink:
        sink.script.append(Response(500))
        hook = receiver(sink.url)
        first = hook.send(firing(), timeout_s=5)
        second = hook.send(firing(), timeout_s=5)
    assert (first.kind, second.kind) == (OutcomeKind.RETRY, OutcomeKind.DELIVERED)
    assert [r.headers["webhook-id"] for r in sink.requests] == ["n-0001", "n-0001"]


def test_network_errors_are_retried_and_name_no_secret() -> None:
    url = closed_port_url() + "hooks/T0SECRETPATH"
    outcome = receiver(url).send(firing(), timeout_s=2)
    assert outcome.kind is OutcomeKind.RETRY and outcome.status_code is None
    assert "T0SECRETPATH" not in outcome.detail and SECRET not in outcome.detail
    assert outcome.detail.startswith("ConnectError")


def test_timeout_is_a_retry() -> None:
    with HttpSink(lambda r: Response(200), delay_s=0.5) as sink:
        outcome = receiver(sink.url).send(firing(), timeout_s=0.1)
    assert outcome.kind is OutcomeKind.RETRY and "Timeout" in outcome.detail


def test_repr_hides_the_url_path_and_the_secrets() -> None:
    hook = receiver("https://hooks.example.com/T0SECRETPATH?token=abc", SECRET, NEW_SECRET)
    text = repr(hook)
    assert "hooks.example.com" in text
    assert "T0SECRETPATH" not in text and "abc" not in text
    assert SECRET not in text and NEW_SECRET not in text


@pytest.mark.parametrize(
    "secret",
    ["nope", "whsec_", "whsec_!!!notbase64", "whsec_" + base64.b64encode(b"short").decode()],
)
def test_bad_secrets_are_refused_without_repeating_them(secret: str) -> None:
    with pytest.raises(ValueError) as error:
        WebhookReceiver(url="https://example.com/", secrets=[secret])
    if len(secret) > len("whsec_"):
        assert secret not in str(error.value)


def test_construction_validates_url_and_secret_count() -> None:
    with pytest.raises(ValueError, match="absolute"):
        WebhookReceiver(url="ftp://example.com/x", secrets=[SECRET])
    with pytest.raises(ValueError, match="two"):
        WebhookReceiver(url="https://example.com/", secrets=[SECRET, SECRET, SECRET])
    with pytest.raises(TypeError):
        WebhookReceiver(url="https://example.com/", secrets=SECRET)


@pytest.mark.parametrize(
    ("name", "make"), [("firing", firing), ("resolved", resolved), ("many", lambda: many(3))]
)
def test_payload_and_headers_match_golden_files(name: str, make) -> None:
    hook = receiver("https://hooks.example.com/x", clock=lambda: FIXED_TS)
    note = make()
    body = hook.body(note)
    assert json.loads(body) == hook.render(note)
    headers = hook.headers(note, body, FIXED_TS)
    assert_golden(f"webhook_{name}.json", {"headers": headers, "body": hook.render(note)})
