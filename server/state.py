"""What the app's routes share: settings, the engine, the ingest pipeline, metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy.engine import Engine

from inferloop.settings import Settings

from .auth import RecentVerdicts


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    registry: CollectorRegistry
    pipeline: Any
    verdicts: RecentVerdicts = field(default_factory=RecentVerdicts)
