"""What serving threads put on the emitter's queue: one record per call or label.

`CallRecord` is the layout of a monitored call's record. The hot path in `_monitor` builds
it as a plain tuple in exactly this field order, because the NamedTuple constructor (even
`tuple.__new__(CallRecord, ...)`) costs about 100 ns more per call, a tenth of the SDK's
whole overhead; the worker unpacks it in the same order (`_events.EventBuilder.build`), and
a test checks that what the wrappers queue reads back as a `CallRecord`. Labels are rare,
so they are queued as real `LabelRecord` instances, which is how the worker tells them apart.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from . import _payload


class CallExtras:
    """What a call adds beyond its arguments: explicit payloads, overrides, CUDA events."""

    __slots__ = ("inputs", "outputs", "batch_size", "device", "tags", "cuda")

    def __init__(self, cuda: tuple[Any, Any] | None = None) -> None:
        self.inputs: Any = _payload.UNSET
        self.outputs: Any = _payload.UNSET
        self.batch_size: int | None = None
        self.device: str | None = None
        self.tags: dict[str, str] | None = None
        self.cuda = cuda


class CallRecord(NamedTuple):
    """One monitored call, as queued (built as a plain tuple in this order, see above)."""

    spec: Any  # the callable's MonitorSpec
    started: int  # perf_counter_ns at the start of the call
    latency: int  # ns
    error: BaseException | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Any
    prediction: Any  # the emitter's prediction number (int) or the caller's own id (str)
    extras: CallExtras | None


class LabelRecord(NamedTuple):
    """The ground truth of an earlier prediction (`log_label`)."""

    time_ns: int  # Unix ns
    model: str
    prediction_id: str
    label: Any


Record = CallRecord | LabelRecord

NO_KWARGS: dict[str, Any] = {}
"""The `kwargs` of every record that `_hotpath` queues for a call without keywords (one
shared dict: the worker only reads a record's fields, and finds these by identity)."""
