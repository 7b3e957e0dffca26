"""The SDK's C modules do what the Python code they stand in for does.

`_hotpath.Monitored` is the wrapper of a plain function; `_transpose.dict_columns` the
worker's dict-to-columns pass. `make test` builds both (a missing one fails here); the
Python code stays for installs without a compiler and is held to the same behaviour.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import math
import sys
import traceback
import weakref
from typing import Any

import pytest
from conftest import GateTransport  # noqa: I001 - tests/sdk/conftest.py (rootdir import mode)
from hypothesis import given, settings
from hypothesis import strategies as st

from inferloop.sdk import (
    MemoryTransport,
    _columns,
    _last,
    _monitor,
    _state,
    configure,
    flush,
    monitor,
    shutdown,
    stats,
)
from inferloop.sdk._record import NO_KWARGS, CallRecord

hotpath = _monitor._hotpath
dict_columns = _columns.dict_columns


def _c_wrapper(fn: Any, spec: Any, fallback: Any, slot_type: type = _last.ThreadSlot) -> Any:
    """A C wrapper built as `_monitor._sync_wrapper` builds it, with a fallback of the test's."""
    return hotpath.Monitored(
        fn,
        spec,
        _state,
        fallback=fallback,
        remember=_last.remember,
        enqueue=_monitor._enqueue,
        last_prediction=_last.last_prediction,
        slot_type=slot_type,
        running_loop=asyncio._get_running_loop,
        no_kwargs=NO_KWARGS,
    )


def test_both_c_modules_were_built() -> None:
    assert hotpath is not None, "inferloop.sdk._hotpath was not built (is gcc installed?)"
    assert dict_columns is not None, "inferloop.sdk._transpose was not built"


def test_plain_functions_get_the_c_wrapper_and_per_call_options_the_python_one() -> None:
    def predict(x):
        return x

    assert type(monitor(model="m")(predict)) is hotpath.Monitored
    assert type(monitor(model="m", cuda=False)(predict)) is hotpath.Monitored
    # A given prediction id and asked-for CUDA timing are the Python wrapper's to handle.
    assert type(monitor(model="m", prediction_id="x")(predict)).__name__ == "function"
    assert type(monitor(model="m", cuda=True)(predict)).__name__ == "function"


def _queued_by(wrapper_is_c: bool, gate: GateTransport, calls: list[tuple[Any, Any]]) -> list:
    """The records a wrapper queues for `calls` ((args, kwargs) pairs), the worker held."""
    _monitor.use_hotpath = wrapper_is_c
    try:
        configure(transport=gate, flush_interval_s=0.01)

        @monitor(model="same")
        def predict(a, b=0, *, c=None):
            return (a, b, c)

        predict(0)
        assert gate.entered.wait(5)  # the worker is held in send: what follows stays queued
        queue = _state.emitter.queue
        queue.clear()
        for args, kwargs in calls:
            predict(*args, **kwargs)
        return [CallRecord._make(record) for record in queue]
    finally:
        gate.gate.set()
        _monitor.use_hotpath = True


def test_c_and_python_wrappers_queue_the_same_records() -> None:
    calls = [((1,), {}), ((1, 2), {}), ((1,), {"b": 2}), ((), {"a": 1, "c": "x"})]
    c_records = _queued_by(True, GateTransport(), calls)
    shutdown(timeout=1.0)
    python_records = _queued_by(False, GateTransport(), calls)
    assert len(c_records) == len(python_records) == len(calls)
    for ours, theirs in zip(c_records, python_records, strict=True):
        assert ours.spec.model == theirs.spec.model == "same"
        assert (ours.args, ours.kwargs, ours.result) == (theirs.args, theirs.kwargs, theirs.result)
        assert ours.error is theirs.error is None and ours.extras is theirs.extras is None
        assert type(ours.started) is type(ours.latency) is int and ours.latency > 0
        assert type(ours.prediction) is int
    # Calls without keywords share one read-only dict; a call with keywords gets its own.
    assert c_records[0].kwargs is NO_KWARGS and c_records[1].kwargs is NO_KWARGS
    assert c_records[2].kwargs is not NO_KWARGS and NO_KWARGS == {}


