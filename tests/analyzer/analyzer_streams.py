"""Synthetic inference streams (contract-shaped events and labels) for analyzer tests,
written through the real ingest pipeline."""

from __future__ import annotations

import uuid

import numpy as np
import orjson

from inferloop.collector import IngestPipeline, InputMessage

NS = 1_000_000_000
HOUR_NS = 3600 * NS


class Stream:
    """Events of one model version from one emitter, with knobs for injected problems."""

    def __init__(self, model: str, version: str = "v1", seed: int = 0) -> None:
        self.model, self.version = model, version
        self.rng = np.random.default_rng(seed)
        self.emitter = uuid.uuid4().hex
        self.seq = 0

    def hour(
        self,
        start_ns: int,
        *,
        events: int = 1200,
        age_shift: float = 0.0,
        latency_factor: float = 1.0,
        error_rate: float = 0.01,
        accuracy: float = 0.9,
        label_share: float = 0.6,
        embedding_dims: int = 0,
        embedding_shift: float = 0.0,
    ) -> tuple[list[dict], list[dict]]:
        rng = self.rng
        offsets = np.sort(rng.integers(0, HOUR_NS, events))
        inference, labels = [], []
        for offset in offsets:
            truth = int(rng.integers(0, 2))
            predicted = truth if rng.random() < accuracy else 1 - truth
            pid = f"{self.model}-{self.version}-{self.seq}"
            latency_ms = rng.lognormal(np.log(20.0), 0.3) * latency_factor
            failed = rng.random() < error_rate
            inference.append(
                {
                    "schema_version": 1,
                    "kind": "inference",
                    "event_id": uuid.uuid4().hex,
                    "emitter_id": self.emitter,
                    "seq": self.seq,
                    "model": self.model,
                    "version": self.version,
                    "environment": "test",
                    "start_time_ns": int(start_ns + offset),
                    "latency_ns": int(latency_ms * 1e6),
                    "device_time_ns": None,
                    "status": "error" if failed else "ok",
                    "error_type": "ValueError" if failed else None,
                    "error_message": None,
                    "batch_size": 1,
                    "device": "cpu",
                    "inputs": {
                        "rows": [
                            {
                                "age": float(rng.normal(40 + 10 * age_shift, 10)),
                                "income": float(rng.lognormal(10, 0.5)),
                                "country": str(rng.choice(["fr", "de", "es", "it"])),
                            }
                            | (
                                {
                                    "emb": (
                                        rng.normal(size=embedding_dims) + embedding_shift
                                    ).tolist()
                                }
                                if embedding_dims
                                else {}
                            )
                        ]
                    },
                    "outputs": {"rows": [{"prediction": predicted}]},
                    "prediction_id": pid,
                    "tags": {},
                }
            )
            if rng.random() < label_share:
                labels.append(
                    {
                        "schema_version": 1,
                        "kind": "label",
                        "event_id": uuid.uuid4().hex,
                        "emitter_id": self.emitter,
                        "seq": self.seq + 1,
                        "prediction_id": pid,
                        "model": self.model,
                        "label": truth,
                        "time_ns": int(start_ns + offset + NS),
                    }
                )
                self.seq += 1
            self.seq += 1
        # label events share the emitter's sequence: keep it contiguous by renumbering
        return inference, labels


def ingest(engine, events: list[dict], batch: int = 1000) -> None:
    """Store events through the collector's pipeline (validation, rollups and all)."""
    pipeline = IngestPipeline(engine)
    events = sorted(events, key=lambda e: e["seq"])
    by_emitter: dict[str, list[dict]] = {}
    for event in events:
        by_emitter.setdefault(event["emitter_id"], []).append(event)
    for emitter, items in by_emitter.items():
        for i in range(0, len(items), batch):
            body = {"schema_version": 1, "emitter_id": emitter, "events": items[i : i + batch]}
            result = pipeline.ingest([InputMessage(orjson.dumps(body))], source="http")
            assert not result.rejections, result.rejections[:3]
