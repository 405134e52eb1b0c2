"""ServiceSettings: weak secrets are refused in prod; each service reads its own env prefix."""

from __future__ import annotations

import os

import pytest
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import SettingsConfigDict

from fabkit.settings import DEV_JWT_SECRET, ServiceSettings

STRONG_SECRET = "k3J9-prod-secret-with-enough-entropy-4242"  # 41 characters


class WorkshopSettings(ServiceSettings):
    """A service's settings as every service declares them: its own prefix, one extra field."""

    model_config = SettingsConfigDict(env_prefix="WORKSHOP_", extra="ignore")

    service_name: str = "workshop"
    reason_min_chars: int = Field(default=10, ge=1)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell or CI must not decide these tests."""
    for name in list(os.environ):
        if name.upper().startswith(("FABRIQUE_", "WORKSHOP_")):
            monkeypatch.delenv(name)


# Secrets -----------------------------------------------------------------------------------


def test_prod_refuses_the_dev_default_secret() -> None:
    with pytest.raises(ValidationError, match="development default"):
        ServiceSettings(environment="prod")


def test_prod_refuses_the_dev_default_secret_given_explicitly() -> None:
    with pytest.raises(ValidationError, match="development default"):
        ServiceSettings(environment="prod", jwt_secret=SecretStr(DEV_JWT_SECRET))


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_prod_refuses_short_secrets(secret: str) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        ServiceSettings(environment="prod", jwt_secret=secret)  # type: ignore[arg-type]


def test_prod_accepts_a_strong_secret() -> None:
    settings = ServiceSettings(environment="prod", jwt_secret=STRONG_SECRET)  # type: ignore[arg-type]

    assert settings.jwt_secret.get_secret_value() == STRONG_SECRET


def test_prod_accepts_exactly_32_characters() -> None:
    settings = ServiceSettings(environment="prod", jwt_secret="y" * 32)  # type: ignore[arg-type]

    assert len(settings.jwt_secret.get_secret_value()) == 32


@pytest.mark.parametrize("environment", ["dev", "test"])
@pytest.mark.parametrize("secret", [DEV_JWT_SECRET, "short"])
def test_dev_and_test_accept_weak_secrets(environment: str, secret: str) -> None:
    settings = ServiceSettings(environment=environment, jwt_secret=secret)  # type: ignore[arg-type]

    assert settings.environment == environment
    assert settings.jwt_secret.get_secret_value() == secret


def test_defaults_are_dev_with_the_dev_secret() -> None:
    settings = ServiceSettings()

    assert settings.environment == "dev"
    assert settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(environment="staging")  # type: ignore[arg-type]


def test_secret_never_shows_in_repr() -> None:
    settings = ServiceSettings(environment="prod", jwt_secret=STRONG_SECRET)  # type: ignore[arg-type]

    assert STRONG_SECRET not in repr(settings)
    assert STRONG_SECRET not in str(settings.model_dump())


# Environment variables ---------------------------------------------------------------------


def test_base_reads_the_fabrique_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FABRIQUE_KAFKA_BOOTSTRAP", "broker-1:9092")
    monkeypatch.setenv("FABRIQUE_OUTBOX_BATCH_SIZE", "50")

    settings = ServiceSettings()

    assert settings.kafka_bootstrap == "broker-1:9092"
    assert settings.outbox_batch_size == 50


def test_subclass_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_DATABASE_URL", "postgresql+asyncpg://u@db/workshop")
    monkeypatch.setenv("WORKSHOP_REASON_MIN_CHARS", "25")
    monkeypatch.setenv("WORKSHOP_RUN_RELAY", "false")

    settings = WorkshopSettings()

    assert settings.database_url == "postgresql+asyncpg://u@db/workshop"
    assert settings.reason_min_chars == 25
    assert settings.run_relay is False
    assert settings.is_sqlite is False
    assert settings.service_name == "workshop"


def test_subclass_ignores_the_base_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another service's variables (or the base's) must not leak into this service.
    monkeypatch.setenv("FABRIQUE_DATABASE_URL", "postgresql+asyncpg://u@db/other")
    monkeypatch.setenv("FABRIQUE_ENVIRONMENT", "prod")

    settings = WorkshopSettings()

    assert settings.is_sqlite
    assert settings.environment == "dev"


def test_subclass_refuses_default_secret_in_prod_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_ENVIRONMENT", "prod")

    with pytest.raises(ValidationError, match="development default"):
        WorkshopSettings()

    monkeypatch.setenv("WORKSHOP_JWT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="at least 32 characters"):
        WorkshopSettings()

    monkeypatch.setenv("WORKSHOP_JWT_SECRET", STRONG_SECRET)
    assert WorkshopSettings().jwt_secret.get_secret_value() == STRONG_SECRET


def test_env_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_OUTBOX_POLL_INTERVAL_S", "0")

    with pytest.raises(ValidationError, match="outbox_poll_interval_s"):
        WorkshopSettings()


def test_init_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LOG_LEVEL", "DEBUG")

    assert WorkshopSettings(log_level="WARNING").log_level == "WARNING"
