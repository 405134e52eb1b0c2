"""Notifications tables: subscriptions and their index terms, read models, deliveries, feed."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

from fabkit.db import UTCDateTime
from fabkit.events import utcnow
from fabkit.models import IdempotencyRecord, OutboxMessage, ProcessedEvent


def _tz() -> Any:
    # Aware UTC datetimes on SQLite too (which keeps no offset of its own).
    return UTCDateTime()


class Subscription(SQLModel, table=True):
    """A saved search of one artisan, with its channels (at most one of each kind)."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_artisan", "artisan_id", "created_at"),)

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    artisan_id: str = Field(sa_column=Column(String(64), nullable=False))
    name: str = Field(sa_column=Column(String(120), nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    frequency: str = Field(sa_column=Column(String(10), nullable=False))
    criteria: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # Range criteria copied out of `criteria` so the matching query filters them in SQL.
    min_surface_m2: float | None = Field(default=None, sa_column=Column(Float))
    max_surface_m2: float | None = Field(default=None, sa_column=Column(Float))
    max_rent_eur_m2_year: float | None = Field(default=None, sa_column=Column(Float))
    feature_mask: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # What the search is for: "workshop" (also every search that names no kind) or "stall";
    # a vacancy only reaches the searches of its own kind.
    space_kind: str = Field(
        default="workshop",
        sa_column=Column(String(10), nullable=False, server_default="workshop"),
    )
    # The logistics a unit must have (domain.LOGISTICS_BITS) and the figures it must reach,
    # copied out of `criteria` like the ranges above.
    logistics_mask: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    river_quay_within_m: int | None = Field(default=None, sa_column=Column(Integer))
    min_freight_weight_t: float | None = Field(default=None, sa_column=Column(Float))
    min_freight_height_m: float | None = Field(default=None, sa_column=Column(Float))
    webhook_url: str | None = Field(default=None, sa_column=Column(String(2000)))
    # Kept as given (signing needs it), never logged, never returned after creation.
    webhook_secret: str | None = Field(default=None, sa_column=Column(String(200)))
    webhook_enabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    email_address: str | None = Field(default=None, sa_column=Column(String(320)))
    email_enabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    feed_enabled: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    # When the webhook began failing with no delivered attempt since (None: it works, or has
    # not failed yet). Failing for `delivery_disable_after_failing_s` disables the search.
    webhook_failing_since: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # The language of this search's e-mails ("fr" or "en"); None: French.
    language: str | None = Field(default=None, sa_column=Column(String(2)))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class SubscriptionTerm(SQLModel, table=True):
    """Inverted index: one row per (dimension, accepted value) of each active subscription.

    The primary key (dim, value, subscription_id) is the covering index a vacancy probes.
    """

    __tablename__ = "subscription_terms"
    __table_args__ = (Index("ix_subscription_terms_subscription", "subscription_id"),)

    dim: str = Field(sa_column=Column(String(20), primary_key=True))
    value: str = Field(sa_column=Column(String(60), primary_key=True))
    subscription_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("subscriptions.id", ondelete="CASCADE"), primary_key=True
        )
    )


