"""Labels in (POST /v1/labels, the Kafka labels topic) and the join metrics, on both back ends.

Everything goes through a real server (or a real collector) into a real store; the
metrics are read back with GET /v1/models/{model}/labels.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
import sqlalchemy as sa
from ingest_events import EventFactory
from kafka import KafkaProducer
from serving import served
from waiting import wait_for

from inferloop.collector import run_collector
from inferloop.server import create_app
from inferloop.settings import Settings

S = 1_000_000_000


@pytest.fixture
def client(migrated_engine) -> Iterator[httpx.Client]:
    app = create_app(Settings(), engine=migrated_engine)
    with served(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def post_events(client: httpx.Client, factory: EventFactory, events: list[dict]) -> None:
    answer = client.post("/v1/events", content=factory.batch_bytes(events))
    assert answer.status_code == 200, answer.text


def post_labels(client: httpx.Client, records: list[dict], status: int = 200) -> dict:
    answer = client.post("/v1/labels", json={"labels": records})
    assert answer.status_code == status, answer.text
    return answer.json()


def metrics(client: httpx.Client, factory: EventFactory, **params) -> dict:
    params = {
        "start_s": factory.base_time_ns / S - 1,
        "end_s": factory.base_time_ns / S + 3600,
        **params,
    }
    answer = client.get(f"/v1/models/{factory.model}/labels", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def by_version(report: dict) -> dict[str, dict]:
    return {row["version"]: row for row in report["versions"]}


def record(event: dict, label, after_s: float, **extra) -> dict:
    """A label record for the prediction `event`, timed `after_s` seconds after it started."""
    return {
        "model": event["model"],
        "prediction_id": event["prediction_id"],
        "label": label,
        "time_ns": event["start_time_ns"] + int(after_s * S),
        **extra,
    }


def stored_labels(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT count(*) FROM labels"))


def test_a_retried_post_stores_each_label_once(client, migrated_engine) -> None:
    factory = EventFactory()
    event = factory.inference()
    records = [
        record(event, 1, 5),  # id from (model, prediction_id, time_ns, label)
        {"model": "fraud", "prediction_id": "p-x", "label": {"b": 1, "a": 2}},  # no time
        {"model": "fraud", "prediction_id": "p-y", "label": 0, "label_id": "client-7"},
    ]
    assert post_labels(client, records) == {"stored": 3, "duplicates": 0, "rejected": 0}
    # The resend: another serializer's key order, no time (now is later), same label_id.
    records[1] = {"model": "fraud", "prediction_id": "p-x", "label": {"a": 2, "b": 1}}
    assert post_labels(client, records) == {"stored": 0, "duplicates": 3, "rejected": 0}
    assert stored_labels(migrated_engine) == 3


def test_an_early_label_waits_and_is_joined_when_its_prediction_lands(client) -> None:
    factory = EventFactory()
    event = factory.inference()
    post_labels(client, [record(event, 1, 30)])
    before = metrics(client, factory)
    assert (before["waiting"], before["versions"]) == (1, [])

    post_events(client, factory, [event])
    after = metrics(client, factory)
    assert after["waiting"] == 0
    joined = by_version(after)["v1"]
    assert (joined["predictions"], joined["labeled"], joined["coverage"]) == (1, 1, 1.0)
    assert joined["delay_p50_s"] == joined["delay_p95_s"] == 30.0


def _story(model: str, base_ns: int) -> tuple[EventFactory, list[tuple[str, dict]]]:
    """Predictions of two versions and their labels: late, early, corrected, missing."""
    factory = EventFactory(model=model)
    factory.base_time_ns = base_ns
    events = [factory.inference(version="v1" if i < 4 else "v2") for i in range(8)]
    labels = [record(e, i % 2, 10 * (i + 1)) for i, e in enumerate(events[:7])]
    labels.append(record(events[0], 1, 500))  # a correction
    labels.append(record(events[4], 0, 900))  # a correction
    labels.append(record(events[5], 0, 7200))  # past a one-hour join window
    labels.append({"model": model, "prediction_id": "never-served", "label": 1})
    steps = [("events", e) for e in events] + [("labels", label) for label in labels]
    return factory, steps


def _replay(client: httpx.Client, factory: EventFactory, steps: list[tuple[str, dict]]) -> None:
    for kind, item in steps:
        if kind == "events":
            post_events(client, factory, [item])
        else:
            post_labels(client, [item])


def test_any_arrival_order_of_the_same_predictions_and_labels_gives_the_same_metrics(
    client,
) -> None:
    reports = []
    base_ns = EventFactory().base_time_ns
    for order in range(3):
        factory, steps = _story(f"order-{order}", base_ns)
        random.Random(order).shuffle(steps)
        _replay(client, factory, steps)
        report = metrics(client, factory, join_window_s=3600)
        report.pop("model")
        reports.append(report)
    assert reports[0] == reports[1] == reports[2]
    v1, v2 = by_version(reports[0])["v1"], by_version(reports[0])["v2"]
    assert (v1["predictions"], v1["labeled"], v1["corrections"], v1["revised"]) == (4, 4, 1, True)
    assert (v2["predictions"], v2["labeled"], v2["past_join_window"]) == (4, 3, 1)
    assert (v2["corrections"], v2["coverage"]) == (1, 0.75)
    # v1's delays in force: 500 (corrected from 10), 20, 30, 40 → nearest-rank p50 30, p95 500.
    assert (v1["delay_p50_s"], v1["delay_p95_s"]) == (30.0, 500.0)
    assert reports[0]["waiting"] == 1


def test_a_correction_shows_in_the_metric_and_marks_it_revised(client, migrated_engine) -> None:
    factory = EventFactory()
    event = factory.inference()
    post_events(client, factory, [event])
    post_labels(client, [record(event, 0, 10)])
    first = by_version(metrics(client, factory))["v1"]
    assert (first["delay_p50_s"], first["corrections"], first["revised"]) == (10.0, 0, False)

    post_labels(client, [record(event, 1, 60)])
    revised = by_version(metrics(client, factory))["v1"]
    assert (revised["delay_p50_s"], revised["corrections"], revised["revised"]) == (60.0, 1, True)
    assert revised["labeled"] == 1
    with migrated_engine.connect() as connection:  # every version kept for the audit
        versions = connection.execute(
            sa.text("SELECT label FROM labels ORDER BY time_ns")
        ).scalars()
        assert list(versions) == [0, 1]


def test_labels_past_the_join_window_are_counted_not_dropped(client) -> None:
    factory = EventFactory()
    event = factory.inference()
    post_events(client, factory, [event])
    post_labels(client, [record(event, 1, 120)])
    old_orphan = {"model": "fraud", "prediction_id": "gone", "label": 1}
    old_orphan["time_ns"] = factory.base_time_ns
    post_labels(client, [old_orphan])

    narrow = metrics(client, factory, join_window_s=60)
    row = by_version(narrow)["v1"]
    assert (row["labeled"], row["past_join_window"], row["coverage"]) == (0, 1, 0.0)
    assert (narrow["waiting"], narrow["waiting_past_join_window"]) == (1, 1)

    wide = metrics(client, factory, join_window_s=86_400)
    row = by_version(wide)["v1"]
    assert (row["labeled"], row["past_join_window"]) == (1, 0)
    assert (wide["waiting"], wide["waiting_past_join_window"]) == (1, 0)


def test_bad_records_get_422_naming_each_and_the_good_ones_are_stored(
    client, migrated_engine
) -> None:
    good = {"model": "fraud", "prediction_id": "p-1", "label": 1, "time_ns": 5}
    records = [
        good,
        {"prediction_id": "p-2", "label": 1},
        {"model": "fraud", "prediction_id": "p-3", "label": "x" * 300_000},
        {"model": "fraud", "prediction_id": 4, "label": 1},
    ]
    answer = post_labels(client, records, status=422)
    assert (answer["stored"], answer["duplicates"], answer["rejected"]) == (1, 0, 3)
    errors = {error["label_index"]: error["reason"] for error in answer["errors"]}
    assert sorted(errors) == [1, 2, 3]
    assert "`model`" in errors[1] and "$.labels[1]" in errors[1]
    assert "bytes" in errors[2] and "$.labels[2]" in errors[2]
    assert "$.labels[3].prediction_id" in errors[3]
    assert stored_labels(migrated_engine) == 1
    with migrated_engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM dead_letters")) == 3

    not_json = client.post("/v1/labels", content=b"{labels")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["detail"]
    no_list = client.post("/v1/labels", json={"label": []})
    assert no_list.status_code == 422 and "`labels`" in no_list.json()["detail"]
    too_many = client.post("/v1/labels", json={"labels": [good] * 10_001})
    assert too_many.status_code == 413 and "10001 records" in too_many.json()["detail"]
    bad_window = client.get("/v1/models/fraud/labels", params={"join_window_s": 0})
    assert bad_window.status_code == 422


def test_label_records_on_the_kafka_labels_topic_are_stored_once(
    database_url, migrated_engine, kafka_bootstrap, make_topic
) -> None:
    events_topic, labels_topic = make_topic(), make_topic()
    settings = Settings(
        database_url=database_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=events_topic,
        kafka_labels_topic=labels_topic,
        kafka_group_id=f"group-{events_topic}",
        kafka_dead_letter_topic=f"{events_topic}.dead",
    )
    factory = EventFactory()
    events = [factory.inference() for _ in range(3)]
    single = record(events[0], 1, 10)
    contract_batch = factory.batch_bytes([factory.label(events[2]["prediction_id"])])
    messages = [
        (events_topic, factory.batch_bytes(events)),
        (labels_topic, orjson.dumps(single)),
        (labels_topic, orjson.dumps({"labels": [record(events[1], 0, 20), {"label": 1}]})),
        (labels_topic, contract_batch),
        (labels_topic, orjson.dumps(single)),  # a resend: a duplicate
        (labels_topic, b"not json"),
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for topic, value in messages:
        producer.send(topic, key=b"fraud", value=value)
    producer.flush()
    producer.close()

    stop = threading.Event()
    worker = threading.Thread(target=run_collector, args=(settings,), kwargs={"stop_event": stop})
    worker.start()
    try:

        def done() -> bool:
            with migrated_engine.connect() as connection:
                letters = connection.scalar(sa.text("SELECT count(*) FROM dead_letters"))
            return stored_labels(migrated_engine) >= 3 and letters >= 2

        wait_for(done, 60, "labels stored and bad records dead-lettered")
        time.sleep(0.5)  # a doubled label would show up now
    finally:
        stop.set()
        worker.join(timeout=30)
    assert not worker.is_alive()
    with migrated_engine.connect() as connection:
        labeled = connection.execute(
            sa.text("SELECT prediction_id FROM labels ORDER BY prediction_id")
        ).scalars()
        assert list(labeled) == ["p-0", "p-1", "p-2"]
        letters = connection.execute(
            sa.text(
                'SELECT topic, "offset", event_index, reason FROM dead_letters ORDER BY "offset"'
            )
        ).all()
    assert [(row.topic, row.offset, row.event_index) for row in letters] == [
        (labels_topic, 1, 1),
        (labels_topic, 4, -1),
    ]
    assert "`model`" in letters[0].reason and "not JSON" in letters[1].reason
