"""`inferloop demo` (what `make run` runs): the whole loop on the embedded default, live.

Three servers start in this process: the platform (`inferloop up`: SQLite, HTTP ingest,
analyzer, alerts, feedback, dashboard), the demo model's serving app (FastAPI; its handler
wrapped in `@monitor`, as a team's serving code would be) and a stand-in on-call webhook.
A traffic generator calls the model over HTTP and a labelling team logs the ground truth a
little later. Then the story, compressed into a few minutes:

1. normal traffic fills the dashboard;
2. the inputs drift: a drift finding, and an alert to the on-call;
3. labels show the model getting worse: a quality finding;
4. the platform asks for a retrain with a labelled snapshot; the demo's trainer (the local
   command the platform runs) fits a new build on it and registers it;
5. the redeploy request makes the serving side load the candidate next to live, and the
   guard compares them on the same live traffic;
6. that first build is slow (a profiler left on): rolled back, with an alert; a fixed build,
   retrained by hand, passes and is promoted, and the alert resolves;
7. a summary, with the dashboard pages of each stage.

Every wait has a deadline and says what it waited for; Ctrl-C stops everything cleanly.
"""

from __future__ import annotations

import base64
import logging
import random
import secrets
import shlex
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferloop.settings import Settings
from inferloop.signals import wait_until_set

from .demo_serving import ENVIRONMENT, MODEL


class DemoStopped(Exception):
    """Ctrl-C (or SIGTERM) during a stage."""


class StageTimeout(Exception):
    """A stage did not happen within its deadline; the message says what was missing."""


@dataclass(frozen=True)
class DemoPlan:
    """The demo's pace: one, measured (the whole story in about four minutes on two cores).

    `fast` is for tests: the same story with tighter stage deadlines, so that a stalled
    stage fails the test sooner; `make run` waits longer on a slow machine instead.
    """

    fast: bool = False
    seed: int = 7
    rate: float = 120.0
    normal_traffic_s: float = 16.0
    stage_timeout_s: float = 180.0
    window_s: float = 8.0
    """The analyzer's window and the guard's check interval, compressed from minutes."""

    @classmethod
    def for_speed(cls, fast: bool) -> DemoPlan:
        return cls(fast=True, stage_timeout_s=120.0) if fast else cls()


class Narrator:
    """The terminal side: one line per stage, with the time since the demo started."""

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self._started = time.monotonic()

    def elapsed(self) -> str:
        return f"{time.monotonic() - self._started:5.1f}s"

    def stage(self, number: int, text: str) -> None:
        self.console.print(f"[bold cyan]{number}/7[/] {text}  [dim]{self.elapsed()}[/]")

    def note(self, text: str) -> None:
        self.console.print(f"     {text}")

    def event(self, text: str) -> None:
        """Something another part of the demo did (serving, on-call, trainer)."""
        self.console.print(f"     [magenta]↳ {text}[/]")


def demo_settings(settings: Settings, plan: DemoPlan, *, paths: dict[str, Path]) -> Settings:
    """The user's settings with the demo's store, compressed windows and its receivers."""
    window = plan.window_s
    analyzer = settings.analyzer.model_copy(
        update={
            "interval_s": 2.0,
            "window_s": window * 2,
            "min_rows": 100,
            "confirm_runs": 1,
            "confirm_after_s": 0.0,
        }
    )
    alerts = settings.alerts.model_copy(
        update={
            "config_file": paths["alerting"],
            "evaluate_interval_s": 1.0,
            "dispatch_interval_s": 0.5,
        }
    )
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{paths['database'].resolve()}",
            "analyzer": analyzer,
            "alerts": alerts,
        }
    )


