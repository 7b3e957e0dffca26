"""The published JSON Schemas of a batch, generated from the collector's msgspec types.

The SDK ships the generated files (``sdk/schema/batch-v1.json``, ``batch-v2.json``) as
package data for other readers of the topic; a test fails when one differs from what
this module generates. Regenerate after changing ``contract.py``::

    python -m inferloop.collector.contract_schema > sdk/schema/batch-v1.json
    python -m inferloop.collector.contract_schema 2 > sdk/schema/batch-v2.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

import msgspec

from .contract import (
    COLUMNAR_SCHEMA_VERSION,
    EVENT_ARRAYS,
    MAX_PAYLOAD_BYTES,
    SCHEMA_VERSION,
    Batch,
    ColumnarBatch,
)
from .pipeline import DEFAULT_MAX_MESSAGE_BYTES

SCHEMA_ID = f"https://inferloop.dev/schema/batch-v{SCHEMA_VERSION}.json"
REGENERATE = "python -m inferloop.collector.contract_schema > sdk/schema/batch-v1.json"
COLUMNAR_SCHEMA_ID = f"https://inferloop.dev/schema/batch-v{COLUMNAR_SCHEMA_VERSION}.json"
REGENERATE_COLUMNAR = "python -m inferloop.collector.contract_schema 2 > sdk/schema/batch-v2.json"


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


def columnar_batch_schema() -> dict[str, Any]:
    """The columnar batch contract (v2) as a JSON Schema (draft 2020-12) document."""
    (_,), definitions = msgspec.json.schema_components(
        [ColumnarBatch], ref_template="#/$defs/{name}"
    )
    root = definitions.pop(ColumnarBatch.__name__)
    root.pop("title", None)
    description = root.pop("description", "")
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": COLUMNAR_SCHEMA_ID,
        "title": f"Inferloop columnar event batch, contract version {COLUMNAR_SCHEMA_VERSION}",
        "description": (
            "One Kafka message value or one POST /v1/events body. See docs/event-contract.md."
            " " + " ".join(description.split()) + " The Kafka key is the model."
            f" Generated from inferloop.collector.contract ({REGENERATE_COLUMNAR}); do not"
            f" edit. Beyond this schema the collector checks that {EVENT_ARRAYS} have one"
            " item per event, that start_base_ns + start_ns[i] fits 64 bits, and sizes in"
            f" bytes: a message of at most {DEFAULT_MAX_MESSAGE_BYTES} bytes (by default),"
            f" each event's inputs and outputs of at most {MAX_PAYLOAD_BYTES} bytes of JSON."
        ),
        **root,
    }
    if definitions:
        document["$defs"] = definitions
    return document


def schema_text(version: int = SCHEMA_VERSION) -> str:
    """The schema of contract ``version`` as the committed file holds it."""
    document = columnar_batch_schema() if version == COLUMNAR_SCHEMA_VERSION else batch_schema()
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    version = int(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_VERSION
    sys.stdout.write(schema_text(version))


if __name__ == "__main__":
    main()
