"""The OpenAPI document, with every refusal declared as a problem document.

FastAPI declares what routes return and its own 422; this adds what the layers
around the routes answer, so a client (or Schemathesis) can rely on the document:
401 and 403 where a key is asked for, 404 where the path names a resource, 413 where
a body is taken, 422 where anything is validated, and 500 everywhere, each as
`application/problem+json`. A route's own error model (ingest's `rejected`, ...)
stays, as the members a problem of that status may carry besides the standard ones.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from .params import MAX_ID
from .problems import PROBLEM_MEDIA_TYPE, Problem

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_ADDED = {
    "400": "The body is not the JSON (or CSV / Parquet) this endpoint reads.",
    "401": "No API key, or one that is unknown or revoked (see WWW-Authenticate).",
    "403": "The API key lacks the scope this endpoint needs.",
    "404": "Nothing has that identifier.",
    "413": "The request body is larger than the endpoint accepts.",
    "422": "The request is not valid: `errors` names each field by its path.",
    "500": "The server failed; the details are in its log, never in the answer.",
}
_WRITES = frozenset({"post", "put", "patch"})
_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document (built once), every error response declared."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        declare_problems(schema)
        _integer_bounds(schema)
        app.openapi_schema = schema
    return app.openapi_schema


def _integer_bounds(node: Any) -> None:
    """Integer bounds back to integers, in place. FastAPI's OpenAPI models hold `minimum`
    and `maximum` as floats, and 2**63 - 1 (the largest id or nanosecond time the store
    takes) becomes 2**63 as a float: a client reading the document would send one more."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for bound in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                value = node.get(bound)
                if isinstance(value, float):
                    node[bound] = MAX_ID if value >= MAX_ID else int(value)
        for child in node.values():
            _integer_bounds(child)
    elif isinstance(node, list):
        for child in node:
            _integer_bounds(child)


def declare_problems(schema: dict[str, Any]) -> None:
    """Add the problem responses to every operation of `schema`, in place."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(problem.pop("$defs", {}))
    components["Problem"] = problem
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method in _METHODS:
                _declare(path, method, operation)


def _declare(path: str, method: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    wanted = {"500"}
    if operation.get("security"):
        wanted |= {"401", "403"}
    if "{" in path:
        wanted.add("404")
    if method in _WRITES and "requestBody" in operation:
        wanted |= {"400", "413"}
    if operation.get("parameters") or "requestBody" in operation:
        wanted.add("422")
    for code in sorted(wanted):
        responses.setdefault(code, {"description": _ADDED[code]})
    for code, response in responses.items():
        if code.isdigit() and int(code) >= 400:
            _as_problem(response)


def _as_problem(response: dict[str, Any]) -> None:
    own = response.get("content", {}).get("application/json", {}).get("schema")
    if own is None or own.get("$ref", "").endswith("/HTTPValidationError"):
        schema: dict[str, Any] = _PROBLEM_REF
    else:
        # The route's own members, when it adds them; a bare problem when a layer
        # around the route (auth, limits, validation) answered first.
        schema = {"anyOf": [{"allOf": [_PROBLEM_REF, own]}, _PROBLEM_REF]}
    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": schema}}
