"""The one write path of ingest: validated events into the store, in one transaction.

Idempotency: events and labels are inserted with ON CONFLICT (event_id) DO
NOTHING RETURNING event_id (``bulk_insert.py``), and every derived figure
(minute and hour rollups, delivery ranges, SDK drop counts; ``rollups.py``) is computed only
from the rows that were actually inserted, and merged (``upserts.py``) in the
same transaction. Redelivering a batch therefore changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter

import sqlalchemy as sa

from .bulk_insert import insert_events, insert_labels
from .contract import LabelEvent
from .rollups import DerivedFigures, derive_figures
from .upserts import update_delivery, update_rollups, update_sdk_drops
from .validation import DropReport

_row_id = itemgetter(0)  # EVENT_COLUMNS[0] is event_id
_event_id = attrgetter("event_id")


@dataclass(slots=True)
class WriteOutcome:
    inserted: int = 0
    duplicates: int = 0


def _first_of_each(items: Sequence, ids: set[str], event_id) -> list:
    """The items whose id is in ``ids``, each id once (one id twice in a batch is inserted once)."""
    kept = []
    seen: set[str] = set()
    for item in items:
        key = event_id(item)
        if key in ids and key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def write_events(
    connection: sa.Connection,
    rows: Sequence[tuple],
    labels: Sequence[LabelEvent],
    received_at_ns: int,
    *,
    drops: Sequence[DropReport] = (),
    derived: DerivedFigures | None = None,
) -> WriteOutcome:
    """Store events (as ``events`` rows) and labels, and the figures of the new ones only.

    ``rows`` come from validation (``Validated.rows``), already stamped with
    the batch's receive time; ``received_at_ns`` is that same instant, for the
    labels. ``drops`` are the SDK drop reports the events carry; ``derived`` the
    batch's figures from ``derive_figures(rows, labels, drops)``, used only if
    every event is inserted. Must run inside the caller's transaction; the
    caller commits.
    """
    stored_rows: Sequence[tuple] = ()
    stored_labels: Sequence[LabelEvent] = ()
    inserted: set[str] = set()
    if rows:
        inserted = insert_events(connection, rows)
        stored_rows = (
            rows if len(inserted) == len(rows) else _first_of_each(rows, inserted, _row_id)
        )
    if labels:
        inserted_labels = insert_labels(connection, labels, received_at_ns)
        inserted |= inserted_labels
        stored_labels = _first_of_each(labels, inserted_labels, _event_id)
    outcome = WriteOutcome(inserted=len(stored_rows) + len(stored_labels))
    outcome.duplicates = len(rows) + len(labels) - outcome.inserted
    if derived is None or outcome.duplicates:
        stored_drops = _first_of_each(drops, inserted, _event_id)
        derived = derive_figures(stored_rows, stored_labels, stored_drops)
    update_rollups(connection, derived.aggregates, derived.hours)
    update_sdk_drops(connection, derived.drop_totals)
    update_delivery(connection, derived.delivery_runs)
    return outcome
