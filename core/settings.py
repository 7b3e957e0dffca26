"""Platform settings, read once at start from arguments or `INFERLOOP_*` variables.

One class covers the services (server, collector, analyzer, feedback) because they
share the store and the transport; the SDK reads its own variables with the standard
library only (see `inferloop.sdk`), using the same names for what they share.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path(".inferloop")


class Settings(BaseSettings):
    """Everything a platform process needs to know, validated at start."""

    model_config = SettingsConfigDict(env_prefix="INFERLOOP_", extra="ignore")

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
        default=None, description="If set, ingest and API calls must send it as a bearer token."
    )
    environment: str = Field(
        default="development", description="development | production; production refuses unsafe defaults."
    )
    raw_event_retention_days: float = Field(
        default=14.0, gt=0, description="Raw events older than this are pruned; rollups stay."
    )

    @field_validator("environment")
    @classmethod
    def _known_environment(cls, value: str) -> str:
        if value not in {"development", "production"}:
            raise ValueError("environment must be 'development' or 'production'")
        return value

    def resolved_database_url(self) -> str:
        """The store URL: the configured one, or the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'inferloop.db').resolve()}"

    def to_environment(self) -> dict[str, str]:
        """These settings as `INFERLOOP_*` variables, to start another platform process with them."""
        return {
            f"INFERLOOP_{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    def check_safe_for_production(self) -> None:
        """Refuse to start a production deployment that is open to anyone."""
        if self.environment == "production" and not self.api_key:
            raise ValueError("INFERLOOP_API_KEY must be set when INFERLOOP_ENVIRONMENT=production")
