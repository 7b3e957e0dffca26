"""The API against its own OpenAPI document, fuzzed in-process by schemathesis: for every
operation, generated requests (valid and invalid) never get a 500, and every answer has a
declared status code, a declared content type and a body that matches its schema. The
server runs with auth on, as a deployment would; the key goes with each request.

Checks left out: "a schema-valid request must succeed" would need every business rule
(an empty range, an unknown cursor) written into the schema, and schemathesis' auth probes
assume routes without keys, which ours are not.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from inferloop.server import create_app
from inferloop.settings import Settings
from inferloop.store import create_engine_for, upgrade

pytestmark = pytest.mark.slow

KEY = "contract-test-admin-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
_DATA = Path(tempfile.mkdtemp(prefix="inferloop-contract-"))
_URL = f"sqlite:///{_DATA / 'contract.db'}"
upgrade(_URL)
app = create_app(
    Settings(database_url=_URL, data_dir=_DATA, api_key=KEY), engine=create_engine_for(_URL)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case) -> None:
    case.call_and_validate(
        headers=AUTH,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
