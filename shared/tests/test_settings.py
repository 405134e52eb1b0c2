"""ServiceSettings: no signing secret, a development issuer refused in prod; each service reads
its own env prefix."""

from __future__ import annotations

import os

import pytest
from pydantic import Field, ValidationError
from pydantic_settings import SettingsConfigDict

from fabkit.settings import DEV_OIDC_ISSUER, ServiceSettings


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


# Identity provider -------------------------------------------------------------------------

PROD_ISSUER = "https://id.fabrique.paris.fr/realms/fabrique"


def test_the_settings_hold_no_signing_secret() -> None:
    fields = set(ServiceSettings.model_fields)

    assert not {f for f in fields if "secret" in f or f.startswith("jwt")}
    assert {"oidc_issuer", "oidc_audience", "oidc_jwks_url"} <= fields


def test_defaults_are_dev_with_the_local_realm() -> None:
    settings = ServiceSettings()

    assert settings.environment == "dev"
    assert settings.oidc_issuer == DEV_OIDC_ISSUER
    assert settings.oidc_audience == "fabrique-api"
    assert settings.oidc_jwks_url is None


def test_prod_refuses_the_loopback_dev_issuer() -> None:
    with pytest.raises(ValidationError, match="plain http"):
        ServiceSettings(environment="prod")
    with pytest.raises(ValidationError, match="loopback"):
        ServiceSettings(environment="prod", oidc_issuer="https://127.0.0.1:8443/realms/fabrique")
    with pytest.raises(ValidationError, match="loopback"):
        ServiceSettings(environment="prod", oidc_issuer="https://localhost/realms/fabrique")


def test_prod_refuses_a_plain_http_issuer() -> None:
    with pytest.raises(ValidationError, match="plain http"):
        ServiceSettings(environment="prod", oidc_issuer="http://id.fabrique.paris.fr/realms/x")


def test_prod_accepts_an_https_issuer_and_an_in_cluster_jwks_url() -> None:
    settings = ServiceSettings(
        environment="prod",
        oidc_issuer=PROD_ISSUER,
        oidc_jwks_url="http://keycloak.identity:8080/realms/fabrique/protocol/openid-connect/certs",
    )

    assert settings.oidc_issuer == PROD_ISSUER


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_dev_and_test_accept_a_loopback_issuer(environment: str) -> None:
    settings = ServiceSettings(
        environment=environment, oidc_issuer="http://127.0.0.1:40000/realms/f"
    )  # type: ignore[arg-type]

    assert settings.oidc_issuer.startswith("http://127.0.0.1")


@pytest.mark.parametrize("issuer", ["", "fabrique", "ftp://id.example/realms/f"])
def test_an_issuer_that_is_not_a_url_is_refused(issuer: str) -> None:
    with pytest.raises(ValidationError, match="not an http"):
        ServiceSettings(oidc_issuer=issuer)


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValidationError):
        ServiceSettings(environment="staging")  # type: ignore[arg-type]


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


def test_subclass_reads_the_issuer_from_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_ENVIRONMENT", "prod")

    with pytest.raises(ValidationError, match="plain http"):
        WorkshopSettings()

    monkeypatch.setenv("WORKSHOP_OIDC_ISSUER", PROD_ISSUER)
    monkeypatch.setenv("WORKSHOP_OIDC_AUDIENCE", "fabrique-api")
    settings = WorkshopSettings()
    assert (settings.oidc_issuer, settings.oidc_audience) == (PROD_ISSUER, "fabrique-api")


def test_env_values_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_OUTBOX_POLL_INTERVAL_S", "0")

    with pytest.raises(ValidationError, match="outbox_poll_interval_s"):
        WorkshopSettings()


def test_init_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKSHOP_LOG_LEVEL", "DEBUG")

    assert WorkshopSettings(log_level="WARNING").log_level == "WARNING"
