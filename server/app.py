"""The FastAPI app factory: no globals, collaborators passed in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from inferloop.collector import IngestMetrics, IngestPipeline
from inferloop.settings import Settings
from inferloop.store import create_engine_for

from . import (
    routes_alert_rules,
    routes_alerts,
    routes_dead_letters,
    routes_drift,
    routes_feedback,
    routes_findings,
    routes_health,
    routes_ingest,
    routes_labels,
    routes_metrics,
    routes_models,
    routes_references,
    routes_ui,
)
from .deps import ReadKeyDep
from .lifecycle import enter_workers
from .limits import BodyLimit
from .openapi import openapi_with_problems
from .problems import install_problem_handlers
from .state import AppState


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    background: Sequence[Any] = (),
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the server app.

    ``engine`` defaults to one made from ``settings`` (and disposed at shutdown;
    a passed-in engine belongs to the caller). ``background`` workers are async
    context managers or objects with ``start()``/``stop()`` (sync or async);
    they start in order when the app starts and stop in reverse order.
    The schema must already be migrated (``inferloop.store.migrate.upgrade``).
    """

    settings.check_safe_for_production()
    owns_engine = engine is None
    engine = engine or create_engine_for(settings.resolved_database_url())
    registry = registry or CollectorRegistry()
    pipeline = IngestPipeline(
        engine,
        metrics=IngestMetrics(registry),
        max_message_bytes=settings.collector.max_message_bytes,
    )
    state = AppState(settings=settings, engine=engine, registry=registry, pipeline=pipeline)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if owns_engine:
                stack.callback(engine.dispose)
            await enter_workers(stack, background)
            yield

    # No Swagger UI or ReDoc: both load their scripts from a CDN. The document itself is
    # served below, behind the read scope like every other GET.
    app = FastAPI(
        title="Inferloop", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None
    )
    app.state.inferloop = state
    app.include_router(routes_health.router)
    app.include_router(routes_ingest.router)
    app.include_router(routes_labels.router)
    app.include_router(routes_models.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_dead_letters.router)
    app.include_router(routes_findings.router)
    app.include_router(routes_drift.router)
    app.include_router(routes_references.router)
    app.include_router(routes_alerts.router)
    app.include_router(routes_alert_rules.router)
    for router in routes_feedback.routers:
        app.include_router(router)
    app.include_router(routes_ui.router)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[ReadKeyDep])
    def openapi_document() -> JSONResponse:
        return JSONResponse(openapi_with_problems(app))

    app.openapi = lambda: openapi_with_problems(app)  # type: ignore[method-assign]
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, limit_for=_body_limits(settings))
    return app


def _body_limits(settings: Settings):
    """Most bodies are bounded like one ingest message; a reference dataset may be larger."""
    default = settings.collector.max_message_bytes

    def limit_for(path: str) -> int:
        if path.endswith("/reference"):
            return max(default, routes_references.MAX_REFERENCE_BYTES)
        return default

    return limit_for
