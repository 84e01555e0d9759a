"""The relay's Kafka consumer (aiokafka, on the relay's event loop), set up from the same
settings as the processor's librdkafka clients."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.helpers import create_ssl_context

from stockflow.adapters.settings import Settings

__all__ = ["client_options", "relay_consumer"]


def client_options(settings: Settings) -> dict[str, Any]:
    """aiokafka's names for the bootstrap and security settings (`Settings.kafka_common`
    gives librdkafka's)."""
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap.split(","),
                               "client_id": f"{settings.client_id}-relay"}
    if settings.kafka_security_protocol:
        options["security_protocol"] = settings.kafka_security_protocol.upper()
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism.upper()
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if options.get("security_protocol", "").endswith("SSL"):
        key_password = settings.kafka_ssl_key_password
        options["ssl_context"] = create_ssl_context(
            cafile=settings.kafka_ssl_ca_location,
            certfile=settings.kafka_ssl_certificate_location,
            keyfile=settings.kafka_ssl_key_location,
            password=key_password.get_secret_value() if key_password else None)
    return options


def relay_consumer(settings: Settings, batch: int) -> Any:
    """A consumer in the relay's group that never commits by itself and starts a new group
    at the beginning of the topics; committed messages only, as every stockflow consumer
    reads. Call it on the event loop it will run on."""
    seconds = settings.session_timeout_ms / 1000
    return AIOKafkaConsumer(
        **client_options(settings),
        group_id=settings.relay_group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=batch,
        session_timeout_ms=settings.session_timeout_ms,
        # as the processor: Kafka's 3 s at most, so a rebalance is heard soon
        heartbeat_interval_ms=int(1000 * min(3.0, max(0.5, seconds / 5))),
    )
