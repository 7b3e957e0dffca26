"""Columnar batches (event contract v2): the calls of one monitored callable as arrays.

The common calls (no error, no extras, every input a plain scalar or a flat dict of them,
the result likewise) leave the worker as columns: one array per field and, for inputs and
outputs, one array per feature. The columns are gathered from the queued tuples with
`zip` and checked column by column (`set(map(type, column))`), so the worker does no
Python-level work per event, only per column; a batch is then one serialiser call, after
a header that is encoded once per monitored callable. Everything else (labels, errors,
tensors, sampling, redaction) goes through `_events` as v1 events.

`expand` turns a v2 batch back into v1 events, exactly as the collector reads it (event
ids rebuilt from the emitter and the sequence, prediction ids from their numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

from ._ids import emitter_bits, event_id_value, prediction_id, prediction_prefix
from ._record import NO_KWARGS
from ._serialize import ENCODER_NAME, dumps, dumps_plain

try:
    from ._transpose import dict_columns, record_columns
except ImportError:  # built without a C compiler: the Python passes below do the same
    dict_columns = record_columns = None

SCHEMA_VERSION = 2
STR_MAX = 256  # longest string value kept in a column (as the v1 fast path)
PREDICTION_ID_MAX = 200  # the contract's ShortText
PAYLOAD_BYTES_PER_FEATURE = 300  # worst case of one feature's JSON, for the payload cap
_PLAIN = frozenset((int, float, str, bool, type(None)))
_NUMBERS = frozenset((int, float, bool))
_PREDICTIONS = frozenset((int, str))
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what every fast JSON encoder takes
_VALUE = ("value",)
use_native = True
"""Whether slices go through `_transpose`'s passes when it was built (tests and benchmarks
turn it off to run the Python passes they stand in for)."""
# Values encoded between two releases of the GIL: about 10 µs of orjson. The standard
# library's encoder is ~5x slower, but smaller pieces cost it more in calls and releases
# than they save (measured: 64 values a piece doubled its encoding CPU).
ENCODE_PIECE = 256 if ENCODER_NAME == "json" else 512
_ENCODER_WRITES_NAN_AS_NULL = ENCODER_NAME in ("orjson", "msgspec")


def _no_pause() -> None:
    return None


def _keys(names: tuple[str, ...] | None) -> list[bytes] | None:
    """Each feature name as its JSON object key (`"age":`), encoded once per block."""
    return None if names is None else [dumps(name) + b":" for name in names]


class Block:
    """The gathered columns of one monitored callable and one set of feature names."""

    __slots__ = (
        "model",
        "header",
        "key",
        "input_names",
        "output_names",
        "seq",
        "start",
        "latency",
        "prediction",
        "inputs",
        "outputs",
        "input_keys",
        "output_keys",
    )

    def __init__(self, model: str, header: bytes, key: tuple[Any, Any, Any]) -> None:
        _, input_names, output_names = key
        self.model = model
        self.header = header
        self.key = key  # (spec, input feature names, output feature names)
        self.input_names = input_names
        self.output_names = output_names
        self.seq: list[int] = []
        self.start: list[int] = []
        self.latency: list[int] = []
        self.prediction: list[int | str] = []
        self.inputs = None if input_names is None else [[] for _ in input_names]
        self.outputs = None if output_names is None else [[] for _ in output_names]
        self.input_keys = _keys(input_names)
        self.output_keys = _keys(output_names)

    @property
    def count(self) -> int:
        return len(self.seq)

    def encode(
        self,
        start: int,
        end: int,
        report: dict[str, int] | None,
        pause: Callable[[], None] = _no_pause,
    ) -> bytes:
        """Events [start, end) as one v2 batch: the header and the keys were encoded once;
        each column is one encoder call, or one per ENCODE_PIECE values with `pause()`
        (the worker lets the GIL go) between them, so that no call holds it for long."""
        parts = [
            self.header,
            b'"seq":',
            _array(self.seq, start, end, pause),
            b',"start_ns":',
            _array(self.start, start, end, pause),
            b',"latency_ns":',
            _array(self.latency, start, end, pause),
            b',"prediction_id":',
            _array(self.prediction, start, end, pause),
            b',"inputs":',
            _columns(self.input_keys, self.inputs, start, end, pause),
            b',"outputs":',
            _columns(self.output_keys, self.outputs, start, end, pause),
        ]
        if report:
            parts.append(b',"dropped":' + dumps(report))
        parts.append(b"}")
        return b"".join(parts)


def _array(values: list[Any], start: int, end: int, pause: Callable[[], None]) -> bytes:
    if end - start <= ENCODE_PIECE:
        return dumps_plain(values[start:end])
    pieces = []
    for first in range(start, end, ENCODE_PIECE):
        pieces.append(dumps_plain(values[first : min(end, first + ENCODE_PIECE)])[1:-1])
        pause()
    return b"[" + b",".join(pieces) + b"]"


def _columns(
    keys: list[bytes] | None,
    columns: list[list[Any]] | None,
    start: int,
    end: int,
    pause: Callable[[], None],
) -> bytes:
    if keys is None or columns is None:
        return b"null"
    return (
        b"{"
        + b",".join(
            key + _array(column, start, end, pause)
            for key, column in zip(keys, columns, strict=True)
        )
        + b"}"
    )


Segments = dict[str, list[Any]]
"""Per model, what a drain produced, in call order: `Block`s and lists of v1 event JSON."""


class ColumnBuilder:
    """Sorts drained records into columnar blocks; returns those that need the v1 path.

    Per model and slice it is all or nothing: if one call of a model cannot be a column
    (an error, a tensor), all of that model's calls in the slice take the v1 path, so that
    a model's events are delivered in the order of its calls."""

    def __init__(
        self,
        *,
        emitter_id: str,
        environment: str,
        start_base_ns: int,
        payload_max_bytes: int,
        take_seqs: Callable[[int], int],
        enabled: bool,
    ) -> None:
        self._emitter_id = emitter_id
        self._environment = environment
        self._start_base_ns = start_base_ns
        self._payload_max = payload_max_bytes
        self._take_seqs = take_seqs
        self.enabled = enabled  # off while sampling or redacting: those need the v1 path
        self._headers: dict[Any, bytes] = {}

    def take(self, chunk: list[Any], segments: Segments) -> list[Any]:
        """Gather what fits columns into `segments`; return the other records, in order."""
        if not self.enabled:
            return chunk
        spec = chunk[0][0] if type(chunk[0]) is tuple else None
        if spec is not None and record_columns is not None and use_native:
            # The common slice in one C pass: calls of one callable, none with an error,
            # keywords or extras, all with as many arguments. Anything else: the passes below.
            uniform = record_columns(
                chunk, NO_KWARGS, 1 if spec.skip_first else 0, _ENCODER_WRITES_NAN_AS_NULL, STR_MAX
            )
            if uniform is not None:
                started, latency, arguments, results, predictions, *plain = uniform
                prepared = self._prepare_calls(
                    spec, started, latency, predictions, results, arguments=arguments, plain=plain
                )
                if prepared is None:
                    return chunk
                self._commit(spec, prepared, segments)
                return []
        if spec is not None:
            # The common slice: calls of one callable. A label (a 4-field LabelRecord) in
            # it stops the strict zip; another callable shows in the spec column's count.
            try:
                columns = list(zip(*chunk, strict=True))
            except ValueError:
                columns = None
            if columns is not None and columns[0].count(spec) == len(chunk):
                prepared = self._prepare(spec, columns)
                if prepared is None:
                    return chunk
                self._commit(spec, prepared, segments)
                return []
        calls = [record for record in chunk if type(record) is tuple]
        by_spec: dict[Any, list[Any]] = {}
        for record in calls:
            by_spec.setdefault(record[0], []).append(record)
        failed_models = set()
        ready = []
        for spec, records in by_spec.items():
            prepared = self._prepare(spec, list(zip(*records, strict=True)))
            if prepared is None:
                failed_models.add(spec.model)
            else:
                ready.append((spec, prepared))
        for spec, prepared in ready:
            if spec.model not in failed_models:
                self._commit(spec, prepared, segments)
        return [
            record
            for record in chunk
            if type(record) is not tuple or record[0].model in failed_models
        ]

    def _prepare(self, spec: Any, columns: list[tuple[Any, ...]]) -> tuple[Any, ...] | None:
        """One callable's records, transposed, as columns; None if any cannot be one."""
        # CallRecord order (see _record): spec, started, latency, error, args, kwargs,
        # result, prediction, extras.
        _, started, latency, errors, argss, kwargss, results, predictions, extras = columns
        count = len(started)
        if (
            errors.count(None) != count
            or extras.count(None) != count
            or kwargss.count(NO_KWARGS) != count
        ):
            return None
        return self._prepare_calls(spec, started, latency, predictions, results, argss=argss)

    def _prepare_calls(
        self,
        spec: Any,
        started: Sequence[int],
        latency: Sequence[int],
        predictions: Sequence[Any],
        results: Sequence[Any],
        *,
        argss: Sequence[tuple[Any, ...]] | None = None,
        arguments: list[list[Any]] | None = None,
        plain: Sequence[bool] = (False, False),
    ) -> tuple[Any, ...] | None:
        """The rest of `_prepare`, for calls known to have no error, keywords or extras:
        their arguments as the records hold them (`argss`) or already as one column per
        argument after a method's self (`arguments`, from `record_columns`, which also
        tells whether all arguments and all results are plain values: `plain`)."""
        plain_arguments, plain_results = plain
        if spec.batch_size is not None:
            return None
        # Without `prediction_id=`, the wrappers queue the emitter's numbers: ints only.
        if spec.prediction_arg is not None:
            kinds = set(map(type, predictions))
            if not kinds <= _PREDICTIONS or (
                str in kinds
                and max(len(p) for p in predictions if type(p) is str) > PREDICTION_ID_MAX
            ):
                return None
        count = len(started)
        inputs = outputs = None
        if spec.capture_inputs:
            if arguments is None:
                arguments = self._argument_columns(spec, argss)
            inputs = None if arguments is None else self._inputs(spec, arguments, plain_arguments)
            if inputs is None:
                return None
        if spec.capture_outputs:
            outputs = self._values(results, _VALUE, plain_results)
            if outputs is None:
                return None
        return count, started, latency, predictions, inputs, outputs

    def _commit(self, spec: Any, prepared: tuple[Any, ...], segments: Segments) -> None:
        count, started, latency, predictions, inputs, outputs = prepared
        input_names = None if inputs is None else inputs[0]
        output_names = None if outputs is None else outputs[0]
        block = self._block(spec, input_names, output_names, segments)
        first = self._take_seqs(count)
        block.seq.extend(range(first, first + count))
        block.start.extend(started)
        block.latency.extend(latency)
        block.prediction.extend(predictions)
        if block.inputs is not None:
            for column, values in zip(block.inputs, inputs[1], strict=True):
                column.extend(values)
        if block.outputs is not None:
            for column, values in zip(block.outputs, outputs[1], strict=True):
                column.extend(values)

    @staticmethod
    def _argument_columns(spec: Any, argss: Sequence[tuple[Any, ...]]) -> list[Any] | None:
        """The calls' positional arguments (after a method's self) as one column each."""
        if spec.skip_first:
            argss = [args[1:] for args in argss]
        try:
            return list(zip(*argss, strict=True))
        except ValueError:  # calls with different numbers of arguments
            return None

    def _inputs(
        self, spec: Any, columns: list[Any], plain: bool = False
    ) -> tuple[tuple[str, ...], list[Any]] | None:
        """Positional scalars as one column per parameter, or one dict argument per key.
        `plain`: every value is known to be one a column takes as it is."""
        length = len(columns)
        if length == 0:
            return None
        if length == 1:
            if spec.prediction_arg is not None and spec.names[:1] == (spec.prediction_arg,):
                return None
            return self._values(columns[0], _VALUE, plain)
        names: tuple[str, ...] = spec.names
        if length > len(names):
            return None
        names = names[:length]
        if spec.prediction_arg in names:
            drop = names.index(spec.prediction_arg)
            names = names[:drop] + names[drop + 1 :]
            del columns[drop]
            if len(names) == 1:
                names = _VALUE
        return self._checked(names, columns, plain=plain)

    def _values(
        self, values: Sequence[Any], scalar_names: tuple[str, ...], plain: bool = False
    ) -> tuple[tuple[str, ...], list[Any]] | None:
        """One value per call: a plain scalar (one column) or a flat dict (one per key)."""
        if plain:
            return self._checked(scalar_names, [values], plain=True)
        kinds = set(map(type, values))
        if kinds <= _PLAIN:
            return self._checked(scalar_names, [values], kinds)
        if kinds != {dict}:
            return None
        keys = tuple(values[0])
        if not keys or set(map(type, keys)) != {str}:
            return None
        if dict_columns is not None and use_native:
            if not self._fits_payload(keys):
                return None
            columns = dict_columns(values, keys, _ENCODER_WRITES_NAN_AS_NULL, STR_MAX)
            return None if columns is None else (keys, columns)
        if set(map(len, values)) != {len(keys)}:
            return None
        try:
            rows = list(map(itemgetter(*keys), values))
        except KeyError:  # same size, other keys
            return None
        if len(keys) == 1:
            return self._checked(keys, [rows])
        columns = list(zip(*rows, strict=True))
        if not _fit_as_they_are(set(map(type, rows[0]))):  # then the rows would not either
            return self._checked(keys, columns)
        return self._checked(keys, columns, every_kind=set(map(type, chain.from_iterable(rows))))

    def _checked(
        self,
        names: tuple[str, ...],
        columns: list[Any],
        kinds: set[type] | None = None,
        *,
        every_kind: set[type] | None = None,
        plain: bool = False,
    ) -> tuple[tuple[str, ...], list[Any]] | None:
        """The columns if every value is plain, short and encodable; None otherwise.
        `kinds`: the value types of a single column, when the caller has them already;
        `every_kind`: those of all the columns together. When these need no look at single
        values (see `_fit_as_they_are`), the columns are taken as they are: one set of
        types for all of them instead of one per column (16 float features: 14% less CPU
        for the whole slice). `plain`: `record_columns` looked at every value already."""
        if not self._fits_payload(names):
            return None
        if plain:
            return names, columns
        if every_kind is not None and _fit_as_they_are(every_kind):
            return names, columns
        checked = []
        for column in columns:
            column = _plain_column(column, kinds)
            if column is None:
                return None
            checked.append(column)
        return names, checked

    def _fits_payload(self, names: tuple[str, ...]) -> bool:
        """Whether an event with these features stays under the payload cap at worst."""
        worst = len(names) * PAYLOAD_BYTES_PER_FEATURE + sum(map(len, names))
        return worst <= self._payload_max

    def _block(
        self,
        spec: Any,
        input_names: tuple[str, ...] | None,
        output_names: tuple[str, ...] | None,
        segments: Segments,
    ) -> Block:
        """The block to extend: one of the model's blocks since its last v1 events, or new."""
        key = (spec, input_names, output_names)
        model_segments = segments.get(spec.model)
        if model_segments is None:
            model_segments = segments[spec.model] = []
        for segment in reversed(model_segments):
            if type(segment) is not Block:
                break  # v1 events came after it: a later call must not overtake them
            if segment.key == key:
                return segment
        header = self._headers.get(spec)
        if header is None:
            header = self._headers[spec] = self._header(spec)
        block = Block(spec.model, header, key)
        model_segments.append(block)
        return block

    def _header(self, spec: Any) -> bytes:
        """What every v2 batch of this callable starts with, encoded once."""
        constant = {
            "schema_version": SCHEMA_VERSION,
            "emitter_id": self._emitter_id,
            "model": spec.model,
            "version": spec.version,
            "environment": spec.environment or self._environment,
            "device": spec.device or "cpu",
            "tags": spec.tags,
            "start_base_ns": self._start_base_ns,
        }
        return dumps(constant)[:-1] + b","


