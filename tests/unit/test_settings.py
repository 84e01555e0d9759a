"""Settings handed to a child process as environment variables come back unchanged."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from stockflow.adapters.settings import Settings
from stockflow.domain.state import Remediation


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """No STOCKFLOW_* variable of the test run's own leaks into what is compared."""
    for name in Settings.model_fields:
        monkeypatch.delenv(Settings.variable(name), raising=False)


def test_the_defaults_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(monkeypatch)
    made = Settings()
    for name, value in made.environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == made


def test_every_kind_of_value_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean(monkeypatch)
    made = Settings(
        kafka_bootstrap="k1:9092,k2:9092", database_url=SecretStr("postgresql://u:p@h/d"),
        database_schema="s_1", group_instance_id="pod-0", metrics_port=0,
        reservation_ttl=0.1 + 0.2,  # a float with no short decimal spelling
        oversell_remediation=Remediation.RELEASE_NEWEST_PENDING, webhook_allow_http=True,
        webhook_retry_schedule="1,2.5,60", secret_key=SecretStr("c2VjcmV0"),
        kafka_sasl_password=SecretStr("pw"), webhook_allow_networks="10.0.0.0/8")
    env = made.environment()
    assert env["STOCKFLOW_DATABASE_URL"] == "postgresql://u:p@h/d"  # secrets in clear
    assert env["STOCKFLOW_WEBHOOK_ALLOW_HTTP"] == "true"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings() == made


def test_a_setting_that_is_none_is_left_out() -> None:
    env = Settings(group_instance_id=None, secret_key=None).environment()
    assert "STOCKFLOW_GROUP_INSTANCE_ID" not in env
    assert "STOCKFLOW_SECRET_KEY" not in env
    assert set(env) <= {Settings.variable(n) for n in Settings.model_fields}
