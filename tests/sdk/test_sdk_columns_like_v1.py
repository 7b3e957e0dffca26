"""Columns (contract v2) and v1 events of the same calls read back alike, whatever the values.

The columnar builder takes whole columns as they are when their kinds allow it and falls
back to a look at each value otherwise, or to the v1 path; either way, what reaches the
platform must be what the v1 path alone would have sent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from inferloop.sdk import _columns, _state, configure, flush, monitor, shutdown
from inferloop.sdk._serialize import loads

_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),  # some beyond 64 bits
    st.integers(min_value=-5, max_value=5),
    st.floats(),  # NaN and the infinities included
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=300),  # some over the 256-character cap
    st.lists(st.integers(), max_size=2),  # not a scalar at all
)
_ROWS = st.lists(
    st.fixed_dictionaries({"a": _VALUE, "b": _VALUE, "c": _VALUE}), min_size=1, max_size=12
)


def _read_back(
    rows: list[dict[str, Any]], positional: bool, columns: bool
) -> tuple[list[Any], set[int]]:
    """What the platform reads of these calls, and the contract versions that carried it."""
    transport = configure(transport="memory", flush_interval_s=0.01)
    _state.emitter._columns.enabled = columns  # the v1 path alone when False
    if positional:
        predict = monitor(model="like")(lambda a, b, c: 0.5)
        for row in rows:
            predict(row["a"], row["b"], row["c"])
    else:
        predict = monitor(model="like")(lambda row: 0.5)
        for row in rows:
            predict(row)
    assert flush(5)
    shutdown(1)
    events = [(event["inputs"], event["outputs"], event["status"]) for event in transport.events]
    return events, {loads(raw)["schema_version"] for raw in transport.raw}


@settings(max_examples=60, deadline=None)
@given(rows=_ROWS, positional=st.booleans(), floats_only=st.booleans(), native=st.booleans())
def test_columns_read_back_as_the_v1_path_writes_the_same_calls(
    rows: list[dict[str, Any]], positional: bool, floats_only: bool, native: bool
) -> None:
    """`native`: the columns built by the C passes (`_transpose`) or by the Python ones."""
    _columns.use_native = native
    if floats_only:  # the common case, where the columns are taken as they are
        rows = [
            {k: float(i) if type(v) is not float else v for k, v in r.items()}
            for i, r in enumerate(rows)
        ]
    try:
        columnar, versions = _read_back(rows, positional, columns=True)
        v1_only, v1_versions = _read_back(rows, positional, columns=False)
    finally:
        _columns.use_native = True
    assert columnar == v1_only
    assert len(columnar) == len(rows) and v1_versions == {1}
    if floats_only:
        assert versions == {2}
