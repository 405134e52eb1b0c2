"""Notifications settings (env prefix NOTIFICATIONS_)."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from fabkit.settings import ServiceSettings
from notifications.events.consumed import (
    APPLICATION_TOPIC,
    ARTISAN_TOPIC,
    CALL_TOPIC,
    LEASE_TOPIC,
    PRIVACY_TOPIC,
    PROGRAMME_TOPIC,
    UNIT_TOPIC,
)

#: Development default of the unsubscribe-link key; refused in prod.
DEV_UNSUBSCRIBE_SECRET = "dev-only-unsubscribe-links-change-me-0000"  # noqa: S105


class NotificationsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATIONS_", extra="ignore")

    service_name: str = "notifications"
    database_url: str = "sqlite+aiosqlite:///./.run/notifications.db"
    consumer_group: str = "notifications"
    dlq_topic: str = "notifications.dlq"
    unit_topic: str = UNIT_TOPIC
    artisan_topic: str = ARTISAN_TOPIC
    programme_topic: str = PROGRAMME_TOPIC
    application_topic: str = APPLICATION_TOPIC
    lease_topic: str = LEASE_TOPIC
    call_topic: str = CALL_TOPIC
    # Leasing's id-only privacy events (inactivity warnings: the e-mail before an erasure).
    privacy_topic: str = PRIVACY_TOPIC
    # Inventory's workshop visit slots (the read model bookings are made against), e.g.
    # `inventory.visit_slot.events` (VISIT_SLOT_TOPIC). Unset: not consumed — brokers never
    # auto-create topics, and the topic is not in deploy/topics.json until inventory publishes it.
    visit_slot_topic: str | None = None

    # Where artisans reach this service: the base of the unsubscribe links in e-mails.
    public_base_url: str = "http://127.0.0.1:8003"
    # Signs the unsubscribe links (HMAC-SHA256). It signs no access token: those come from
    # the identity provider.
    unsubscribe_secret: SecretStr = SecretStr(DEV_UNSUBSCRIBE_SECRET)

    # Delivery worker.
    run_delivery_worker: bool = True
    delivery_concurrency: int = Field(default=16, ge=1, le=500)
    # Retries (docs/reliability.md): the wait before the 2nd, 3rd... attempt, in seconds. The
    # default is Svix's published schedule (docs.svix.com/retries): 5 s, 5 min, 30 min, 2 h,
    # 5 h, 10 h, 10 h, so the last of 8 attempts comes about 27.6 hours after the first. As an
    # environment variable, a JSON list: NOTIFICATIONS_DELIVERY_RETRY_SCHEDULE_S='[0.2, 0.4]'.
    delivery_retry_schedule_s: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18_000.0, 36_000.0, 36_000.0],
        min_length=1,
        max_length=49,
    )
    # Each wait is drawn between (1 - jitter) and (1 + jitter) times the schedule's, so that
    # the retries of a burst do not all come back at the same instant.
    delivery_retry_jitter: float = Field(default=0.2, ge=0, le=0.5)
    # Attempts in all before a delivery is dead; past the end of the schedule its last wait
    # repeats. Default: one more than the schedule's waits.
    delivery_max_attempts: int = Field(default=8, ge=1, le=50)
    # The longest wait between two attempts: bounds the schedule and a receiver's Retry-After.
    delivery_backoff_max_s: float = Field(default=36_000.0, gt=0, le=86_400)
    # A search whose webhook has failed every attempt for this long is disabled and its
    # artisan e-mailed why (Svix's rule: 5 days); a delivered attempt resets the clock.
    delivery_disable_after_failing_s: float = Field(default=5 * 86_400.0, gt=0, le=90 * 86_400)
    delivery_poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # A claimed delivery whose worker died becomes due again after this long (PostgreSQL;
    # on SQLite the single worker takes its own claims back at start).
    delivery_claim_lease_s: float = Field(default=120.0, gt=0, le=3600)
    # How long a stopping worker lets in-flight sends finish before cancelling them.
    delivery_shutdown_grace_s: float = Field(default=5.0, ge=0, le=14)
    digest_hour_utc: int = Field(default=7, ge=0, le=23)

    # Webhooks.
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Webhook URLs resolving to loopback, private, link-local, multicast or reserved addresses
    # are refused unless they fall in one of these networks (e.g. ["127.0.0.0/8", "::1/128"]).
    webhook_allowed_networks: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    webhook_require_https: bool = False

    # E-mail.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_timeout_s: float = Field(default=15.0, gt=0, le=120)
    mail_from: str = "Fabrique <alertes@fabrique.paris>"

    # Alerts without an account (guest subscribers, double opt-in).
    # Where people reach the portal: the confirmation link of a guest's e-mail opens its page
    # `/alerts/confirm/{token}`, and the invitation to create an account points to it.
    portal_base_url: str = "http://127.0.0.1:8000"
    guest_confirmation_ttl_s: float = Field(default=48 * 3600.0, ge=60, le=30 * 86_400)
    # Confirmation e-mails to one address within an hour; the next request gets a 429.
    guest_confirmations_per_address_per_hour: int = Field(default=3, ge=1, le=100)
    # Guest requests (each one mails a confirmation) accepted per minute over every address.
    guest_requests_per_minute: int = Field(default=60, ge=1, le=100_000)

    # Workshop visits (service/visits.py): bookings by one address within an hour before a 429,
    # and how often the process that runs the delivery worker mails the reminders (24 to 12
    # hours before a visit) and the host's cancellations.
    visit_bookings_per_address_per_hour: int = Field(default=5, ge=1, le=100)
    visit_mail_interval_s: float = Field(default=300.0, ge=0.05, le=3600)

    # Open data (docs/open-data.md): the anonymised demand file is computed from the saved
    # searches at most this often, and set against the supply read from inventory's public
    # vacancies file at this URL (unset: the supply columns stay empty).
    open_data_supply_url: str | None = None
    open_data_cache_s: float = Field(default=3600.0, ge=0, le=86_400)
    open_data_supply_timeout_s: float = Field(default=10.0, gt=0, le=60)

    # Retention (service/retention.py, docs/privacy.md): how often the process that runs the
    # delivery worker applies the rules (and on demand: POST /v1/privacy/retention/run).
    retention_interval_s: float = Field(default=86_400.0, ge=60, le=7 * 86_400)
    # Tests only: a file holding a time shift in seconds (or an ISO instant) that the retention
    # job's clock (and its metric) adds, so a rule's period can pass; refused in prod.
    clock_file: Path | None = None

    @model_validator(mode="after")
    def _prod_rules(self) -> NotificationsSettings:
        if self.environment == "prod" and self.clock_file is not None:
            raise ValueError(
                "NOTIFICATIONS_CLOCK_FILE shifts the retention job's clock: tests only, never prod"
            )
        if self.environment == "prod" and any(
            net.prefixlen == 0 for net in self.webhook_allowed_networks
        ):
            raise ValueError("webhook_allowed_networks must not allow every address in prod")
        if self.environment == "prod":
            secret = self.unsubscribe_secret.get_secret_value()
            if secret == DEV_UNSUBSCRIBE_SECRET:
                raise ValueError(
                    "unsubscribe_secret is the development default; set a real one in prod"
                )
            if len(secret) < 32:
                raise ValueError("unsubscribe_secret must be at least 32 characters in prod")
        return self
