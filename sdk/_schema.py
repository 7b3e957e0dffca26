"""The published JSON Schemas of a batch (event contract v1 and v2), shipped as package data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema") / "batch-v1.json"
COLUMNAR_SCHEMA_PATH = Path(__file__).with_name("schema") / "batch-v2.json"


def load_schema(version: int = 1) -> dict[str, Any]:
    """The batch schema (draft 2020-12) that the collector validates incoming batches with:
    version 1 (events one by one) or 2 (columnar, what the SDK sends for common calls)."""
    path = COLUMNAR_SCHEMA_PATH if version == 2 else SCHEMA_PATH
    return json.loads(path.read_text(encoding="utf-8"))
