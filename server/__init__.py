"""The HTTP server: FastAPI app factory, ingest endpoint and model-health API."""

from .app import create_app
from .lifecycle import StartStop

__all__ = ["StartStop", "create_app"]
