"""The analyzer as a service: a named daemon thread that analyses every active model
once per interval. Several workers (threads or processes, one database) share the
models through leases, so each model is analysed by one worker per interval.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import Engine

from inferloop.grains import floor_to_minute_s
from inferloop.periodic import PeriodicThread
from inferloop.settings import Settings
from inferloop.store.events_read import active_models, active_versions
from inferloop.store.leases import claim_model, finish_model

from ._checks import NS
from ._config import AnalyzerConfig
from ._findings import FindingChange
from ._model_run import ModelAnalysis

logger = logging.getLogger(__name__)


class AnalyzerWorker:
    """`start()` / `stop()` a background loop, or call `run_once()` yourself.

    `settings` supplies the data dir (reports go to `<data_dir>/reports`) and, unless
    `config` or `interval_s` are given, the knobs (its `analyzer` section); `clock`
    returns Unix nanoseconds and is the seam tests use to move time.
    """

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        interval_s: float | None = None,
        config: AnalyzerConfig | None = None,
        worker_id: str | None = None,
        clock: Callable[[], int] = time.time_ns,
        reports_dir: str | Path | None = None,
    ) -> None:
        self.config = config or AnalyzerConfig.from_settings(settings.analyzer)
        self.interval_s = self.config.interval_s if interval_s is None else interval_s
        if self.interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.settings = settings
        self.engine = engine
        self.worker_id = worker_id or f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.reports_dir = Path(reports_dir) if reports_dir else Path(settings.data_dir) / "reports"
        self._analysis = ModelAnalysis(engine, self.config, self.reports_dir)
        self._thread = PeriodicThread(
            f"inferloop-analyzer-{self.worker_id}",
            self._round,
            retry_s=self.interval_s,
            logger=logger,
        )
        self.runs = 0
        self.failures = 0

    def run_once(self) -> list[FindingChange]:
        """Analyse each active model this worker can claim; return the finding changes."""
        now_ns = self.clock()
        # models seen in the current or the previous window: one that went quiet is
        # still analysed (its throughput fell) and its findings can resolve
        since_s = floor_to_minute_s(now_ns / NS - 2 * self.config.window_s)
        with self.engine.connect() as connection:
            models = active_models(connection, since_s)
        changes: list[FindingChange] = []
        for model in models:
            if self._thread.stopping:
                break
            with self.engine.begin() as connection:
                claimed = claim_model(
                    connection,
                    model,
                    self.worker_id,
                    now_ns=now_ns,
                    lease_ns=int(self.config.lease_s * NS),
                    interval_ns=int(self.interval_s * NS),
                )
            if not claimed:
                continue
            try:
                with self.engine.connect() as connection:
                    versions = active_versions(connection, model, since_s)
                changes += self._analysis.run(model, versions, now_ns)
            except Exception:
                self.failures += 1
                logger.exception("analysis of model %r failed", model)
            finally:
                with self.engine.begin() as connection:
                    finish_model(connection, model, self.worker_id, now_ns=self.clock())
        self.runs += 1
        return changes

    def _round(self) -> float:
        """One run; the next starts one interval after this one started."""
        started = time.monotonic()
        try:
            self.run_once()
        except Exception:
            self.failures += 1
            raise
        return max(0.0, self.interval_s - (time.monotonic() - started))

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._thread.stop(timeout)
