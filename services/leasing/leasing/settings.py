"""Leasing settings (env prefix LEASING_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from fabkit.settings import ServiceSettings


class LeasingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="LEASING_", extra="ignore")

    service_name: str = "leasing"
    database_url: str = "sqlite+aiosqlite:///./.run/leasing.db"
    event_source: str = "/fabrique/leasing"
    consumer_group: str = "leasing"
    programmes_file: Path | None = Field(
        default=None,
        description="Programme configuration (TOML or JSON); the packaged one if unset",
    )
    publish_programmes: bool = Field(
        default=True,
        description="At start-up, store and publish the programme file's catalogue as version 1 "
        "when the database holds none (the database is the source afterwards)",
    )
    catalogue_ttl_s: float = Field(
        default=2.0,
        ge=0,
        le=300,
        description="How long a process serves the programme catalogue before checking its "
        "version in the database again: a change made in another replica is seen within this",
    )
    offer_ttl_hours: float = Field(default=168.0, gt=0, le=24 * 90)
    run_sweeper: bool = Field(
        default=True,
        description="Expire unanswered offers and end leases past their end date in this process",
    )
    sweep_interval_s: float = Field(
        default=30.0, gt=0, le=3600, description="How often expired offers and leases are closed"
    )
    gauge_refresh_s: float = Field(default=5.0, gt=0, le=600)
    clock_file: Path | None = Field(
        default=None,
        description="Tests only: a file holding a time shift in seconds (or an ISO instant) "
        "that leasing's clock adds, so a call's closing date can pass; unset in production",
    )
    run_call_worker: bool = Field(
        default=True,
        description="Open and close calls for applications as their dates pass, in this process",
    )
    call_tick_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often calls are opened and closed"
    )
    erasure_seal_after_s: float = Field(
        default=3700.0,
        ge=0,
        le=7 * 86400,
        description="How long after an erasure its second record is written on the artisan's "
        "key: past the topic's max.compaction.lag.ms (3,600 s in deploy/topics.json), so that "
        "record rolls the segment holding the erasure and the cleaner drops the person",
    )
    idp_admin_client_id: str | None = Field(
        default=None,
        max_length=255,
        description="The identity provider's confidential client whose service account may "
        "delete users (realm-management manage-users: fabrique-privacy in the committed "
        "realm); unset, the accounts of erased artisans wait to be deleted, with a warning",
    )
    idp_admin_client_secret: SecretStr | None = Field(
        default=None, description="The secret of LEASING_IDP_ADMIN_CLIENT_ID"
    )
    idp_admin_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^/]+(/.*)?/admin/realms/[^/]+$",
        description="The realm's admin REST base (https://id.example.org/admin/realms/"
        "fabrique); derived from the issuer (<base>/realms/<realm>) unless set, e.g. to reach "
        "the provider by an in-cluster address (its token endpoint is then taken there too)",
    )
    account_deletion_poll_s: float = Field(
        default=5.0, gt=0, le=3600, description="How often due account deletions are tried"
    )
    account_deletion_backoff_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="The wait after a failed account deletion, doubled at each failure",
    )
    account_deletion_backoff_max_s: float = Field(
        default=3600.0,
        gt=0,
        le=86400,
        description="The longest wait between two attempts to delete an account",
    )

    @property
    def idp_admin_base(self) -> str:
        """The realm's admin REST base: LEASING_IDP_ADMIN_URL, or derived from the issuer."""
        if self.idp_admin_url:
            return self.idp_admin_url.rstrip("/")
        base, _, realm = self.oidc_issuer.rstrip("/").rpartition("/realms/")
        return f"{base}/admin/realms/{realm}"

    @property
    def idp_token_url(self) -> str:
        """The token endpoint of the realm, on the same server as the admin REST base."""
        base, _, realm = self.idp_admin_base.rpartition("/admin/realms/")
        return f"{base}/realms/{realm}/protocol/openid-connect/token"

    retention_interval_s: float = Field(
        default=86400.0,
        gt=0,
        le=7 * 86400,
        description="How often the retention job runs (docs/privacy.md), in the process that "
        "runs the background work (LEASING_RUN_CALL_WORKER)",
    )
    retention_inactive_after_days: int = Field(
        default=730,
        ge=30,
        le=3650,
        description="An artisan with no activity for this long is warned that their account "
        "will be erased (CNIL: about two years after the last contact)",
    )
    retention_warning_days: int = Field(
        default=30,
        ge=1,
        le=365,
        description="How long after the inactivity warning the account is erased, unless the "
        "artisan is active again meanwhile",
    )
    retention_applications_after_days: int = Field(
        default=730,
        ge=30,
        le=3650,
        description="An application not selected has its texts replaced this long after its "
        "call was decided (or its last change, when later or without a call)",
    )
    retention_contract_days: int = Field(
        default=1826,
        ge=365,
        le=3650,
        description="A signed lease keeps its artisan's profile until this long after it ends "
        "(the limitation period, Code civil art. 2224: 5 years); the lease's free texts are "
        "cleared afterwards",
    )
    retention_privacy_requests_days: int = Field(
        default=1826,
        ge=365,
        le=3650,
        description="How long the audit log of exports and erasures is kept (the proof of the "
        "answers: 5 years)",
    )
    retention_outbox_days: float = Field(
        default=8.0,
        ge=1,
        le=90,
        description="Published outbox rows are deleted this long after publication (the "
        "topics keep 7 days)",
    )

    @model_validator(mode="after")
    def _no_dev_deleter_secret_in_prod(self) -> LeasingSettings:
        secret = self.idp_admin_client_secret
        if self.environment == "prod" and secret and secret.get_secret_value().startswith("dev-"):
            raise ValueError(
                "LEASING_IDP_ADMIN_CLIENT_SECRET is the committed development secret; in prod "
                "set the one Keycloak generated for the client (its Credentials tab)"
            )
        return self

    @model_validator(mode="after")
    def _no_clock_shift_in_prod(self) -> LeasingSettings:
        if self.environment == "prod" and self.clock_file is not None:
            raise ValueError("LEASING_CLOCK_FILE shifts leasing's clock: tests only, never prod")
        return self
