"""Receivers built from their declarations: secrets read from the config or from files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr

from . import _receiver_config as declared
from ._config import AlertingConfig
from ._dispatcher import Receiver
from ._email import EmailReceiver
from ._pagerduty import PagerDutyReceiver
from ._ratelimit import TokenBucket
from ._slack import SlackReceiver
from ._webhook import WebhookReceiver


def _secret(inline: SecretStr | None, file: str | None) -> str | None:
    if inline is not None:
        return inline.get_secret_value()
    if file is not None:
        return Path(file).read_text().strip()
    return None


def build_receiver(declaration: declared.ReceiverConfig) -> Receiver:
    """The sending receiver of one declaration."""
    if isinstance(declaration, declared.SlackReceiver):
        url = _secret(declaration.webhook_url, declaration.webhook_url_file)
        return SlackReceiver(webhook_url=url, channel=declaration.channel)
    if isinstance(declaration, declared.PagerDutyReceiver):
        key = _secret(declaration.routing_key, declaration.routing_key_file)
        return PagerDutyReceiver(
            routing_key=key, events_url=declaration.url, source=declaration.source
        )
    if isinstance(declaration, declared.WebhookReceiver):
        secrets = [_secret(declaration.secret, declaration.secret_file)]
        if declaration.previous_secret is not None:
            secrets.append(declaration.previous_secret.get_secret_value())
        return WebhookReceiver(url=declaration.url, secrets=secrets)
    host, _, port = declaration.smarthost.rpartition(":")
    return EmailReceiver(
        host=host,
        port=int(port),
        sender=declaration.from_,
        to=list(declaration.to),
        username=declaration.auth_username,
        password=_secret(declaration.auth_password, declaration.auth_password_file),
        require_tls=declaration.require_tls,
    )


def build_receivers(config: AlertingConfig) -> dict[str, Receiver]:
    """Every receiver of the config, by name."""
    return {declaration.name: build_receiver(declaration) for declaration in config.receivers}


def build_rate_limits(
    config: AlertingConfig, clock: Callable[[], float] = time.monotonic
) -> dict[str, TokenBucket]:
    """A token bucket (burst 1: evenly spaced sends) per receiver with `max_per_minute`."""
    return {
        declaration.name: TokenBucket(
            rate_per_s=declaration.max_per_minute / 60, burst=1, clock=clock
        )
        for declaration in config.receivers
        if declaration.max_per_minute is not None
    }