def test_the_c_wrapper_reads_the_same_clock_as_the_python_one(memory: MemoryTransport) -> None:
    import time

    @monitor(model="clock")
    def predict(x):
        return x

    assert abs(hotpath.monotonic_ns() - time.perf_counter_ns()) < 1_000_000
    before = time.time_ns()
    predict(1)
    after = time.time_ns()
    assert flush(5)
    (event,) = memory.events
    # start_time_ns is perf_counter_ns mapped to wall time: a C clock other than
    # perf_counter's would put it far outside the call.
    assert before - 5_000_000 <= event["start_time_ns"] <= after + 5_000_000


def test_an_exception_passes_through_the_c_wrapper_with_its_traceback(
    memory: MemoryTransport,
) -> None:
    @monitor(model="err")
    def predict(x):
        raise KeyError(x)

    with pytest.raises(KeyError) as caught:
        predict("missing")
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert frames[-1] == "predict"  # the model's own frame is still where it raised
    assert flush(5)
    (event,) = memory.events
    assert event["status"] == "error" and event["error_type"] == "KeyError"


def test_the_c_wrapper_binds_as_a_method_like_a_function(memory: MemoryTransport) -> None:
    class Model:
        scale = 3

        @monitor(model="method")
        def predict(self, x):
            return x * self.scale

        @classmethod
        @monitor(model="classmethod")
        def build(cls, x):
            return cls.scale + x

        @staticmethod
        @monitor(model="staticmethod")
        def helper(x):
            return -x

    model = Model()
    assert type(Model.__dict__["predict"]) is hotpath.Monitored
    assert model.predict(2) == 6 and Model.predict(model, 2) == 6
    assert Model.build(1) == 4 and model.helper(5) == -5
    assert flush(5)
    assert sorted(event["model"] for event in memory.events) == [
        "classmethod",
        "method",
        "method",
        "staticmethod",
    ]
    # `self` is not an input (the spec skips it, as with the Python wrapper).
    method_inputs = [e["inputs"] for e in memory.events if e["model"] == "method"]
    assert method_inputs == [{"rows": [{"value": 2}]}] * 2


def test_a_copied_module_keeps_its_monitored_forward(memory: MemoryTransport) -> None:
    torch = pytest.importorskip("torch")
    module = monitor.wrap(torch.nn.Linear(2, 1), model="linear")
    twin = copy.deepcopy(module)  # as model registries and EMA copies do
    assert copy.copy(module.forward) is module.forward
    twin(torch.zeros(1, 2))
    assert flush(5)
    assert [event["model"] for event in memory.events] == ["linear"]


def test_calls_under_cuda_timing_go_to_the_python_wrapper(memory: MemoryTransport) -> None:
    """With CUDA in use the C wrapper hands the whole call over (the fallback records it)."""
    handed: list[tuple[Any, ...]] = []

    def predict(x, *, y=0):
        return x + y

    spec = monitor(model="cuda")(predict).__inferloop_spec__

    def fallback(*args: Any, **kwargs: Any) -> Any:
        handed.append((args, kwargs))
        return predict(*args, **kwargs)

    wrapper = _c_wrapper(predict, spec, fallback)
    assert wrapper(1, y=2) == 3 and handed == []
    _state.emitter.cuda_active = True
    assert wrapper(1, y=2) == 3
    assert handed == [((1,), {"y": 2})]
    _state.emitter.cuda_active = False
    assert flush(5)
    assert len(memory.events) == 1  # the fallback here does not record: only the C call did


def test_the_c_wrapper_keeps_no_reference_to_what_it_recorded(memory: MemoryTransport) -> None:
    class Payload:
        pass

    class Refused(ValueError):  # a class of our own: built-in exceptions take no weakref
        pass

    @monitor(model="refs")
    def predict(payload):
        return payload

    @monitor(model="refs")
    def fail(payload):
        raise Refused("bad")

    payload = Payload()
    spec = predict.__inferloop_spec__
    baseline = sys.getrefcount(payload), sys.getrefcount(spec)
    errors = []
    for _ in range(2_000):
        predict(payload)
        try:
            fail(payload)
        except Refused as error:
            errors.append(weakref.ref(error))
    assert flush(10)
    gc.collect()
    assert (sys.getrefcount(payload), sys.getrefcount(spec)) == baseline
    assert all(ref() is None for ref in errors)  # every exception (and its frames) freed
    assert stats()["sent"] == 4_000  # every call delivered, none dropped