def _feedback_settings(settings: Settings, plan: DemoPlan, *, serving_url, secret, trainer):
    feedback = settings.feedback.model_copy(
        update={
            "check_interval_s": plan.window_s / 2,
            "baseline_s": plan.normal_traffic_s - 2,
            "grace_s": 1.0,
            "poll_s": 1.0,
            "webhook_url": f"{serving_url}/platform/events",
            "webhook_secret": secret,
            "command": trainer,
            "send_timeout_s": 120.0,  # the trainer imports torch and fits a model
            "promote_after_calls": 2_000,  # a few minutes of demo traffic, not hours
            # Retrain on the quality finding (stage 3), once there are labels to learn from.
            "retrain_kinds": "quality_drop",
            "retrain_min_new_labels": 200,
            "retrain_cooldown_s": 3600.0,
        }
    )
    return settings.model_copy(update={"feedback": feedback})


class Demo:
    """The running demo: its servers, its traffic, and the stage waits."""

    def __init__(self, settings: Settings, plan: DemoPlan, stop_event: threading.Event) -> None:
        self.settings = settings
        self.plan = plan
        self.stop_event = stop_event
        self.say = Narrator()
        self.rng = random.Random(plan.seed)
        self._cleanup: list[Callable[[], Any]] = []
        self.links: dict[str, str] = {}

    # --- waiting -------------------------------------------------------------------------

    def pause(self, seconds: float) -> None:
        if self.stop_event.wait(seconds):
            raise DemoStopped

    def wait_for(self, what: str, condition: Callable[[], Any], timeout: float | None = None):
        """Poll `condition` until it returns something truthy; that value is returned."""
        deadline = time.monotonic() + (timeout or self.plan.stage_timeout_s)
        with self.say.console.status(f"waiting for {what}…"):
            while True:
                value = condition()
                if value:
                    return value
                if time.monotonic() > deadline:
                    raise StageTimeout(
                        f"{what} did not happen within {timeout or self.plan.stage_timeout_s:.0f} s"
                    )
                self.pause(0.5)

    # --- setup -----------------------------------------------------------------------------

    def start(self) -> None:
        from inferloop import sdk
        from inferloop.app.embedded import EmbeddedServer, build_platform

        from .demo_model import TRAINING_WORLD, save_build, train_model
        from .demo_oncall import ALERTING_CONFIG, OnCall, create_oncall_app
        from .demo_serving import Deployment, create_serving_app, monitored_build
        from .demo_traffic import LabelDelays, LabelFeed, TrafficGenerator

        data_dir = self.settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        paths = {
            "database": data_dir / "demo.db",
            "alerting": data_dir / "demo-alerting.yaml",
            "builds": data_dir / "builds",
        }
        for stale in (paths["database"], *paths["database"].parent.glob("demo.db-*")):
            stale.unlink(missing_ok=True)
        paths["builds"].mkdir(exist_ok=True)
        for build in paths["builds"].glob("*.pt"):  # builds of an earlier run
            build.unlink()
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()

        # The receivers first: the platform's config names their URLs.
        self.oncall = OnCall(on_page=self.say.event)
        oncall_server = EmbeddedServer(create_oncall_app(self.oncall, secret=secret), port=0)
        oncall_server.start()
        self._cleanup.append(oncall_server.stop)
        paths["alerting"].write_text(
            ALERTING_CONFIG.format(url=f"{oncall_server.url}/alerts", secret=secret)
        )

        self.say.stage(1, "Training the demo model (a small torch MLP) and starting servers…")
        model, self.training_rows = train_model(self.rng)
        sdk_settings = demo_settings(self.settings, self.plan, paths=paths)
        first_build = save_build(model, data_dir / "builds" / "build-0.pt")
        self.deployment = Deployment(
            monitored_build(1, _load(first_build)), on_change=self.say.event
        )
        serving = EmbeddedServer(create_serving_app(self.deployment, webhook_secret=secret), port=0)
        serving.start()
        self._cleanup.append(serving.stop)
        self.serving_url = serving.url

        # The platform: the trainer is the command its feedback worker runs for each request.
        port = self.settings.port or _free_port(self.settings.host)
        trainer = shlex.join(
            [
                sys.executable,
                "-m",
                "inferloop.app.demo_trainer",
                "--platform",
                f"http://{self.settings.host}:{port}",
                "--builds",
                str(paths["builds"]),
                "--slow-builds",
                "1",
                "--environment",
                ENVIRONMENT,
            ]
        )
        platform_settings = _feedback_settings(
            sdk_settings, self.plan, serving_url=self.serving_url, secret=secret, trainer=trainer
        )
        self.platform_settings = platform_settings
        self.app, self.engine = build_platform(platform_settings)
        platform = EmbeddedServer(self.app, host=self.settings.host, port=port)
        platform.start()
        self._cleanup.append(self.engine.dispose)
        self._cleanup.append(platform.stop)
        self.url = platform.url
        self.say.note(f"[bold]dashboard: {self.url}/ui[/]   API: {self.url}/openapi.json")
        self.say.note(
            f"model served at {self.serving_url}/predict   on-call at {oncall_server.url}"
        )

        self._register_first_version(first_build)
        sdk.configure(transport="http", endpoint=self.url)
        self._cleanup.append(lambda: sdk.shutdown(timeout=5))
        self.labels = LabelFeed(LabelDelays(), random.Random(self.plan.seed + 1))
        self.labels.start()
        self._cleanup.append(self.labels.stop)
        self.traffic = TrafficGenerator(
            self.serving_url,
            TRAINING_WORLD,
            random.Random(self.plan.seed + 2),
            self.labels,
            rate=self.plan.rate,
        )

    def _register_first_version(self, artifact: str) -> None:
        import polars as pl

        from inferloop.analyzer import register_reference
        from inferloop.feedback import VersionState, move_version, register_version

        now = time.time_ns()
        with self.engine.begin() as connection:
            register_version(connection, MODEL, artifact_uri=artifact, who="demo", now_ns=now)
            for state in (VersionState.CANARY, VersionState.LIVE):
                move_version(
                    connection,
                    MODEL,
                    1,
                    state,
                    environment=ENVIRONMENT,
                    who="demo",
                    why="the first version, trained on the training data",
                    now_ns=now,
                )
        register_reference(
            self.engine,
            self.settings.data_dir,
            MODEL,
            pl.DataFrame(self.training_rows),
            name="training data",
        )

    def stop(self) -> None:
        traffic = getattr(self, "traffic", None)
        if traffic is not None:
            traffic.stop()
        for step in reversed(self._cleanup):
            try:
                step()
            except Exception as error:  # keep stopping the rest
                self.say.note(f"[yellow]while stopping: {error}[/]")
        self._cleanup.clear()


