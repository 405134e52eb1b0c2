"""Settings base shared by every service; each service subclasses it with its own env prefix."""

from __future__ import annotations

from ipaddress import ip_address
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The local launcher's Keycloak realm (the launcher passes the real, dynamic one).
DEV_OIDC_ISSUER = "http://127.0.0.1:8180/realms/fabrique"
OIDC_AUDIENCE = "fabrique-api"

Environment = Literal["dev", "test", "prod"]


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class ServiceSettings(BaseSettings):
    """Typed configuration of one service; refuses development identity settings in prod.

    The service holds no signing secret: it verifies the access tokens of the OpenID Connect
    provider ``oidc_issuer`` (whose discovery document names the JWKS, unless ``oidc_jwks_url``
    says where to fetch it, e.g. an in-cluster address) for the audience ``oidc_audience``.
    """

    model_config = SettingsConfigDict(env_prefix="FABRIQUE_", extra="ignore", env_file=None)

    service_name: str = "fabrique"
    environment: Environment = "dev"
    database_url: str = "sqlite+aiosqlite:///./fabrique.db"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str | None = None
    #: Static group membership (KIP-345): the pod's name in a StatefulSet, so a restarted pod
    #: gets its partitions back without a rebalance (docs/operations.md, "Replicas").
    kafka_group_instance_id: str | None = Field(
        default=None, min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$"
    )
    #: How long a silent member keeps its partitions (the broker allows 6 s to 5 min).
    kafka_session_timeout_ms: int = Field(default=10000, ge=6000, le=300000)
    kafka_heartbeat_interval_ms: int = Field(default=1000, ge=100, le=10000)
    oidc_issuer: str = DEV_OIDC_ISSUER
    oidc_audience: str = OIDC_AUDIENCE
    oidc_jwks_url: str | None = None
    log_level: str = "INFO"
    outbox_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0, le=60)
    run_relay: bool = True
    run_consumers: bool = True

    @model_validator(mode="after")
    def _heartbeat_within_session(self) -> ServiceSettings:
        if self.kafka_heartbeat_interval_ms * 3 > self.kafka_session_timeout_ms:
            raise ValueError(
                f"kafka_heartbeat_interval_ms ({self.kafka_heartbeat_interval_ms}) must be at "
                f"most a third of kafka_session_timeout_ms ({self.kafka_session_timeout_ms}): "
                "lower the interval or lengthen the session"
            )
        return self

    @model_validator(mode="after")
    def _refuse_dev_identity_in_prod(self) -> ServiceSettings:
        issuer = urlsplit(self.oidc_issuer)
        if issuer.scheme not in ("http", "https") or not issuer.hostname:
            raise ValueError(
                f"oidc_issuer {self.oidc_issuer!r} is not an http(s) URL of a realm, such as "
                "https://id.example.org/realms/fabrique"
            )
        if not self.oidc_audience:
            raise ValueError("oidc_audience must name this API (fabrique-api)")
        if self.environment == "prod":
            if issuer.scheme != "https":
                raise ValueError(
                    f"oidc_issuer {self.oidc_issuer!r} is plain http; in prod the identity "
                    "provider must be reached over https"
                )
            if _is_loopback(issuer.hostname):
                raise ValueError(
                    f"oidc_issuer {self.oidc_issuer!r} is a loopback address (the development "
                    "default); set the public issuer of the production realm"
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
