"""docs/api.md names every operation the OpenAPI document has, and no operation it lacks."""

from __future__ import annotations

import re
from pathlib import Path

from inferloop.server import create_app
from inferloop.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
_OPERATION = re.compile(r"^\| `(GET|POST|PUT|DELETE|PATCH) (/[^`]*)` \|", re.MULTILINE)


def test_the_api_page_lists_exactly_the_documented_operations(migrated_engine):
    spec = create_app(Settings(), engine=migrated_engine).openapi()
    served = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    listed = set(_OPERATION.findall(DOC.read_text()))
    assert sorted(served - listed) == [], "operations missing from docs/api.md"
    assert sorted(listed - served) == [], "docs/api.md lists operations the server lacks"