def _free_port(host: str) -> int:
    """A port free now, so the trainer's command line can name the platform's URL before
    the platform starts (the command is part of its settings)."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _load(artifact: str):
    from .demo_model import load_build

    return load_build(artifact)


def run_demo(
    settings: Settings, *, plan: DemoPlan, stop_event: threading.Event, keep_serving: bool
) -> int:
    """Run the stages; 0 when the whole loop happened, 1 when a stage timed out."""
    from .demo_stages import run_stages

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    demo = Demo(settings, plan, stop_event)
    try:
        demo.start()
        run_stages(demo)
        if keep_serving:
            demo.say.note(f"The platform keeps running at {demo.url}/ui (Ctrl-C stops it).")
            wait_until_set(stop_event)
        return 0
    except StageTimeout as error:
        demo.say.console.print(f"[bold red]demo stopped: {error}[/]")
        return 1
    except (DemoStopped, KeyboardInterrupt):
        demo.say.console.print("[yellow]stopped[/]")
        return 130
    finally:
        demo.stop()


def main_demo(
    settings: Settings, *, fast: bool, keep_serving: bool, stop_event: threading.Event
) -> int:
    started = time.monotonic()
    code = run_demo(
        settings, plan=DemoPlan.for_speed(fast), stop_event=stop_event, keep_serving=keep_serving
    )
    print(f"demo finished in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return code
