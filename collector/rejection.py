"""The one type that says why ingest refused some input, and what that means to the sender.

A rejection is raised by validation or by the store, dead-lettered (table and
topic) with where it came from, and answered over HTTP with the status its code
picks: the code, not the wording of the reason, decides.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum


class RejectionCode(StrEnum):
    """What kind of refusal: each picks the HTTP status of the answer."""

    TOO_LARGE = "too_large"
    """The message is over the pipeline's byte limit."""
    UNDECODABLE = "undecodable"
    """Not a JSON document at all (not UTF-8, truncated, not JSON)."""
    NO_VALUE = "no_value"
    """A Kafka record without a value (a tombstone)."""
    INVALID = "invalid"
    """JSON that breaks the contract: the whole batch, or one event of it."""
    STORE_REFUSED = "store_refused"
    """The database refused an event the contract allowed (e.g. a NUL in PostgreSQL text)."""

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS[self]


_HTTP_STATUS = {
    RejectionCode.TOO_LARGE: 413,
    RejectionCode.UNDECODABLE: 400,
    RejectionCode.NO_VALUE: 400,
    RejectionCode.INVALID: 422,
    RejectionCode.STORE_REFUSED: 422,
}


@dataclass(frozen=True, slots=True)
class Rejection:
    """Refused input, with why and where it came from.

    ``event_index`` is the event's position in its batch, -1 for the whole
    message. The origin (``source`` and the Kafka coordinates) is filled in by
    the pipeline with ``from_origin``; validation knows only the bytes.
    """

    code: RejectionCode
    reason: str
    raw: bytes
    event_index: int = -1
    source: str = ""
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None

    def from_origin(
        self, source: str, topic: str | None, partition: int | None, offset: int | None
    ) -> Rejection:
        """This rejection, saying which input and which Kafka record it came from."""
        return dataclasses.replace(
            self, source=source, topic=topic, partition=partition, offset=offset
        )
