"""The published JSON Schema of a batch (event contract v1), shipped as package data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).with_name("schema") / "batch-v1.json"


def load_schema() -> dict[str, Any]:
    """The batch schema (draft 2020-12) that the collector validates incoming batches with."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