_AS_THEY_ARE = frozenset(
    (bool, type(None), float) if _ENCODER_WRITES_NAN_AS_NULL else (bool, type(None))
)


def _fit_as_they_are(kinds: set[type]) -> bool:
    """Whether columns whose values are all of `kinds` need no value-by-value look: no
    strings (their length is capped), no integers (their range is), and floats only with
    an encoder that writes NaN as null."""
    return kinds <= _AS_THEY_ARE


def _plain_column(column: Sequence[Any], kinds: set[type] | None = None) -> Sequence[Any] | None:
    """The column with non-finite floats as null (as v1 payloads write them), or None when
    a value is not a plain scalar, a string is over STR_MAX or an integer over 64 bits.
    Whole-column checks in C (set, map, sum, min, max); a value-by-value pass only for
    columns that mix kinds or hold a non-finite float. orjson and msgspec write non-finite
    floats as null themselves: with them floats are not looked at."""
    if kinds is None:
        kinds = set(map(type, column))
    if not kinds <= _PLAIN:
        return None
    if str in kinds:
        strings = column if len(kinds) == 1 else [v for v in column if type(v) is str]
        if max(map(len, strings)) > STR_MAX:
            return None
    if int in kinds:
        ints = column if len(kinds) == 1 else [v for v in column if type(v) is int]
        if min(ints) < _INT_MIN or max(ints) > _INT_MAX:
            return None
    if float in kinds and not _ENCODER_WRITES_NAN_AS_NULL:
        numbers = column if kinds <= _NUMBERS else [v for v in column if type(v) is float]
        if not math.isfinite(sum(numbers)):  # a NaN or an infinity somewhere (or overflow)
            return [None if type(v) is float and not math.isfinite(v) else v for v in column]
    return column