# ------------------------------------------------------------------ dict_columns

_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),  # some beyond 64 bits
    st.floats(),  # NaN and the infinities included
    st.text(max_size=300),  # some over the 256-character cap
    st.builds(lambda v: type("Sub", (float,), {})(v), st.floats(width=16)),  # a float subclass
    st.lists(st.integers(), max_size=1),  # not a scalar at all
)
_KEYS = st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4, unique=True)


@st.composite
def _dict_slices(draw: Any) -> list[Any]:
    keys = draw(_KEYS)
    rows = draw(
        st.lists(st.fixed_dictionaries({key: _VALUE for key in keys}), min_size=1, max_size=8)
    )
    if draw(st.booleans()):  # now and then a row that does not match the first
        other = draw(st.dictionaries(st.sampled_from(["a", "b", "c", "e"]), _VALUE, max_size=4))
        rows.insert(draw(st.integers(0, len(rows))), other)
    return rows


def _same(left: Any, right: Any) -> bool:
    """Equal, NaN equal to NaN and types equal too (1 and 1.0 and True are not the same)."""
    if left is None or right is None:
        return left is right
    names, columns = left
    other_names, other_columns = right
    if names != other_names or len(columns) != len(other_columns):
        return False
    for column, other in zip(columns, other_columns, strict=True):
        for a, b in zip(list(column), list(other), strict=True):
            if type(a) is not type(b):
                return False
            if not (a == b or (type(a) is float and math.isnan(a) and math.isnan(b))):
                return False
    return True


@pytest.mark.parametrize("nan_as_null", [True, False])
@settings(max_examples=300, deadline=None)
@given(rows=_dict_slices())
def test_dict_columns_agrees_with_the_python_passes(rows: list[Any], nan_as_null: bool) -> None:
    builder = _columns.ColumnBuilder(
        emitter_id="0" * 12,
        environment="test",
        start_base_ns=0,
        payload_max_bytes=1 << 20,
        take_seqs=lambda count: 0,
        enabled=True,
    )
    kinds = (bool, type(None), float) if nan_as_null else (bool, type(None))
    with pytest.MonkeyPatch.context() as patch:
        # The encoder decides whether NaN may stay a float (orjson) or must become None.
        patch.setattr(_columns, "_ENCODER_WRITES_NAN_AS_NULL", nan_as_null)
        patch.setattr(_columns, "_AS_THEY_ARE", frozenset(kinds))
        patch.setattr(_columns, "use_native", False)
        expected = builder._values(rows, ("value",))
        keys = tuple(rows[0])
        actual = dict_columns(rows, keys, nan_as_null, _columns.STR_MAX)
    assert _same(None if actual is None else (keys, actual), expected)


def test_dict_columns_rejects_what_is_not_a_slice_of_dicts() -> None:
    assert dict_columns([{"a": 1}, [("a", 1)]], ("a",), True, 256) is None
    assert dict_columns([{"a": 1}, {"a": 1, "b": 2}], ("a",), True, 256) is None
    assert dict_columns([{"a": 1.5}, {"a": 2}], ("a",), True, 256) == [[1.5, 2]]
    assert dict_columns([], ("a",), True, 256) == [[]]
    with pytest.raises(TypeError):
        dict_columns([{"a": 1}], ["a"], True, 256)  # keys must be a tuple


# ------------------------------------------------------------------ record_columns

record_columns = _columns.record_columns


def _record(spec: Any, args: tuple[Any, ...], **fields: Any) -> tuple[Any, ...]:
    values = {"error": None, "kwargs": NO_KWARGS, "result": 0.5, "prediction": 7, "extras": None}
    values.update(fields)
    return (spec, 1, 2, values["error"], args, values["kwargs"], values["result"],
            values["prediction"], values["extras"])  # fmt: skip


