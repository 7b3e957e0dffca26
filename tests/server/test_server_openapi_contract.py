"""The API against its own OpenAPI document, fuzzed in-process by schemathesis with every
check it has: for every operation, generated requests (valid and invalid) never get a
500; every answer has a declared status code, content type, headers and a body that
matches its schema; a request that breaks the schema is refused; a 405 lists exactly
the methods the path takes; and so on. The server runs with auth on, as a deployment
would; the key goes with each request.

Two checks are told what our API answers besides their defaults, each for a reason:
- a schema-valid request may still be refused with 422 when a rule the schema cannot
  say is broken (`start_s` before `end_s`, a cursor this list did not return, a CSV
  with no rows, `finding_id` or else both `model` and `version`), or with 400 by
  `POST /v1/events`, whose body is the SDK's envelope, published as JSON Schema
  (`sdk/schema/`) rather than in this document;
- a schema-violating request may be refused with 413 (a labels message over its
  record count is "too large", like a body over its byte limit).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

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
CHECKS = {
    "positive_data_acceptance": {
        "expected-statuses": ["2xx", "400", "401", "403", "404", "409", "422"]
    },
    "negative_data_rejection": {
        "expected-statuses": ["400", "401", "403", "404", "405", "409", "413", "422"]
    },
}
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", app, headers=AUTH, config=SchemathesisConfig.from_dict({"checks": CHECKS})
)


@schema.parametrize()
@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_keeps_its_contract(case) -> None:
    case.call_and_validate(headers=AUTH)