def expand(batch: dict[str, Any]) -> dict[str, Any]:
    """A decoded batch in the v1 layout: v2 columns become the events they stand for."""
    if batch.get("schema_version") != SCHEMA_VERSION:
        return batch
    emitter = batch["emitter_id"]
    bits = emitter_bits(emitter)
    prefix = prediction_prefix(emitter)
    base = batch["start_base_ns"]
    inputs = batch.get("inputs")
    outputs = batch.get("outputs")
    constant = {
        "schema_version": 1,
        "kind": "inference",
        "emitter_id": emitter,
        "model": batch["model"],
        "version": batch["version"],
        "environment": batch["environment"],
        "device_time_ns": None,
        "status": "ok",
        "error_type": None,
        "error_message": None,
        "batch_size": 1,
        "device": batch["device"],
    }
    events = []
    columns = zip(
        batch["seq"], batch["start_ns"], batch["latency_ns"], batch["prediction_id"], strict=True
    )
    for index, (seq, start, latency, prediction) in enumerate(columns):
        start_time = base + start
        events.append(
            {
                **constant,
                "event_id": f"{event_id_value(bits, start_time, seq):032x}",
                "seq": seq,
                "start_time_ns": start_time,
                "latency_ns": latency,
                "inputs": _row(inputs, index),
                "outputs": _row(outputs, index),
                "prediction_id": (
                    prediction_id(prefix, prediction) if type(prediction) is int else prediction
                ),
                "tags": dict(batch.get("tags") or {}),
            }
        )
    if events and batch.get("dropped"):
        events[0]["dropped"] = batch["dropped"]
    return {"schema_version": 1, "emitter_id": emitter, "events": events}


def _row(columns: dict[str, list[Any]] | None, index: int) -> dict[str, Any] | None:
    if columns is None:
        return None
    return {"rows": [{name: column[index] for name, column in columns.items()}]}
