"""`_columnar`'s C calls hand back (None) whatever they cannot derive exactly.

Where they can, tests/contract/test_contract_columnar.py compares them with the Python
passes value for value; here, the inputs that must send the collector down the Python
path (which says what is wrong, if anything is) instead of into a wrong row.
"""

from __future__ import annotations

import sys

import msgspec
import pytest

from inferloop.collector import columnar_values

_columnar = columnar_values._columnar
pytestmark = pytest.mark.skipif(
    _columnar is None and not sys.platform.startswith("linux"),
    reason="collector/_columnar.c was not built here (no C compiler); on Linux it must be",
)
MIDDLE = b"7abc80000001"


@pytest.mark.parametrize(
    "column",
    [
        b"[1,2]",  # one item short
        b"[1,2,3,4]",  # one too many
        b"[1,2,]",  # a trailing comma
        b"1,2,3",  # not an array
        b'[1,"2,3]',  # a string left open
        b'[1,"2\\",3]',  # ... whose last quote is escaped
        b'[1,"2"3,4]',  # something after a string but a comma
        b"[]",
        b"[",
    ],
)
def test_a_column_that_does_not_hold_count_items_is_handed_back(column):
    assert _columnar.payloads([b"<", b"|", b">"], [b"[0,0,0]", column], 3) is None


def test_items_are_cut_at_top_level_commas_only():
    columns = [['x,"y"', "\\", ""], [1.5, None, True], ["é", "\n", ","]]
    parts = [b"(", b";", b";", b")"]
    built = _columnar.payloads(parts, [msgspec.json.encode(c) for c in columns], 3)
    assert built == [
        b"(" + b";".join(msgspec.json.encode(column[i]) for column in columns) + b")"
        for i in range(3)
    ]


def test_payloads_of_no_events_and_of_no_columns():
    assert _columnar.payloads([b"{}"], [], 2) == [b"{}", b"{}"]
    assert _columnar.payloads([b"<", b">"], [b"[]"], 0) == []


@pytest.mark.parametrize(
    ("starts", "seqs"),
    [
        ([2**63], [1]),  # past int64
        ([1.0], [1]),  # not an int
        ([1], [True]),  # a bool is not a sequence number
        ([1, 2], [1]),  # lengths differ
    ],
)
def test_event_ids_of_values_off_the_contract_are_handed_back(starts, seqs):
    assert _columnar.event_ids(MIDDLE, starts, seqs) is None


@pytest.mark.parametrize(
    ("prefix", "refs"),
    [("emitter", [-1]), ("emitter", [2**63]), ("emitter", [1.0]), ("émetteur", [1])],
)
def test_prediction_ids_off_the_fast_path_are_handed_back(prefix, refs):
    assert _columnar.prediction_ids(prefix, refs) is None


def test_string_refs_come_back_as_the_same_objects_and_nothing_leaks():
    ref = "".join(["prediction", "-7"])  # a str of its own, not interned
    held = sys.getrefcount(ref)
    for _ in range(1000):
        ids = _columnar.prediction_ids("emitter", [ref, 255])
        assert ids[0] is ref and ids[1] == "emitter-ff"
    del ids
    assert sys.getrefcount(ref) == held


def test_wrong_arguments_raise_type_errors():
    with pytest.raises(TypeError):
        _columnar.event_ids(b"short", [1], [1])
    with pytest.raises(TypeError):
        _columnar.prediction_ids(b"emitter", [1])
    with pytest.raises(TypeError):
        _columnar.payloads([b"<", ">"], [b"[1]"], 1)
    with pytest.raises(ValueError):
        _columnar.payloads([b"<"], [b"[1]"], 1)
