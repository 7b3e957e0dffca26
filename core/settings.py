"""Platform settings: one tree, read once at start from arguments or `INFERLOOP_*` variables.

What several services share (the store, the Kafka topics, the server's address and
key) sits at the top; each service's own knobs sit in a nested section, reached
from the environment with a double underscore: `INFERLOOP_ANALYZER__WINDOW_S=300`.
The CLI derives its flags from these fields (`inferloop.app.flags`) and the
configuration reference in `docs/configuration.md` is generated from them, so
help, defaults and docs cannot drift apart. The SDK reads its own variables with
the standard library only (see `inferloop.sdk`), using the same names for what
they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "INFERLOOP_"
NESTED_DELIMITER = "__"
DEFAULT_DATA_DIR = Path(".inferloop")
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG")


class _Section(BaseModel):
    """A nested section: unknown keys are errors, so a misspelt variable is caught."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CollectorSettings(_Section):
    """Tuning of `inferloop collector`, one member of the Kafka consumer group."""

    client_id: str = Field(
        default="inferloop-collector", description="Kafka client id, shown in broker logs."
    )
    max_poll_records: int = Field(
        default=200, ge=1, description="Messages (SDK batches) taken per poll."
    )
    session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        description="A member silent this long leaves the group and its partitions move.",
    )
    check_crcs: bool | None = Field(
        default=None,
        description="Verify record checksums; default: only when the C crc32c package is present.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve Prometheus metrics (/metrics) and probes (/readyz, /healthz) here.",
    )
    max_message_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Larger messages are dead-lettered."
    )


class AnalyzerSettings(_Section):
    """What an analyzer run looks at and how strict it is."""

    interval_s: float = Field(default=60.0, gt=0, description="Seconds between runs.")
    window_s: float = Field(
        default=900.0, gt=0, description="The current window: the last this-many seconds."
    )
    baseline: Literal["first_events", "previous_period"] = Field(
        default="first_events",
        description="Drift reference when no dataset is pinned: a version's first events, "
        "or the period just before the window.",
    )
    baseline_events: int = Field(
        default=2000, ge=1, description="Events in a `first_events` reference."
    )
    min_rows: int = Field(
        default=200, ge=1, description="Fewer feature rows in a window: drift is not evaluated."
    )
    max_events: int = Field(default=200_000, ge=1, description="Events read per window, at most.")
    confirm_runs: int = Field(
        default=2, ge=1, description="Runs that must see a finding before it opens."
    )
    confirm_after_s: float | None = Field(
        default=None,
        ge=0,
        description="A pending finding opens only once seen this long (default: one window).",
    )
    lease_s: float = Field(
        default=300.0, gt=0, description="How long a worker holds a model it is analysing."
    )
    change_point_method: Literal["cusum", "page_hinkley"] = Field(
        default="cusum", description="Detector of sustained shifts in per-minute series."
    )
    change_point_minutes: int = Field(
        default=360, ge=1, description="Minutes of history the change-point detector reads."
    )
    change_point_warmup: int = Field(
        default=120, ge=1, description="Leading minutes that calibrate the detector."
    )
    prediction_key: str | None = Field(
        default=None, description="Output field holding the prediction (default: guessed)."
    )
    render_reports: bool = Field(
        default=True, description="Write an Evidently HTML report for each drift finding."
    )


class AlertsSettings(_Section):
    """Where alerting reads its rules and receivers, and how the dispatcher paces itself."""

    config_file: Path | None = Field(
        default=None,
        description="YAML file of rules, routes, inhibitions and receivers; unset: no alerting.",
    )
    dashboard_url: str | None = Field(
        default=None, description="Base URL of the dashboard, linked from every message."
    )
    evaluate_interval_s: float = Field(
        default=1.0, gt=0, description="Seconds between passes over the findings."
    )
    dispatch_interval_s: float = Field(
        default=0.5, gt=0, description="Seconds the dispatcher sleeps when nothing is due."
    )
    lease_s: float = Field(
        default=60.0, gt=0, description="How long a dispatcher holds a notification it sends."
    )
    send_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of one HTTP POST or SMTP session."
    )


NO_REQUEST_DESTINATION = (
    "no request destination is configured: set INFERLOOP_FEEDBACK__WEBHOOK_URL "
    "(+ _SECRET), INFERLOOP_FEEDBACK__KAFKA_TOPIC or INFERLOOP_FEEDBACK__COMMAND"
)
"""What the API and the CLI answer when a request would reach nobody."""


