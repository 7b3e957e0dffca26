"""The model page's label reads on both back ends: the label in force per prediction, the
read's bound, and label delays counted once per label."""

from __future__ import annotations

from ingest_events import EventFactory

from inferloop.collector import IngestPipeline
from inferloop.collector.pipeline import InputMessage
from inferloop.store.label_panels import label_delays, labeled_predictions, version_ranges

SECOND_NS = 1_000_000_000


def _stored(engine):
    pipeline = IngestPipeline(engine)
    factory = EventFactory(model="fraud", version="1")
    start = factory.base_time_ns
    events = [factory.inference(start_time_ns=start + k * SECOND_NS) for k in range(10)]
    labels = [
        factory.label(f"p-{k}", k % 2, time_ns=start + (k + 5) * SECOND_NS) for k in range(10)
    ]
    # p-0 corrected a minute later: two label versions, the later one in force
    labels.append(factory.label("p-0", "corrected", time_ns=start + 60 * SECOND_NS))
    for batch in (events, labels):
        result = pipeline.ingest([InputMessage(factory.batch_bytes(batch))], source="http")
        assert not result.rejections, result.rejections
    return start


def _labeled_minute(engine, *, limit: int):
    start = _stored(engine)
    with engine.connect() as connection:
        return labeled_predictions(
            connection,
            "fraud",
            versions=["1"],
            start_ns=start,
            end_ns=start + 60 * SECOND_NS,
            limit=limit,
        )


def test_each_prediction_comes_with_its_latest_label(migrated_engine):
    found, truncated = _labeled_minute(migrated_engine, limit=100)

    assert not truncated
    assert len(found) == 10
    assert [p.start_time_ns for p in found] == sorted(p.start_time_ns for p in found)
    assert found[0].label == "corrected" and found[1].label == 1
    assert found[0].outputs == {"rows": [{"score": 0.25}]} and found[0].version == "1"


def test_the_read_stops_at_its_bound_and_says_so(migrated_engine):
    found, truncated = _labeled_minute(migrated_engine, limit=4)

    assert truncated and len(found) <= 4


def test_label_delays_count_each_label_version_once(migrated_engine):
    start = _stored(migrated_engine)
    edges = [6 * SECOND_NS, 10 * SECOND_NS]
    with migrated_engine.connect() as connection:
        delays = label_delays(
            connection,
            "fraud",
            start_ns=start,
            end_ns=start + 120 * SECOND_NS,
            edges_ns=edges,
        )
        ranges = version_ranges(
            connection, "fraud", start_s=start // SECOND_NS, end_s=start // SECOND_NS + 60
        )

    # Every first label 5 s after its prediction; the correction 60 s after p-0's.
    assert delays.counts == [10, 0, 1] and delays.joined == 11 and delays.waiting == 0
    assert list(ranges) == ["1"] and ranges["1"].count == 10
    assert sum(ranges["1"].histogram.values()) == 10