def test_record_columns_transposes_a_uniform_slice_like_zip() -> None:
    spec = object()
    records = [_record(spec, ("self", i, str(i)), result=i * 2, prediction=i) for i in range(5)]
    started, latency, arguments, results, predictions = record_columns(
        records, NO_KWARGS, 1, True, 256
    )[:5]
    fields = list(zip(*records, strict=True))
    assert (started, latency, results, predictions) == tuple(list(fields[i]) for i in (1, 2, 6, 7))
    after_self = [record[4][1:] for record in records]
    assert arguments == [list(column) for column in zip(*after_self, strict=True)]
    # An empty dict of keywords that is not the shared one counts as none (as == does).
    assert record_columns([_record(spec, (1,), kwargs={})], NO_KWARGS, 0, True, 256) is not None


@pytest.mark.parametrize(
    "odd_one",
    [
        lambda spec: _record(object(), (1, 2)),  # another callable
        lambda spec: _record(spec, (1, 2), error=ValueError()),
        lambda spec: _record(spec, (1, 2), kwargs={"b": 2}),
        lambda spec: _record(spec, (1, 2), extras=object()),
        lambda spec: _record(spec, (1,)),  # fewer arguments
        lambda spec: CallRecord(*_record(spec, (1, 2))),  # not a plain tuple
        lambda spec: (spec, 1, 2),  # not a record's length (a label has 4 fields)
    ],
)
def test_record_columns_leaves_any_other_slice_to_the_python_passes(odd_one: Any) -> None:
    spec = object()
    records = [_record(spec, (1, 2)), _record(spec, (3, 4))]
    assert record_columns(records, NO_KWARGS, 0, True, 256) is not None
    records.insert(1, odd_one(spec))
    assert record_columns(records, NO_KWARGS, 0, True, 256) is None


@pytest.mark.parametrize("nan_as_null", [True, False])
@settings(max_examples=200, deadline=None)
@given(arguments=st.lists(st.tuples(_VALUE, _VALUE), min_size=1, max_size=6), result=_VALUE)
def test_record_columns_calls_values_plain_only_where_the_python_checks_keep_them(
    arguments: list[tuple[Any, Any]], result: Any, nan_as_null: bool
) -> None:
    """`arguments_plain` / `results_plain` let the Python passes skip their look: each may
    be True only where `_plain_column` would keep the column exactly as it is."""
    spec = object()
    records = [_record(spec, args, result=result) for args in arguments]
    *_, arguments_plain, results_plain = record_columns(records, NO_KWARGS, 0, nan_as_null, 256)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_columns, "_ENCODER_WRITES_NAN_AS_NULL", nan_as_null)
        for flag, columns in (
            (arguments_plain, list(zip(*arguments, strict=True))),
            (results_plain, [[result] * len(records)]),
        ):
            kept = [_columns._plain_column(column) for column in columns]
            as_they_are = all(
                checked is not None and _same((("x",), [checked]), (("x",), [column]))
                for checked, column in zip(kept, columns, strict=True)
            )
            assert flag == as_they_are


def test_the_c_wrapper_refuses_a_slot_type_without_its_two_slots() -> None:
    class Loose:  # no __slots__: the wrapper could not write `prediction` in place
        pass

    with pytest.raises(TypeError, match="__slots__"):
        _c_wrapper(len, object(), len, slot_type=Loose)


def test_the_c_wrapper_follows_a_new_emitter_after_reconfiguration() -> None:
    """It caches what it reads off an emitter: a configure() after shutdown() must win."""

    @monitor(model="again")
    def predict(x):
        return x

    first = configure(transport="memory", flush_interval_s=0.01)
    predict(1)
    assert flush(5)
    shutdown(timeout=1.0)
    predict(2)  # unconfigured: not recorded anywhere
    second = configure(transport="memory", flush_interval_s=0.01)
    predict(3)
    assert flush(5)
    assert [e["inputs"]["rows"][0]["value"] for e in first.events] == [1]
    assert [e["inputs"]["rows"][0]["value"] for e in second.events] == [3]
