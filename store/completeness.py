"""Completeness: how much of what the SDKs emitted reached the store.

Received events are counted from rollups and labels; what was lost is read from the
gaps between the sequence-number ranges each emitter delivered; what the SDK itself
dropped (a full queue, ...) from the drop counts it reports.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa

from inferloop.grains import minute_of_ns

from .tables import DeliveryRange, Label, MinuteRollup, SdkDrops


@dataclass(frozen=True, slots=True)
class Completeness:
    """How much of what the SDKs emitted for a model in a window reached the store."""

    model: str
    start_ns: int
    end_ns: int
    received: int
    lost: int
    sdk_dropped: dict[str, int] = field(default_factory=dict)

    @property
    def emitted(self) -> int:
        return self.received + self.lost

    @property
    def received_share(self) -> float | None:
        return self.received / self.emitted if self.emitted else None

    @property
    def sdk_dropped_total(self) -> int:
        return sum(self.sdk_dropped.values())


def completeness(
    connection: sa.Connection, model: str, *, start_ns: int, end_ns: int
) -> Completeness:
    """Received vs. lost (sequence gaps) events of ``model`` in ``[start_ns, end_ns)``.

    ``received`` counts inference events (by start time, from rollups, so whole
    minutes) and labels. A gap in an emitter's sequence is charged to the model
    and time of the first event received after it; a gap at the end of a
    sequence is invisible until the emitter sends again.
    """
    start_s = minute_of_ns(start_ns)
    end_s = -minute_of_ns(-end_ns)  # the end rounded up to a whole minute, exactly
    rollups = MinuteRollup.__table__
    received = connection.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(rollups.c.count), 0)).where(
            rollups.c.model == model,
            rollups.c.minute_start_s >= start_s,
            rollups.c.minute_start_s < end_s,
        )
    )
    labels = Label.__table__
    received += connection.scalar(
        sa.select(sa.func.count()).where(
            labels.c.model == model, labels.c.time_ns >= start_ns, labels.c.time_ns < end_ns
        )
    )
    ranges = DeliveryRange.__table__
    emitters = (
        sa.select(ranges.c.emitter_id)
        .where(
            ranges.c.model == model,
            ranges.c.last_time_ns >= start_ns,
            ranges.c.first_time_ns < end_ns,
        )
        .distinct()
    )
    rows = connection.execute(
        sa.select(
            ranges.c.emitter_id,
            ranges.c.model,
            ranges.c.seq_start,
            ranges.c.seq_end,
            ranges.c.first_time_ns,
        )
        .where(ranges.c.emitter_id.in_(emitters))
        .order_by(ranges.c.emitter_id, ranges.c.seq_start)
    ).all()
    lost = 0
    highest_seen: dict[str, int] = defaultdict(lambda: -1)
    for row in rows:
        gap = row.seq_start - highest_seen[row.emitter_id] - 1
        if gap > 0 and row.model == model and start_ns <= row.first_time_ns < end_ns:
            lost += gap
        highest_seen[row.emitter_id] = max(highest_seen[row.emitter_id], row.seq_end)
    drops = SdkDrops.__table__
    dropped = dict(
        connection.execute(
            sa.select(drops.c.reason, sa.func.sum(drops.c.count))
            .where(
                drops.c.model == model,
                drops.c.minute_start_s >= start_s,
                drops.c.minute_start_s < end_s,
            )
            .group_by(drops.c.reason)
        ).all()
    )
    return Completeness(
        model=model,
        start_ns=start_ns,
        end_ns=end_ns,
        received=int(received),
        lost=lost,
        sdk_dropped={reason: int(count) for reason, count in dropped.items()},
    )
