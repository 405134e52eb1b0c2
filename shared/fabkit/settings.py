"""Settings base shared by every service; each service subclasses it with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fabkit.auth import TokenService

DEV_JWT_SECRET = "dev-only-insecure-secret-change-me-0000"  # noqa: S105 - refused outside dev/test

Environment = Literal["dev", "test", "prod"]


class ServiceSettings(BaseSettings):
    """Typed configuration of one service; refuses default secrets outside dev and test."""

    model_config = SettingsConfigDict(env_prefix="FABRIQUE_", extra="ignore", env_file=None)

    service_name: str = "fabrique"
    environment: Environment = "dev"
    database_url: str = "sqlite+aiosqlite:///./fabrique.db"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_client_id: str | None = None
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Secrets still accepted (not used to sign) while a rotation is rolled out.
    jwt_previous_secrets: list[SecretStr] = Field(default_factory=list)
    jwt_issuer: str = "fabrique"
    log_level: str = "INFO"
    outbox_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_backoff_s: float = Field(default=0.2, ge=0, le=60)
    run_relay: bool = True
    run_consumers: bool = True

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> ServiceSettings:
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "prod":
            if secret == DEV_JWT_SECRET:
                raise ValueError("jwt_secret is the development default; set a real secret in prod")
            if len(secret) < 32:
                raise ValueError("jwt_secret must be at least 32 characters in prod")
            if any(p.get_secret_value() == DEV_JWT_SECRET for p in self.jwt_previous_secrets):
                raise ValueError("jwt_previous_secrets must not include the development secret")
        return self

    def token_service(self) -> TokenService:
        """Signs with jwt_secret; also accepts the previous secrets during a rotation."""
        return TokenService(
            self.jwt_secret.get_secret_value(),
            self.jwt_issuer,
            previous=tuple(p.get_secret_value() for p in self.jwt_previous_secrets),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
