"""Portal settings (env prefix PORTAL_)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SESSION_SECRET = "dev-only-insecure-portal-session-secret-0000"  # noqa: S105 - refused in prod

Environment = Literal["dev", "test", "prod"]


class PortalSettings(BaseSettings):
    """Where the public APIs are, how the portal is reached, and its session secret."""

    model_config = SettingsConfigDict(env_prefix="PORTAL_", extra="ignore", env_file=None)

    service_name: str = "portal"
    environment: Environment = "dev"
    log_level: str = "INFO"
    inventory_url: str = "http://127.0.0.1:8001"
    leasing_url: str = "http://127.0.0.1:8002"
    notifications_url: str = "http://127.0.0.1:8003"
    public_base_url: str = "http://127.0.0.1:8000"
    # Where readers' browsers and programs reach inventory's and notifications' APIs (the
    # open-data page's download links); None: the URLs above, as in the local platform.
    inventory_public_url: str | None = None
    notifications_public_url: str | None = None
    # A tile server template such as https://tiles.example.org/{z}/{x}/{y}.png. None: the map
    # draws the sites over a plain background. There is deliberately no public default.
    tile_url: str | None = None
    tile_attribution: str = ""
    upstream_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Keys (derived, one per purpose) for the tokens kept in the session rows, the login-flow
    # cookie and the visitors' CSRF cookie.
    session_secret: SecretStr = SecretStr(DEV_SESSION_SECRET)
    # Login (authorization code + PKCE) at the identity provider. oidc_issuer is the realm as the
    # browser reaches it; oidc_internal_issuer, when set, is where the portal itself reaches the
    # same realm (discovery, token endpoint, JWKS). None: login is unavailable and says so.
    oidc_issuer: str | None = None
    oidc_internal_issuer: str | None = None
    oidc_jwks_url: str | None = None
    oidc_client_id: str = "fabrique-portal"
    # The portal's own database: web sessions and rate-limit counters, nothing else.
    database_url: str = "sqlite+aiosqlite:///./.run/portal.db"
    session_idle_timeout_s: int = Field(default=1800, ge=60, le=7 * 24 * 3600)
    session_absolute_lifetime_s: int = Field(default=12 * 3600, ge=300, le=30 * 24 * 3600)
    # Logins started per client address and window (the guest alert form has its own limit).
    login_rate_limit: int = Field(default=20, ge=1, le=10_000)
    login_rate_window_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    # Requests for alerts without an account from one client address per window (notifications
    # also limits the confirmation e-mails per address and its guest requests per minute).
    guest_alerts_rate_limit: int = Field(default=10, ge=1, le=10_000)
    guest_alerts_rate_window_s: float = Field(default=3600.0, gt=0, le=24 * 3600)

    @field_validator("inventory_url", "leasing_url", "notifications_url", "public_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator(
        "oidc_issuer",
        "oidc_internal_issuer",
        "oidc_jwks_url",
        "inventory_public_url",
        "notifications_public_url",
    )
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @field_validator("tile_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith("https://") and not value.startswith("http://"):
            raise ValueError("tile_url must be an http(s) URL template")
        if not all(part in value for part in ("{z}", "{x}", "{y}")):
            raise ValueError("tile_url must contain {z}, {x} and {y}")
        return value

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> PortalSettings:
        secret = self.session_secret.get_secret_value()
        if self.environment == "prod":
            if secret == DEV_SESSION_SECRET:
                raise ValueError(
                    "session_secret is the development default; set PORTAL_SESSION_SECRET in prod"
                )
            if len(secret) < 32:
                raise ValueError("session_secret must be at least 32 characters in prod")
        return self

    @property
    def tile_origin(self) -> str | None:
        """scheme://host[:port] of the tile server, for the CSP's img-src."""
        if self.tile_url is None:
            return None
        scheme, _, rest = self.tile_url.partition("://")
        host = rest.split("/", 1)[0]
        # Subdomain templates ({s}.tile...) need a wildcard source.
        return f"{scheme}://{host.replace('{s}', '*')}"
