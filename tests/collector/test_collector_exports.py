"""Public names stay honest: everything in ``__all__`` exists (httpx's habit)."""

import pytest

import inferloop.collector
import inferloop.server
import inferloop.store


@pytest.mark.parametrize("module", [inferloop.collector, inferloop.store, inferloop.server])
def test_every_exported_name_exists(module):
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_collector_entry_point_is_callable():
    assert callable(inferloop.collector.run_collector)
