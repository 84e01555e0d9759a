"""Webhook endpoints as an operator manages them: registered with a fresh signing secret
(sealed at rest), their secret rotated, past events delivered again; and the relay's guard
and secret box as the settings configure them (the relay and these share them)."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from stockflow import StockflowError
from stockflow.adapters import ssrf
from stockflow.adapters.db import store
from stockflow.adapters.db import webhooks as hooks
from stockflow.adapters.secrets import SecretBox
from stockflow.adapters.settings import Settings
from stockflow.contract import webhooks as wire
from stockflow.domain.webhooks import matches

__all__ = ["Registered", "Rotated", "add_endpoint", "guard_policy", "replay_since",
           "rotate_secret", "secret_box"]


def guard_policy(settings: Settings) -> ssrf.Policy:
    """The SSRF guard's policy: https only unless allowed, and the allow-listed networks."""
    try:
        networks = tuple(ipaddress.ip_network(part.strip(), strict=False)
                         for part in settings.webhook_allow_networks.split(",") if part.strip())
    except ValueError as exc:
        raise StockflowError(f"STOCKFLOW_WEBHOOK_ALLOW_NETWORKS: {exc}") from None
    return ssrf.Policy(allow_http=settings.webhook_allow_http, allow_networks=networks)


def secret_box(settings: Settings) -> SecretBox:
    """The box that seals and opens webhook secrets with the configured key."""
    if settings.secret_key is None:
        raise StockflowError("STOCKFLOW_SECRET_KEY is not set: webhook secrets are stored "
                             "encrypted with it (make one with: openssl rand -base64 32)")
    return SecretBox.from_setting(settings.secret_key.get_secret_value())


@dataclass(frozen=True)
class Registered:
    """A new endpoint's id and its signing secret."""

    endpoint_id: str
    secret: str  # shown once: only its sealed form is stored


@dataclass(frozen=True)
class Rotated:
    """An endpoint's new signing secret, and how long the old one still signs."""

    secret: str  # shown once
    grace: timedelta  # how long the previous secret also signs


def add_endpoint(conn: store.Conn, settings: Settings, *, url: str, events: list[str],
                 keys: list[str], description: str) -> Registered:
    """Register an endpoint for the event and key patterns, once its URL passes the SSRF
    guard (a StockflowError naming the host otherwise)."""
    try:
        ssrf.check_now(url, guard_policy(settings))
    except ssrf.UrlRefused as exc:
        # the message names the host only: a URL's path may carry a receiver's token
        raise StockflowError(f"the URL is refused: {exc}") from None
    box = secret_box(settings)
    endpoint_id = "ep_" + secrets.token_hex(8)
    secret = wire.new_secret()
    hooks.add_endpoint(conn, endpoint_id=endpoint_id, url=url, events=events, keys=keys,
                       description=description,
                       sealed=box.seal(secret, endpoint_id.encode()))
    return Registered(endpoint_id, secret)


def rotate_secret(conn: store.Conn, settings: Settings, endpoint_id: str) -> Rotated:
    """A new signing secret for the endpoint; the previous one also signs for the
    rotation grace."""
    secret = wire.new_secret()
    grace = timedelta(seconds=settings.webhook_rotation_grace)
    hooks.rotate(conn, endpoint_id, secret_box(settings).seal(secret, endpoint_id.encode()),
                 grace)
    return Rotated(secret, grace)


def replay_since(conn: store.Conn, endpoint: hooks.Endpoint, since: datetime,
                 until: datetime | None) -> int:
    """Queue again, from the first attempt, every stored event in [since, until) that the
    endpoint's patterns match; how many were queued."""
    wanted = [event_id for event_id, type_, subject in hooks.events_between(conn, since, until)
              if matches(endpoint.event_patterns, type_)
              and matches(endpoint.key_patterns, subject)]
    with conn.transaction():
        return hooks.replay(conn, endpoint.id, wanted)
