"""The shared ingest pipeline against both databases: idempotency, rollups, dead letters."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa
from ingest_events import MINUTE_NS, EventFactory
from sqlalchemy.orm import Session

from inferloop.collector import IngestPipeline, InputMessage, RejectionCode, StoreUnavailable
from inferloop.grains import minute_of_ns
from inferloop.store import Event, Label, completeness, create_engine_for


def _count(engine, table: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))


def test_redelivered_batch_is_stored_once_and_rollups_do_not_double_count(migrated_engine):
    factory = EventFactory()
    events = [factory.inference() for _ in range(50)]
    message = InputMessage(factory.batch_bytes(events), "t", 0, 7)
    pipeline = IngestPipeline(migrated_engine)

    first = pipeline.ingest([message], source="kafka")
    again = pipeline.ingest([message, message], source="kafka")

    assert (first.stored, first.duplicates) == (50, 0)
    assert (again.stored, again.duplicates) == (0, 100)
    assert _count(migrated_engine, "events") == 50
    with migrated_engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT sum(count) FROM minute_rollups")) == 50
        ranges = connection.execute(sa.text("SELECT seq_start, seq_end FROM delivery_ranges")).all()
    assert [tuple(r) for r in ranges] == [(0, 49)]


def test_batch_overlapping_stored_events_adds_only_its_new_events_to_rollups(migrated_engine):
    factory = EventFactory()
    events = [factory.inference(latency_ns=1_000 + i) for i in range(50)]
    pipeline = IngestPipeline(migrated_engine)
    pipeline.ingest([InputMessage(factory.batch_bytes(events[:20]), "t", 0, 1)], source="kafka")

    # The first 20 again, plus 30 new ones, and one new event twice in the same batch.
    overlapping = [*events, events[-1]]
    result = pipeline.ingest(
        [InputMessage(factory.batch_bytes(overlapping), "t", 0, 2)], source="kafka"
    )

    assert (result.stored, result.duplicates) == (30, 21)
    assert _count(migrated_engine, "events") == 50
    with migrated_engine.connect() as connection:
        count, latency_sum = connection.execute(
            sa.text("SELECT sum(count), sum(latency_sum_ns) FROM minute_rollups")
        ).one()
        ranges = connection.execute(sa.text("SELECT seq_start, seq_end FROM delivery_ranges")).all()
    assert (count, latency_sum) == (50, sum(e["latency_ns"] for e in events))
    assert [tuple(r) for r in ranges] == [(0, 49)]


def test_invalid_events_are_dead_lettered_while_their_neighbours_are_stored(migrated_engine):
    factory = EventFactory()
    good_before, good_after = factory.inference(), factory.inference()
    bad = factory.inference(latency_ns="slow")
    message = InputMessage(factory.batch_bytes([good_before, bad, good_after]), "t", 0, 1)

    result = IngestPipeline(migrated_engine).ingest([message], source="kafka")

    assert result.stored == 2
    assert [r.event_index for r in result.rejections] == [1]
    assert "latency_ns" in result.rejections[0].reason
    with migrated_engine.connect() as connection:
        row = connection.execute(sa.text("SELECT event_index, reason, raw FROM dead_letters")).one()
    assert row.event_index == 1
    assert orjson.loads(row.raw)["event_id"] == bad["event_id"]


def test_labels_are_stored_and_joined_by_prediction_id(migrated_engine):
    factory = EventFactory()
    prediction = factory.inference()
    label = factory.label(prediction["prediction_id"], label={"fraud": True})
    IngestPipeline(migrated_engine).ingest(
        [InputMessage(factory.batch_bytes([prediction, label]))], source="http"
    )
    with migrated_engine.connect() as connection:
        joined = (
            connection.execute(
                sa.text(
                    "SELECT e.event_id FROM events e JOIN labels l"
                    " ON l.prediction_id = e.prediction_id"
                )
            )
            .scalars()
            .all()
        )
    assert joined == [prediction["event_id"]]


def test_text_the_database_cannot_hold_is_dead_lettered_not_retried_forever(migrated_engine):
    factory = EventFactory()
    ok = factory.inference()
    nul = factory.inference(error_message="bad\u0000byte", status="error", error_type="X")
    result = IngestPipeline(migrated_engine).ingest(
        [InputMessage(factory.batch_bytes([ok, nul]), "t", 0, 3)], source="kafka"
    )
    stored_ids = set()
    with migrated_engine.connect() as connection:
        stored_ids = set(connection.execute(sa.text("SELECT event_id FROM events")).scalars())
    assert ok["event_id"] in stored_ids
    # SQLite stores the NUL; PostgreSQL refuses it and the event becomes a dead letter.
    if migrated_engine.dialect.name == "postgresql":
        assert nul["event_id"] not in stored_ids
        assert [r.event_index for r in result.rejections] == [1]
    else:
        assert nul["event_id"] in stored_ids


def test_stored_event_reads_back_field_for_field(migrated_engine):
    factory = EventFactory()
    event = factory.inference(
        inputs={"rows": [{"text": 'quote " back\\slash \t tab é', "n": 1.5}]},
        outputs=None,
        device_time_ns=1234,
        status="error",
        error_type="ValueError",
        error_message="line one\nline two",
        tags={"region": "eu", "tier": "gold"},
    )
    label = factory.label(event["prediction_id"], label={"fraud": True, "score": [1, 2]})
    later = factory.inference(inputs={"summary": {"shape": [2, 3], "dtype": "float32"}})
    pipeline = IngestPipeline(migrated_engine)
    pipeline.ingest([InputMessage(factory.batch_bytes([event, label]))], source="x")
    # A batch mixing a stored id and a new one takes the conflict-tolerant path.
    pipeline.ingest([InputMessage(factory.batch_bytes([event, later]))], source="x")

    with Session(migrated_engine) as session:
        for sent in (event, later):
            stored = session.get(Event, sent["event_id"])
            for field in ("inputs", "outputs", "tags", "device_time_ns", "error_message", "seq"):
                assert getattr(stored, field) == sent[field], field
        assert session.get(Label, label["event_id"]).label == {"fraud": True, "score": [1, 2]}


def test_rollups_match_the_raw_events_per_version_and_minute(migrated_engine):
    from collections import defaultdict

    from inferloop.store import bucket_counts

    v1, v2 = EventFactory(model="mix", version="v1"), EventFactory(model="mix", version="v2")
    events = []
    for i in range(300):
        factory = v1 if i % 3 else v2
        events.append(
            factory.inference(
                start_time_ns=factory.base_time_ns + (i % 4) * MINUTE_NS + i,
                latency_ns=1_000 + i * 997,
                status="error" if i % 7 == 0 else "ok",
            )
        )
    # Several emitters in one ingest call, as the collector batches messages.
    IngestPipeline(migrated_engine).ingest(
        [
            InputMessage(v1.batch_bytes([e for e in events if e["version"] == "v1"])),
            InputMessage(v2.batch_bytes([e for e in events if e["version"] == "v2"])),
        ],
        source="x",
    )
    expected = defaultdict(list)
    for e in events:
        expected[(e["version"], minute_of_ns(e["start_time_ns"]))].append(e)
    with migrated_engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT version, minute_start_s, count, errors, latency_sum_ns, latency_max_ns,"
                " histogram FROM minute_rollups"
            )
        ).all()
    assert len(rows) == len(expected) == 8
    for row in rows:
        group = expected[(row.version, row.minute_start_s)]
        latencies = [e["latency_ns"] for e in group]
        histogram = (
            row.histogram if isinstance(row.histogram, dict) else orjson.loads(row.histogram)
        )
        assert row.count == len(group)
        assert row.errors == sum(e["status"] == "error" for e in group)
        assert (row.latency_sum_ns, row.latency_max_ns) == (sum(latencies), max(latencies))
        assert histogram == bucket_counts(latencies)


def test_delivery_ranges_follow_sequences_across_events_labels_and_emitters(migrated_engine):
    first, second = EventFactory(model="seq"), EventFactory(model="seq")
    a = [first.inference() for _ in range(5)]
    a.append(first.label(a[0]["prediction_id"]))
    a += [first.inference() for _ in range(4)]
    first.skip(2)
    a += [first.inference() for _ in range(3)]
    b = [second.inference() for _ in range(3)]
    pipeline = IngestPipeline(migrated_engine)
    pipeline.ingest(
        [InputMessage(first.batch_bytes(a[::-1])), InputMessage(second.batch_bytes(b))],
        source="x",
    )
    with migrated_engine.connect() as connection:
        ranges = connection.execute(
            sa.text("SELECT emitter_id, seq_start, seq_end FROM delivery_ranges")
        ).all()
    assert sorted((r.emitter_id, r.seq_start, r.seq_end) for r in ranges) == sorted(
        [(first.emitter_id, 0, 9), (first.emitter_id, 12, 14), (second.emitter_id, 0, 2)]
    )


def test_events_labels_and_dead_letters_of_one_batch_share_one_receive_time(migrated_engine):
    factory = EventFactory()
    prediction = factory.inference()
    batch = [prediction, factory.label(prediction["prediction_id"]), factory.inference(seq=-1)]
    messages = [InputMessage(factory.batch_bytes(batch)), InputMessage(b"not json")]

    IngestPipeline(migrated_engine).ingest(messages, source="x")

    with migrated_engine.connect() as connection:
        stamps = {
            table: set(connection.execute(sa.text(f"SELECT received_at_ns FROM {table}")).scalars())
            for table in ("events", "labels", "dead_letters")
        }
    assert len(stamps["dead_letters"]) == 1
    assert stamps["events"] == stamps["labels"] == stamps["dead_letters"]


def test_completeness_after_a_partly_invalid_batch_is_the_truth(migrated_engine):
    """The valid events count as received, the refused one as not received, no SDK drops."""
    factory = EventFactory(model="partly")
    events = [factory.inference() for _ in range(5)]
    events[2]["status"] = "maybe"
    result = IngestPipeline(migrated_engine).ingest(
        [InputMessage(factory.batch_bytes(events))], source="http"
    )

    assert (result.stored, [r.event_index for r in result.rejections]) == (4, [2])
    with migrated_engine.connect() as connection:
        figures = completeness(
            connection,
            "partly",
            start_ns=factory.base_time_ns,
            end_ns=factory.base_time_ns + MINUTE_NS,
        )
    assert (figures.received, figures.lost, figures.emitted) == (4, 1, 5)
    assert figures.sdk_dropped == {}


def test_drop_reports_count_once_whether_an_inference_or_a_label_carries_them(migrated_engine):
    factory = EventFactory(model="drops")
    prediction = factory.inference(dropped={"queue_full": 3})
    label = factory.label(prediction["prediction_id"], dropped={"send_failed": 2, "queue_full": 0})
    message = InputMessage(factory.batch_bytes([prediction, label]))
    pipeline = IngestPipeline(migrated_engine)

    pipeline.ingest([message], source="x")
    pipeline.ingest([message], source="x")  # redelivered: counts nothing again

    with migrated_engine.connect() as connection:
        drops = connection.execute(
            sa.text("SELECT reason, minute_start_s, count FROM sdk_drops ORDER BY reason")
        ).all()
    assert [tuple(row) for row in drops] == [
        ("queue_full", minute_of_ns(prediction["start_time_ns"]), 3),
        ("send_failed", minute_of_ns(label["time_ns"]), 2),
    ]


def test_unreachable_store_raises_store_unavailable_and_dead_letters_nothing(tmp_path):
    engine = create_engine_for(f"sqlite:///{tmp_path / 'missing' / 'inferloop.db'}")
    factory = EventFactory()
    published: list = []
    pipeline = IngestPipeline(engine, dead_letter_sink=published.extend)

    with pytest.raises(StoreUnavailable):
        pipeline.ingest([InputMessage(factory.batch_bytes([factory.inference()]))], source="x")
    engine.dispose()
    assert published == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", RejectionCode.UNDECODABLE),
        (b'{"schema_version": 1, "emitter_id": "\xff", "events": []}', RejectionCode.UNDECODABLE),
        (b'{"schema_version": 2, "emitter_id": "e", "events": []}', RejectionCode.INVALID),
        (b"x" * 101, RejectionCode.TOO_LARGE),
        (None, RejectionCode.NO_VALUE),
    ],
    ids=["truncated", "not-utf8", "wrong-version", "too-large", "tombstone"],
)
def test_each_refusal_carries_its_code_and_origin(migrated_engine, body, code):
    pipeline = IngestPipeline(migrated_engine, max_message_bytes=100)
    result = pipeline.ingest([InputMessage(body, "t", 2, 9)], source="kafka")
    [rejection] = result.rejections
    assert rejection.code is code
    assert (rejection.source, rejection.topic, rejection.partition, rejection.offset) == (
        "kafka",
        "t",
        2,
        9,
    )


def test_rejection_codes_pick_the_http_status():
    statuses = {code: code.http_status for code in RejectionCode}
    assert statuses == {
        RejectionCode.TOO_LARGE: 413,
        RejectionCode.UNDECODABLE: 400,
        RejectionCode.NO_VALUE: 400,
        RejectionCode.INVALID: 422,
        RejectionCode.STORE_REFUSED: 422,
    }