class FeedbackSettings(_Section):
    """The guarded rollout's pace, and where redeploy and rollback requests go."""

    check_interval_s: float = Field(
        default=300.0, gt=0, description="Length of each rollout check's window of traffic."
    )
    baseline_s: float = Field(
        default=3600.0,
        gt=0,
        description="Live traffic before a canary that fixes the slow-call threshold (p95).",
    )
    grace_s: float = Field(
        default=30.0, ge=0, description="Wait after a window closes, for late events."
    )
    poll_s: float = Field(default=10.0, gt=0, description="Seconds between rollout passes.")
    webhook_url: str | None = Field(
        default=None, description="POST each request (a signed CloudEvent) here."
    )
    webhook_secret: str | None = Field(
        default=None, description="Standard Webhooks secret (whsec_…) signing those POSTs."
    )
    kafka_topic: str | None = Field(
        default=None, description="Also produce each request to this Kafka topic."
    )
    command: str | None = Field(
        default=None, description="Also run this command with each request as JSON on stdin."
    )

    promote_after_calls: int = Field(
        default=10_000,
        ge=500,
        description="Calls per arm after which a canary with no regression found is "
        "promoted (the guard's budget; fewer calls, less power to catch small regressions).",
    )
    send_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Longest wait for one request's destination (a command runs this long).",
    )
    max_checks: int = Field(
        default=144,
        gt=0,
        description="Checks a canary may stay inconclusive before on_inconclusive applies.",
    )
    on_inconclusive: Literal["pause", "extend", "rollback"] = Field(
        default="pause",
        description="Then: pause (stay in canary, warn once), extend (keep checking) or rollback.",
    )
    snapshots_dir: Path | None = Field(
        default=None,
        description="Where labeled snapshots are written and listed; default: data_dir/snapshots.",
    )
    retrain_kinds: str = Field(
        default="*drift,quality_drop",
        description="Finding kinds (comma-separated shell patterns) that ask for a retrain.",
    )
    retrain_min_severity: Literal["info", "warning", "critical"] = Field(
        default="critical", description="The least severity of such a finding that counts."
    )
    retrain_min_new_labels: int = Field(
        default=500, ge=0, description="Labeled rows gained since the last retrain request."
    )
    retrain_cooldown_s: float = Field(
        default=86_400.0, ge=0, description="Least time between two retrain requests of a model."
    )

    def destination_names(self) -> list[str]:
        """The request destinations these settings name (each gets a sender in `inferloop up`
        and `inferloop feedback`); requests are queued for exactly these."""
        named = (
            ("webhook", self.webhook_url),
            ("kafka", self.kafka_topic),
            ("command", self.command),
        )
        return [name for name, value in named if value is not None]

    @model_validator(mode="after")
    def _signed_webhook(self) -> FeedbackSettings:
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("feedback webhook_url and webhook_secret go together")
        return self


class AuthSettings(_Section):
    """When the API asks for a key. Keys themselves are made with `inferloop keys create`."""

    required: bool | None = Field(
        default=None,
        description="Require a key on every endpoint but /healthz and /readyz; default: "
        "required once any key exists, when INFERLOOP_API_KEY is set, or when the server "
        "listens beyond loopback.",
    )


class Settings(BaseSettings):
    """Everything a platform process needs to know, validated at start."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED_DELIMITER, extra="ignore"
    )

    data_dir: Path = Field(
        default=DEFAULT_DATA_DIR,
        description="Where the embedded deployment keeps its SQLite file, reports and datasets.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the store; default: a SQLite file (WAL) in data_dir.",
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated Kafka brokers."
    )
    kafka_topic: str = Field(default="inferloop.events", description="Topic of inference events.")
    kafka_labels_topic: str = Field(
        default="inferloop.labels",
        description="Topic of label records, shaped as in POST /v1/labels; collectors read it too.",
    )
    kafka_dead_letter_topic: str = Field(
        default="inferloop.dead-letters", description="Topic that receives rejected input."
    )
    kafka_group_id: str = Field(
        default="inferloop-collector", description="Consumer group shared by collectors."
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(
        default=8765, ge=0, le=65535, description="Port the server listens on; 0 picks a free one."
    )
    api_key: str | None = Field(
        default=None,
        description="A key with every scope (admin), sent as a bearer token; setting it turns "
        "auth on. Stored keys (`inferloop keys`) are the scoped, revocable alternative.",
    )
    environment: Literal["development", "production"] = Field(
        default="development",
        description="development | production; production refuses unsafe defaults.",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    raw_event_retention_days: float = Field(
        default=14.0,
        gt=0,
        description="Raw events and drift cells older than this are pruned; rollups stay.",
    )
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    analyzer: AnalyzerSettings = Field(default_factory=AnalyzerSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
        return level

    @model_validator(mode="after")
    def _safe_for_production(self) -> Settings:
        self.check_safe_for_production()
        return self

    def resolved_database_url(self) -> str:
        """The store URL: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'inferloop.db').resolve()}"

    def to_environment(self) -> dict[str, str]:
        """These settings as `INFERLOOP_*` variables, to start another platform process with them."""
        return {
            environment_name(path): str(value)
            for path, value in _flatten(self.model_dump())
            if value is not None
        }

    def snapshots_root(self) -> Path:
        """Where snapshots are written by default and listed from."""
        configured = self.feedback.snapshots_dir
        root = configured if configured is not None else self.data_dir / "snapshots"
        return root.resolve()  # requests carry it to processes in other directories

    def check_safe_for_production(self) -> None:
        """Refuse a production deployment that is open to anyone (also run at validation)."""
        if self.environment != "production":
            return
        if self.auth.required is False:
            raise ValueError(
                "INFERLOOP_AUTH__REQUIRED=false is refused when INFERLOOP_ENVIRONMENT=production"
            )
        if not self.api_key and self.auth.required is not True:
            raise ValueError(
                "INFERLOOP_API_KEY must be set (or INFERLOOP_AUTH__REQUIRED=true, with keys from "
                "`inferloop keys create`) when INFERLOOP_ENVIRONMENT=production"
            )


def environment_name(path: str) -> str:
    """The variable of a dotted settings path: `analyzer.window_s` → `INFERLOOP_ANALYZER__WINDOW_S`."""
    return ENV_PREFIX + path.replace(".", NESTED_DELIMITER).upper()


def _flatten(values: dict, prefix: str = ""):
    for name, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value
