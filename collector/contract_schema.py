"""The published JSON Schema of a batch, generated from the collector's msgspec types.

The SDK ships the generated file (``sdk/schema/batch-v1.json``) as package data
for other readers of the topic; a test fails when it differs from what this
module generates. Regenerate after changing ``contract.py``::

    python -m inferloop.collector.contract_schema > sdk/schema/batch-v1.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

from .contract import MAX_PAYLOAD_BYTES, SCHEMA_VERSION, Batch
from .pipeline import DEFAULT_MAX_MESSAGE_BYTES

SCHEMA_ID = f"https://inferloop.dev/schema/batch-v{SCHEMA_VERSION}.json"
REGENERATE = "python -m inferloop.collector.contract_schema > sdk/schema/batch-v1.json"


def batch_schema() -> dict[str, Any]:
    """The batch contract as a JSON Schema (draft 2020-12) document."""
    (_,), definitions = msgspec.json.schema_components([Batch], ref_template="#/$defs/{name}")
    root = definitions.pop(Batch.__name__)
    root.pop("title", None)
    root.pop("description", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": f"Inferloop event batch, contract version {SCHEMA_VERSION}",
        "description": (
            "One Kafka message value or one POST /v1/events body. See docs/event-contract.md."
            " A batch holds the events of one model; the Kafka key is that model."
            f" Generated from inferloop.collector.contract ({REGENERATE}); do not edit."
            " Beyond this schema the collector checks sizes in bytes: a message of at most"
            f" {DEFAULT_MAX_MESSAGE_BYTES} bytes (by default), and inputs, outputs and label"
            f" of at most {MAX_PAYLOAD_BYTES} bytes of JSON each."
        ),
        **root,
        "$defs": definitions,
    }


def schema_text() -> str:
    """``batch_schema()`` as the committed file holds it."""
    return json.dumps(batch_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    sys.stdout.write(schema_text())


if __name__ == "__main__":
    main()
