"""The drift reference of a model version, loaded once and profiled once.

A pinned dataset or a version's first events do not change, so their profiles are
cached between runs and each run only pays for its current window; the previous-period
baseline moves with the window and is recomputed each run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
import sqlalchemy as sa

from inferloop.store.events_read import first_events
from inferloop.store.references import active_reference

from ._config import AnalyzerConfig
from ._embeddings import embedding_groups
from ._observations import Window
from ._payloads import PREDICTION_ID, features_frame
from ._profile import ReferenceProfile, infer_kinds
from ._references import read_table
from ._samples import ColumnKind

REFERENCE_CACHE_SIZE = 64
SUMMARY_STATS = (".mean", ".std", ".min", ".max", ".nan")


@dataclass
class LoadedReference:
    description: dict[str, Any]
    """What the reference is, for a finding's evidence (`type`: pinned, first_events, ...)."""
    frame: pl.DataFrame
    kinds: dict[str, ColumnKind]
    """Kinds of the plain features (embedding components excluded)."""
    profile: ReferenceProfile
    embeddings: dict[str, ReferenceProfile]


def reference_kinds(frame: pl.DataFrame) -> dict[str, ColumnKind]:
    """Inferred kinds, with tensor-summary statistics always numerical."""
    kinds = infer_kinds(frame.drop(PREDICTION_ID, strict=False))
    for name in kinds:
        if name.endswith(SUMMARY_STATS) and frame.schema[name].is_numeric():
            kinds[name] = ColumnKind.NUMERICAL
    return kinds


def load_reference(
    description: dict[str, Any],
    frame: pl.DataFrame,
    kinds: Mapping[str, ColumnKind] | None = None,
) -> LoadedReference | None:
    """Profile `frame` (embeddings apart from plain features); None when it is empty."""
    if frame.is_empty():
        return None
    kinds = dict(kinds or reference_kinds(frame))
    embeddings = {}
    for name, columns in embedding_groups(kinds).items():
        component_kinds = {c: ColumnKind.NUMERICAL for c in columns}
        embeddings[name] = ReferenceProfile.from_frame(frame, component_kinds)
        for column in columns:
            del kinds[column]
    profile = ReferenceProfile.from_frame(frame, kinds)
    return LoadedReference(description, frame, kinds, profile, embeddings)


class ReferenceCache:
    """Finds the drift reference of a window and keeps the most recently used profiles."""

    def __init__(self, config: AnalyzerConfig, size: int = REFERENCE_CACHE_SIZE) -> None:
        self.config = config
        self.size = size
        self._loaded: OrderedDict[tuple, LoadedReference] = OrderedDict()

    def _remember(self, key: tuple, loaded: LoadedReference) -> LoadedReference:
        self._loaded[key] = loaded
        self._loaded.move_to_end(key)
        while len(self._loaded) > self.size:
            self._loaded.popitem(last=False)
        return loaded

    def reference(
        self, connection: sa.Connection, window: Window, previous: list[dict[str, Any]]
    ) -> LoadedReference | None:
        """The pinned dataset of the version or model, else the version's first events
        once they all precede the window (unless the previous period is asked for), else
        the previous period (`previous`, the events just before the window)."""
        pinned = active_reference(connection, window.model, window.version)
        if pinned is not None:
            key = ("pinned", pinned.id)
            if key in self._loaded:
                return self._remember(key, self._loaded[key])
            frame = read_table(pinned.path)
            kinds = {c: ColumnKind(k) for c, k in pinned.column_kinds.items()}
            description = {"type": "pinned", "reference_id": pinned.id, "name": pinned.name}
            loaded = load_reference(description, frame, kinds)
            return None if loaded is None else self._remember(key, loaded)
        if self.config.baseline == "first_events":
            key = ("first", window.model, window.version, self.config.baseline_events)
            if key in self._loaded:
                return self._remember(key, self._loaded[key])
            events = first_events(
                connection, window.model, window.version, self.config.baseline_events
            )
            complete = len(events) == self.config.baseline_events
            if complete and events[-1]["start_time_ns"] < window.start_ns:
                description = {
                    "type": "first_events",
                    "events": len(events),
                    "until_ns": events[-1]["start_time_ns"],
                }
                loaded = load_reference(description, features_frame(events))
                return None if loaded is None else self._remember(key, loaded)
        frame = features_frame(previous)  # previous period: recomputed each run
        if len(frame) < self.config.min_rows:
            return None
        description = {
            "type": "previous_period",
            "start_ns": 2 * window.start_ns - window.end_ns,
            "end_ns": window.start_ns,
        }
        return load_reference(description, frame)
