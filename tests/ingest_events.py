"""Plain-dict events and batches following docs/event-contract.md, for ingest tests.

Independent of the SDK on purpose: these tests check the platform against the
written contract, not against one producer's reading of it.
"""

from __future__ import annotations

import itertools
import time
import uuid
from typing import Any

import orjson

from inferloop.grains import MINUTE_NS


class EventFactory:
    """Builds events for one emitter with contiguous sequence numbers."""

    def __init__(self, model: str = "fraud", version: str = "v1", emitter_id: str | None = None):
        self.model = model
        self.version = version
        self.emitter_id = emitter_id or uuid.uuid4().hex
        self._seq = itertools.count()
        self.base_time_ns = time.time_ns() // MINUTE_NS * MINUTE_NS - 10 * MINUTE_NS

    def inference(self, **overrides: Any) -> dict[str, Any]:
        seq = next(self._seq)
        event = {
            "schema_version": 1,
            "kind": "inference",
            "event_id": uuid.uuid4().hex,
            "emitter_id": self.emitter_id,
            "seq": seq,
            "model": self.model,
            "version": self.version,
            "environment": "test",
            "start_time_ns": self.base_time_ns + seq * 1_000_000,
            "latency_ns": 1_000_000 + (seq * 7919) % 5_000_000,
            "device_time_ns": None,
            "status": "ok",
            "error_type": None,
            "error_message": None,
            "batch_size": 1,
            "device": "cpu",
            "inputs": {"rows": [{"age": 30 + seq % 40, "country": "fr"}]},
            "outputs": {"rows": [{"score": 0.25}]},
            "prediction_id": f"p-{seq}",
            "tags": {"region": "eu"},
        }
        event.update(overrides)
        return event

    def label(self, prediction_id: str, label: Any = 1, **overrides: Any) -> dict[str, Any]:
        event = {
            "schema_version": 1,
            "kind": "label",
            "event_id": uuid.uuid4().hex,
            "emitter_id": self.emitter_id,
            "seq": next(self._seq),
            "prediction_id": prediction_id,
            "model": self.model,
            "label": label,
            "time_ns": time.time_ns(),
        }
        event.update(overrides)
        return event

    def skip(self, count: int) -> None:
        """Pretend ``count`` events were emitted and lost on the way."""
        for _ in range(count):
            next(self._seq)

    def batch(self, events: list[dict[str, Any]]) -> dict[str, Any]:
        return {"schema_version": 1, "emitter_id": self.emitter_id, "events": events}

    def batch_bytes(self, events: list[dict[str, Any]]) -> bytes:
        return orjson.dumps(self.batch(events))
