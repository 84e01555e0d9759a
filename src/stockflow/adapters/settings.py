"""One frozen settings object, read from the environment once at the entry point."""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from stockflow.contract.topics import Topics
from stockflow.domain.inputs import DEFAULT_LIMITS, Limits
from stockflow.domain.state import DEFAULT_POLICY, Policy, Remediation
from stockflow.domain.webhooks import DEFAULT_SCHEDULE, RetryPolicy, parse_schedule

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything stockflow reads from `STOCKFLOW_*` environment variables (12-factor)."""

    model_config = SettingsConfigDict(env_prefix="STOCKFLOW_", frozen=True, extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: SecretStr = SecretStr("postgresql://stockflow@127.0.0.1:5432/stockflow")
    database_schema: str = Field(default="stockflow", pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    topic_prefix: str = Topics().prefix
    group_id: str = "stockflow"
    client_id: str = "stockflow"
    # Static membership: a restarted member with the same id takes its partitions back at
    # once instead of waiting out the session timeout (set it to the pod name).
    group_instance_id: str | None = None
    # Kafka's own default: a member rides out a broker restart shorter than this without
    # rejoining; a crashed member's partitions wait this long (see adapters.kafka.consumer)
    session_timeout_ms: int = Field(default=45_000, ge=1000)
    metrics_port: int = 9108
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped from outside the pod/container

    default_reorder_point: int = Field(default=DEFAULT_POLICY.default_reorder_point, ge=0)
    default_safety_stock: int = Field(default=DEFAULT_POLICY.default_safety_stock, ge=0)
    # At most a century: an event time plus the TTL must stay a representable timestamp.
    reservation_ttl: float = Field(default=DEFAULT_POLICY.reservation_ttl.total_seconds(), gt=0,
                                   le=100 * 365.25 * 86400, description="seconds")
    # What a physical movement that takes available below 0 does to pending reservations
    # (none, or release_newest_pending: see docs/contract.md, "Oversell remediation").
    oversell_remediation: Remediation = DEFAULT_POLICY.oversell_remediation
    # Both bounds keep every sum of quantities and levels far inside Postgres' bigint.
    max_quantity: int = Field(default=DEFAULT_LIMITS.max_quantity, ge=1, le=10**12)
    max_level: int = Field(default=DEFAULT_LIMITS.max_level, ge=1, le=10**15)
    max_message_bytes: int = Field(default=DEFAULT_LIMITS.max_bytes, ge=1)

    # Postgres connections: how long to wait for a connection, a statement, and a session
    # idle inside a transaction (seconds). A dead server is noticed by TCP keepalives.
    database_connect_timeout: int = Field(default=10, ge=1)
    database_statement_timeout: float = Field(default=60.0, gt=0)
    database_idle_in_transaction_timeout: float = Field(default=60.0, gt=0)
    # How long an outage (Postgres or Kafka unreachable) is waited out before the processor
    # exits non-zero; 0 waits for ever (readiness reports the outage meanwhile).
    outage_give_up: float = Field(default=0.0, ge=0)

    # What the state cache may hold (keys, order lines, references, event ids) before it
    # is dropped and refilled from Postgres: bounds memory whatever the catalogue's size.
    cache_max_entries: int = Field(default=500_000, ge=1_000)
    # A batch is whatever has arrived, up to this many messages: no wait to tune.
    batch_max_messages: int = Field(default=10_000, ge=1)
    # While less than 64 KiB is ready, how long the broker holds a consumer's fetch for
    # more: at low rates, how long a batch gathers. Every batch and every fetch costs the
    # broker, Postgres and the processor much the same whatever its size, so this trades
    # latency for CPU. Measured at 1,000 events/s (docs/benchmarks/results.md): 10 ms gave
    # batches of 7 and 1.21 cores of processing, 25 ms batches of 14 and 0.78 cores at a
    # lower p99 (58 ms: a writer no longer busy with tiny batches), 50 ms batches of 28
    # and 0.59-0.73 cores at twice the latency.
    batch_gather_ms: int = Field(default=25, ge=1, le=1000)
    # How long an idle loop waits for a message before its periodic work (sweeps, gauges).
    idle_wait: float = Field(default=0.1, gt=0, description="seconds")
    sweep_interval: float = Field(default=5.0, gt=0, description="seconds")

    # The order coordinator (`stockflow coordinate`): its own consumer group over
    # inventory.order-requests and inventory.reservations, and its own /metrics port.
    coordinator_group_id: str = "stockflow-coordinator"
    coordinator_metrics_port: int = 9110
    # Orders it keeps in memory before the cache is dropped and refilled from Postgres.
    coordinator_cache_entries: int = Field(default=20_000, ge=100)
    # `batch_gather_ms` for its consumer. At 20 checkouts/s a whole order's answer took
    # p50 66 ms with both at 10 ms and 92 ms with both at 25 (bench/api.py).
    coordinator_batch_gather_ms: int = Field(default=10, ge=1, le=1000)

    # The webhook relay (`stockflow relay`). Endpoint secrets are sealed with this key
    # (base64 of 32 bytes: `openssl rand -base64 32`); the relay and `webhooks add` need it.
    secret_key: SecretStr | None = None
    relay_group_id: str = "stockflow-relay"
    relay_metrics_port: int = 9109  # its /metrics, /healthz and /readyz (the host: metrics_host)
    webhook_timeout: float = Field(default=15.0, gt=0, description="seconds per attempt")
    webhook_retry_schedule: str = Field(default=",".join(f"{w:g}" for w in DEFAULT_SCHEDULE),
                                        description="seconds before each attempt")
    webhook_retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    webhook_disable_after: float = Field(default=5 * 86400, gt=0, description="seconds")
    webhook_rotation_grace: float = Field(default=86400, ge=0, description="seconds")
    webhook_endpoint_concurrency: int = Field(default=8, ge=1)
    webhook_concurrency: int = Field(default=256, ge=1)
    webhook_allow_http: bool = False
    # CIDRs whose addresses the SSRF guard lets through (tests, private deployments).
    webhook_allow_networks: str = ""

    # The HTTP API (`stockflow api`).
    api_host: str = "0.0.0.0"  # noqa: S104 - served to other hosts
    api_port: int = 8080
    api_pool_size: int = Field(default=10, ge=1, description="Postgres connections")
    api_pool_wait: float = Field(default=3.0, gt=0, description=(
        "seconds a request waits for a free Postgres connection before it is answered 503"))
    api_rate_limit: float = Field(default=100.0, gt=0, description="requests/s per API key")
    api_rate_burst: int = Field(default=200, ge=1, description="requests at once per key")
    # The console (`/console`, served by the API): a sign-in lasts while it is used, up to
    # a working day.
    console_idle_timeout: float = Field(default=30 * 60, gt=0, description=(
        "seconds a console session lasts unused"))
    console_session_lifetime: float = Field(default=12 * 3600, gt=0, description=(
        "seconds a console session lasts at most, used or not"))
    console_refresh: int = Field(default=15, ge=1, description=(
        "seconds between the console overview's reloads"))

    # Kafka security, passed through to librdkafka untouched.
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None

    @classmethod
    def variable(cls, name: str) -> str:
        """The environment variable of setting `name` (metrics_port: STOCKFLOW_METRICS_PORT),
        for messages that tell a person what to set."""
        return f"{cls.model_config['env_prefix']}{name.upper()}"

    def environment(self) -> dict[str, str]:
        """The `STOCKFLOW_*` variables that make `Settings()` in a child process equal to
        this object: every setting that has a value, secrets in clear (a child needs them;
        never log or print the result). A setting that is None is left out, so it is None
        in the child only if the child's environment does not set it either."""
        found: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is not None:
                found[self.variable(name)] = _text(value)
        return found

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        parse_schedule(value)  # refused at start-up, not at the first failed delivery
        return value

    def kafka_common(self) -> dict[str, Any]:
        """The librdkafka settings every client shares: bootstrap and security."""
        conf: dict[str, Any] = {"bootstrap.servers": self.kafka_bootstrap}
        plain = {
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "ssl.ca.location": self.kafka_ssl_ca_location,
            "ssl.certificate.location": self.kafka_ssl_certificate_location,
            "ssl.key.location": self.kafka_ssl_key_location,
        }
        secret = {
            "sasl.password": self.kafka_sasl_password,
            "ssl.key.password": self.kafka_ssl_key_password,
        }
        conf.update({k: v for k, v in plain.items() if v is not None})
        conf.update({k: v.get_secret_value() for k, v in secret.items() if v is not None})
        return conf

    def policy(self) -> Policy:
        """What the stock rules are configured with."""
        return Policy(reservation_ttl=timedelta(seconds=self.reservation_ttl),
                      default_reorder_point=self.default_reorder_point,
                      default_safety_stock=self.default_safety_stock,
                      oversell_remediation=self.oversell_remediation)

    def limits(self) -> Limits:
        """The edge's bounds (see `stockflow.domain.inputs.Limits`)."""
        return Limits(self.max_quantity, self.max_level, self.max_message_bytes)

    def retry_policy(self) -> RetryPolicy:
        """When the relay retries a delivery and disables an endpoint."""
        return RetryPolicy(schedule=parse_schedule(self.webhook_retry_schedule),
                           jitter=self.webhook_retry_jitter,
                           disable_after=timedelta(seconds=self.webhook_disable_after))

    def dsn(self) -> str:
        return self.database_url.get_secret_value()

    def database_options(self) -> dict[str, Any]:
        """libpq connection parameters every stockflow connection adds to the URL."""
        ms = {"statement_timeout": self.database_statement_timeout,
              "idle_in_transaction_session_timeout": self.database_idle_in_transaction_timeout}
        return {"connect_timeout": self.database_connect_timeout,
                "options": " ".join(f"-c {k}={round(v * 1000)}" for k, v in ms.items()),
                "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
                "keepalives_count": 3}


def _text(value: object) -> str:
    """A setting's value as an environment variable spells it (pydantic parses it back)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):  # before int: a bool is an int
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)  # the shortest text that parses back to the same float
    return str(value)