class Artisan(SQLModel, table=True):
    """Read model of leasing's artisan profiles (for eligibility and applicant e-mail)."""

    __tablename__ = "artisans"

    artisan_id: str = Field(sa_column=Column(String(64), primary_key=True))
    display_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    business_name: str | None = Field(default=None, sa_column=Column(String(200)))
    trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    business_created_on: date | None = Field(default=None, sa_column=Column(Date))
    legal_form: str | None = Field(default=None, sa_column=Column(String(30)))
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    contact_email: str | None = Field(default=None, sa_column=Column(String(320)))
    # Whether the identity provider verified `contact_email` for this account: only then does
    # the artisan's export show the guest alerts under that address (service/privacy.py).
    contact_email_verified: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Programme(SQLModel, table=True):
    """Read model of leasing's published programmes (the eligibility rules)."""

    __tablename__ = "programmes"

    programme_id: str = Field(sa_column=Column(String(64), primary_key=True))
    name: str = Field(sa_column=Column(String(200), nullable=False))
    site_kinds: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rules: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The version of leasing's programme catalogue this row comes from; a programme missing
    # from a later catalogue is retired and no longer qualifies anyone.
    catalogue_version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    retired: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Delivery(SQLModel, table=True):
    """One message to one channel: created with the event that caused it, sent by the worker.

    The id is the Standard Webhooks `webhook-id`: it stays the same across retries and
    redeliveries, so receivers deduplicate on it.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint(
            "event_id", "recipient_key", "channel", name="uq_deliveries_event_recipient_channel"
        ),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_artisan", "artisan_id", "created_at"),
        Index("ix_deliveries_subscription", "subscription_id", "created_at"),
        Index("ix_deliveries_batch", "batch_id"),
        Index("ix_deliveries_retention", "cleared_at", "created_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    event_id: str = Field(sa_column=Column(String(80), nullable=False))
    # The subscription id, or `artisan:<id>` for messages to an applicant.
    recipient_key: str = Field(sa_column=Column(String(80), nullable=False))
    channel: str = Field(sa_column=Column(String(10), nullable=False))
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    artisan_id: str = Field(sa_column=Column(String(64), nullable=False))
    subscription_id: str | None = Field(default=None, sa_column=Column(String(36)))
    vacancy_id: str | None = Field(default=None, sa_column=Column(String(64)))
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    digest: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    batch_id: str | None = Field(default=None, sa_column=Column(String(36)))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(_tz(), nullable=False)
    )
    claimed_until: datetime | None = Field(default=None, sa_column=Column(_tz()))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    last_status_code: int | None = Field(default=None, sa_column=Column(Integer))
    # When the vacancy opened: the start of the vacancy-to-delivery latency.
    occurred_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # W3C traceparent of the span that created the delivery (tracing on): its sends join the
    # trace of the event that caused them (fabkit.tracing).
    traceparent: str | None = Field(default=None, sa_column=Column(String(55)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # When retention cleared its content and error text, 90 days after its final state
    # (service/retention.py); None: it still holds them (or is not final yet).
    cleared_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class FeedItem(SQLModel, table=True):
    """An alert in an artisan's in-app feed."""

    __tablename__ = "feed_items"
    __table_args__ = (Index("ix_feed_items_artisan", "artisan_id", "id"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    artisan_id: str = Field(sa_column=Column(String(64), nullable=False))
    delivery_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    subscription_id: str | None = Field(default=None, sa_column=Column(String(36)))
    kind: str = Field(sa_column=Column(String(30), nullable=False))
    title: str = Field(sa_column=Column(String(300), nullable=False))
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    read_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


#: The owner (`Subscription.artisan_id`, `Delivery.artisan_id`) of a guest's saved searches and
#: their deliveries: `guest:<guest subscriber id>`. No account subject has this form.
GUEST_OWNER_PREFIX = "guest:"


class GuestSubscriber(SQLModel, table=True):
    """Someone who asked for e-mail alerts without an account, keyed by their (normalised)
    address: pending until they confirm one request from the e-mail, then confirmed. Their
    confirmed searches are `subscriptions` rows owned by `guest:<id>`."""

    __tablename__ = "guest_subscribers"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    language: str = Field(sa_column=Column(String(2), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    confirmed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class GuestConfirmation(SQLModel, table=True):
    """One request for alerts awaiting its confirmation click: the search it would save and the
    SHA-256 of the random token mailed (the token itself is kept nowhere). Single use,
    expiring; the rows also count the confirmation mails sent, for the rate limits."""

    __tablename__ = "guest_confirmations"
    __table_args__ = (
        Index("ix_guest_confirmations_guest", "guest_id", "created_at"),
        Index("ix_guest_confirmations_created", "created_at"),
    )

    token_hash: str = Field(sa_column=Column(String(64), primary_key=True))
    guest_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("guest_subscribers.id", ondelete="CASCADE"), nullable=False
        )
    )
    name: str = Field(sa_column=Column(String(120), nullable=False))
    criteria: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    language: str = Field(sa_column=Column(String(2), nullable=False))
    expires_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # The saved search the confirmation made.
    subscription_id: str | None = Field(default=None, sa_column=Column(String(36)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Erasure(SQLModel, table=True):
    """One erasure of a person's data here: by the person (`DELETE /v1/me`, requested_by
    `self`) or applied from leasing's `leasing.artisan.erased.v1` (its erasure id). Ids only."""

    __tablename__ = "erasures"
    __table_args__ = (Index("ix_erasures_subject", "subject", "erased_at"),)

    erasure_id: str = Field(sa_column=Column(String(64), primary_key=True))
    subject: str = Field(sa_column=Column(String(64), nullable=False))
    requested_by: str = Field(sa_column=Column(String(10), nullable=False))
    source: str = Field(sa_column=Column(String(10), nullable=False))
    erased_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class ErasedArtisan(SQLModel, table=True):
    """Tombstone of an artisan leasing erased (ids only): a replayed `registered`/`updated`
    event for them is ignored, so the read-model copy never comes back."""

    __tablename__ = "erased_artisans"

    artisan_id: str = Field(sa_column=Column(String(64), primary_key=True))
    erasure_id: str = Field(sa_column=Column(String(64), nullable=False))
    erased_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class VisitSlot(SQLModel, table=True):
    """Read model of inventory's workshop visit slots (`inventory.visit_slot.*.v1`), keyed by
    its slot id, plus `booked`: the places taken here, which only an atomic update moves (the
    capacity is never overbooked, whatever the concurrency)."""

    __tablename__ = "visit_slot_views"
    __table_args__ = (
        Index("ix_visit_slot_views_upcoming", "status", "starts_at"),
        Index("ix_visit_slot_views_landlord", "host_landlord_id", "starts_at"),
        Index("ix_visit_slot_views_artisan", "host_artisan_id", "starts_at"),
    )

    slot_id: str = Field(sa_column=Column(String(64), primary_key=True))
    site_id: str = Field(sa_column=Column(String(64), nullable=False))
    site_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    site_address: str = Field(default="", sa_column=Column(String(300), nullable=False))
    postcode: str = Field(default="", sa_column=Column(String(10), nullable=False))
    arrondissement: int | None = Field(default=None, sa_column=Column(Integer))
    latitude: float | None = Field(default=None, sa_column=Column(Float))
    longitude: float | None = Field(default=None, sa_column=Column(Float))
    host_kind: str = Field(default="site", sa_column=Column(String(10), nullable=False))
    host_landlord_id: str | None = Field(default=None, sa_column=Column(String(64)))
    host_artisan_id: str | None = Field(default=None, sa_column=Column(String(64)))
    unit_id: str | None = Field(default=None, sa_column=Column(String(64)))
    title: str = Field(default="", sa_column=Column(String(200), nullable=False))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    starts_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    capacity: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    booked: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    languages: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    accessibility: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    accessibility_notes: str | None = Field(default=None, sa_column=Column(Text))
    trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="scheduled", sa_column=Column(String(12), nullable=False))
    cancel_reason: str | None = Field(default=None, sa_column=Column(Text))
    version: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class VisitBooking(SQLModel, table=True):
    """Places booked on a visit by someone with an e-mail address (personal data: no account).
    The cancellation link's random token is mailed; only its SHA-256 is kept. Deleted 30 days
    after the visit by retention (service/retention.py)."""

    __tablename__ = "visit_bookings"
    __table_args__ = (
        Index("ix_visit_bookings_slot", "slot_id", "status"),
        Index("ix_visit_bookings_email", "email", "created_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    slot_id: str = Field(sa_column=Column(String(64), nullable=False))
    email: str = Field(sa_column=Column(String(320), nullable=False))
    language: str = Field(sa_column=Column(String(2), nullable=False))
    places: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    cancel_token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    status: str = Field(sa_column=Column(String(12), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    cancelled_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # The reminder the day before (sent once; set when claimed, cleared again if it failed).
    reminded_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # The host cancelled the visit: when this booking's person was told (same claim rule).
    slot_cancel_mailed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


__all__ = [
    "Artisan",
    "Delivery",
    "ErasedArtisan",
    "Erasure",
    "FeedItem",
    "GuestConfirmation",
    "GuestSubscriber",
    "IdempotencyRecord",
    "OutboxMessage",
    "ProcessedEvent",
    "Programme",
    "Subscription",
    "SubscriptionTerm",
    "VisitBooking",
    "VisitSlot",
]
