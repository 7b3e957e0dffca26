"""Receiver declarations: a name, a type and that type's settings, validated at start.

Only the declaration lives here; sending is the receivers' job. Every secret (a
Slack webhook URL, a PagerDuty routing key, a webhook signing secret, an SMTP
password) is a `SecretStr`, so it never shows in a repr, a log line or an error,
and each may instead be given as a `*_file` path that the caller reads.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class _Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    send_resolved: bool = True
    """Tell this receiver when a group's alerts clear (a never-notified episode is always told)."""
    max_per_minute: float | None = Field(default=None, gt=0)
    """Client-side rate limit: at most this many messages a minute, one at a time."""

    def _one_of(self, inline: str, file: str) -> None:
        given = [n for n in (inline, file) if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"receiver {self.name!r}: give exactly one of {inline} or {file}")


class SlackReceiver(_Receiver):
    type: Literal["slack"]
    webhook_url: SecretStr | None = None
    webhook_url_file: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _secret(self) -> SlackReceiver:
        self._one_of("webhook_url", "webhook_url_file")
        if self.webhook_url is not None and not self.webhook_url.get_secret_value().startswith(
            "https://"
        ):
            raise ValueError(f"receiver {self.name!r}: webhook_url must be an https:// URL")
        return self


class PagerDutyReceiver(_Receiver):
    type: Literal["pagerduty"]
    routing_key: SecretStr | None = None
    routing_key_file: str | None = None
    source: str | None = None
    """`payload.source`; the model name when unset."""
    url: str = "https://events.pagerduty.com/v2/enqueue"

    @model_validator(mode="after")
    def _secret(self) -> PagerDutyReceiver:
        self._one_of("routing_key", "routing_key_file")
        return self


class WebhookReceiver(_Receiver):
    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    """Standard Webhooks signing secret, `whsec_` + base64."""
    secret_file: str | None = None
    previous_secret: SecretStr | None = None
    """During a rotation, also sign with the old secret (two signatures)."""

    @model_validator(mode="after")
    def _checks(self) -> WebhookReceiver:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"receiver {self.name!r}: url must be http:// or https://")
        self._one_of("secret", "secret_file")
        for secret in (self.secret, self.previous_secret):
            if secret is not None and not secret.get_secret_value().startswith("whsec_"):
                raise ValueError(f"receiver {self.name!r}: a signing secret starts with whsec_")
        return self


class EmailReceiver(_Receiver):
    type: Literal["email"]
    to: tuple[str, ...] = Field(min_length=1)
    from_: str = Field(alias="from")
    smarthost: str
    """`host:port` of the SMTP server."""
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    auth_password_file: str | None = None
    require_tls: bool = True

    @model_validator(mode="after")
    def _checks(self) -> EmailReceiver:
        host, sep, port = self.smarthost.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"receiver {self.name!r}: smarthost must be host:port")
        for address in (*self.to, self.from_):
            if "@" not in address:
                raise ValueError(f"receiver {self.name!r}: {address!r} is not an email address")
        if self.auth_password is not None and self.auth_password_file is not None:
            raise ValueError(
                f"receiver {self.name!r}: give auth_password or auth_password_file, not both"
            )
        return self


ReceiverConfig = Annotated[
    SlackReceiver | PagerDutyReceiver | WebhookReceiver | EmailReceiver,
    Field(discriminator="type"),
]
"""One receiver declaration, chosen by its `type`."""
