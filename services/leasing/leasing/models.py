"""Leasing tables: artisan profiles, the read model of units, applications and their
decisions, leases, and the last programme catalogue published.

Table names are distinct from every other service's so several services' models can be
imported in one process (tests) on the shared SQLModel metadata.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from fabkit.db import UTCDateTime
from fabkit.events import utcnow
from fabkit.models import IdempotencyRecord, OutboxMessage, ProcessedEvent

# The statuses of an offered or signed lease (domain.OPEN_LEASE_STATUSES), as SQL.
OPEN_LEASE_SQL = "status IN ('offered', 'active')"


def _tz() -> Any:
    return UTCDateTime()


class ArtisanProfile(SQLModel, table=True):
    """A registered artisan (or cooperative); its id is the subject of its tokens."""

    __tablename__ = "artisan_profiles"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    display_name: str = Field(sa_column=Column(String(120), nullable=False))
    business_name: str = Field(sa_column=Column(String(200), nullable=False))
    siret: str = Field(sa_column=Column(String(14), nullable=False, unique=True))
    trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    business_created_on: date = Field(sa_column=Column(Date, nullable=False))
    legal_form: str = Field(sa_column=Column(String(40), nullable=False))
    labels: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    contact_email: str = Field(sa_column=Column(String(320), nullable=False))
    # The identity provider verified that the account receives mail at contact_email (the
    # address the profile was written with equals the token's verified e-mail).
    contact_email_verified: bool = Field(
        default=False,
        sa_column=Column(Boolean, nullable=False, server_default=false()),
    )
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    registered_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    # Set when the profile was erased (pseudonymised): the account gets 410 from then on.
    erased_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # The artisan's last contact (registration, a write of theirs, reading their profile at
    # most once a day): the inactive-account retention rule counts from it.
    last_active_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(_tz(), nullable=False, index=True)
    )
    # The retention job's warning and the erasure it announced; activity after the warning
    # (last_active_at later than it) cancels both.
    inactivity_warned_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    inactivity_erasure_due_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class PrivacyRequest(SQLModel, table=True):
    """The audit log of data-protection requests (export, erasure), self or admin: ids only."""

    __tablename__ = "privacy_requests"
    __table_args__ = (
        Index("ix_privacy_requests_subject", "subject_artisan_id", "created_at"),
        Index("ix_privacy_requests_created", "created_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    kind: str = Field(sa_column=Column(String(20), nullable=False))  # export | erasure
    subject_artisan_id: str = Field(sa_column=Column(String(36), nullable=False))
    requested_by: str = Field(sa_column=Column(String(10), nullable=False))  # self | admin
    requested_by_id: str = Field(sa_column=Column(String(120), nullable=False))
    request_reference: str | None = Field(default=None, sa_column=Column(String(120)))
    note: str | None = Field(default=None, sa_column=Column(String(500)))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    completed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # Erasures: when the second id-only record on the artisan's key was written (it rolls the
    # compacted topic's segment that holds the erasure, so the cleaner can drop the person).
    sealed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class AccountDeletion(SQLModel, table=True):
    """The identity provider's account of an erased artisan, to delete until it is gone."""

    __tablename__ = "account_deletions"
    __table_args__ = (Index("ix_account_deletions_due", "deleted_at", "next_attempt_at"),)

    # The Keycloak user id: the subject of the artisan's tokens, i.e. the profile's id.
    artisan_id: str = Field(sa_column=Column(String(36), primary_key=True))
    erasure_id: str = Field(sa_column=Column(String(36), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    next_attempt_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    # The last failure's kind (an exception type or an HTTP status), never a response body.
    last_error: str | None = Field(default=None, sa_column=Column(String(200)))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class UnitListing(SQLModel, table=True):
    """Leasing's read model of one unit, fed only by inventory.unit.events."""

    __tablename__ = "unit_listings"
    __table_args__ = (
        Index("ix_unit_listings_status", "status", "arrondissement"),
        Index("ix_unit_listings_landlord", "landlord_id"),
    )

    unit_id: str = Field(sa_column=Column(String(36), primary_key=True))
    site_id: str = Field(sa_column=Column(String(36), nullable=False))
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    landlord_name: str = Field(default="", sa_column=Column(String(200), nullable=False))
    site_name: str = Field(sa_column=Column(String(200), nullable=False))
    site_kind: str = Field(sa_column=Column(String(30), nullable=False))
    address: str = Field(sa_column=Column(String(300), nullable=False))
    postcode: str = Field(sa_column=Column(String(5), nullable=False))
    arrondissement: int = Field(sa_column=Column(Integer, nullable=False))
    reference: str = Field(sa_column=Column(String(60), nullable=False))
    floor: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    surface_m2: float = Field(sa_column=Column(Float, nullable=False))
    allowed_trades: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    use_class: str = Field(sa_column=Column(String(20), nullable=False))
    rent_eur_m2_year: float = Field(sa_column=Column(Float, nullable=False))
    charges_eur_m2_year: float = Field(default=0, sa_column=Column(Float, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    available_from: date | None = Field(default=None, sa_column=Column(Date))
    opens_for_visits: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    # The open vacancy (from vacancy_opened) until vacancy_closed; null when not open.
    vacancy_id: str | None = Field(default=None, sa_column=Column(String(36)))
    vacancy_opened_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    # inventory's unit version: older events than the one applied are ignored.
    version: int = Field(sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Application(SQLModel, table=True):
    __tablename__ = "applications"
    __table_args__ = (
        # One application per artisan per vacancy, whatever became of it.
        UniqueConstraint("artisan_id", "vacancy_id", name="uq_applications_artisan_vacancy"),
        Index("ix_applications_unit", "unit_id", "status"),
        Index("ix_applications_vacancy", "vacancy_id", "status"),
        Index("ix_applications_artisan", "artisan_id", "submitted_at"),
        Index("ix_applications_landlord", "landlord_id", "submitted_at"),
        CheckConstraint("score >= 0", name="score_non_negative"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    artisan_id: str = Field(
        sa_column=Column(String(36), ForeignKey("artisan_profiles.id"), nullable=False)
    )
    unit_id: str = Field(
        sa_column=Column(String(36), ForeignKey("unit_listings.unit_id"), nullable=False)
    )
    vacancy_id: str = Field(sa_column=Column(String(36), nullable=False))
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    programme_id: str = Field(sa_column=Column(String(60), nullable=False))
    project: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    score: int = Field(sa_column=Column(Integer, nullable=False))
    max_score: int = Field(sa_column=Column(Integer, nullable=False))
    # The grid's lines as evaluated at submission: [{criterion_id, label, points, ...}].
    score_breakdown: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    submitted_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    # The call for applications of the vacancy (null for applications made before calls).
    call_id: str | None = Field(
        default=None,
        sa_column=Column(String(36), ForeignKey("calls.id"), index=True),
    )
    # When the retention job replaced the texts of this application, not selected, past the
    # retention period (the row, ids and scores stay: the published results stay checkable).
    pseudonymised_at: datetime | None = Field(default=None, sa_column=Column(_tz()))


class ApplicationDecision(SQLModel, table=True):
    """Who changed an application's status, when and why: append-only."""

    __tablename__ = "application_decisions"
    __table_args__ = (Index("ix_application_decisions_application", "application_id", "id"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    application_id: str = Field(
        sa_column=Column(String(36), ForeignKey("applications.id"), nullable=False)
    )
    decision: str = Field(sa_column=Column(String(30), nullable=False))
    status_after: str = Field(sa_column=Column(String(20), nullable=False))
    actor_role: str = Field(sa_column=Column(String(20), nullable=False))
    actor_id: str = Field(sa_column=Column(String(120), nullable=False))
    reason: str | None = Field(default=None, sa_column=Column(Text))
    lease_id: str | None = Field(default=None, sa_column=Column(String(36)))
    decided_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    # The published out-of-rank ground (programme catalogue `out_of_rank_grounds`) of an offer
    # to someone other than the first in rank, or of a rejection; the free text is `reason`.
    ground: str | None = Field(default=None, sa_column=Column(String(60)))


class Lease(SQLModel, table=True):
    """An offer, then (once accepted) the lease itself."""

    __tablename__ = "leases"
    __table_args__ = (
        # Never two offered-or-active leases on one unit: both SQLite and PostgreSQL enforce
        # a partial unique index, so concurrent offers cannot both commit.
        Index(
            "uq_leases_one_open_per_unit",
            "unit_id",
            unique=True,
            sqlite_where=text(OPEN_LEASE_SQL),
            postgresql_where=text(OPEN_LEASE_SQL),
        ),
        Index("ix_leases_artisan", "artisan_id", "offered_at"),
        Index("ix_leases_landlord", "landlord_id", "offered_at"),
        Index("ix_leases_status_expiry", "status", "offer_expires_at"),
        CheckConstraint("monthly_rent_cents >= 0", name="rent_non_negative"),
        CheckConstraint("end_date > start_date", name="ends_after_start"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    unit_id: str = Field(
        sa_column=Column(String(36), ForeignKey("unit_listings.unit_id"), nullable=False)
    )
    vacancy_id: str = Field(sa_column=Column(String(36), nullable=False))
    application_id: str = Field(
        sa_column=Column(String(36), ForeignKey("applications.id"), nullable=False, unique=True)
    )
    artisan_id: str = Field(sa_column=Column(String(36), nullable=False))
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    programme_id: str = Field(sa_column=Column(String(60), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    monthly_rent_cents: int = Field(sa_column=Column(Integer, nullable=False))
    start_date: date = Field(sa_column=Column(Date, nullable=False))
    end_date: date = Field(sa_column=Column(Date, nullable=False))
    message: str | None = Field(default=None, sa_column=Column(Text))
    offered_by: str = Field(sa_column=Column(String(120), nullable=False))
    offered_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    offer_expires_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    signed_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    ended_on: date | None = Field(default=None, sa_column=Column(Date))
    end_reason: str | None = Field(default=None, sa_column=Column(Text))
    renewals: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class Call(SQLModel, table=True):
    """A call for applications: how one vacancy is let, from opening to published results."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_status_closes", "status", "closes_at"),
        Index("ix_calls_status_opens", "status", "opens_at"),
        Index("ix_calls_unit", "unit_id"),
        Index("ix_calls_landlord", "landlord_id"),
        CheckConstraint("closes_at > opens_at", name="closes_after_opening"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    vacancy_id: str = Field(sa_column=Column(String(36), nullable=False, unique=True))
    unit_id: str = Field(
        sa_column=Column(String(36), ForeignKey("unit_listings.unit_id"), nullable=False)
    )
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    opens_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    closes_at: datetime = Field(sa_column=Column(_tz(), nullable=False))
    # The programme catalogue version in force when the call opened: its ranking uses it.
    catalogue_version: int = Field(sa_column=Column(Integer, nullable=False))
    ranking_frozen_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    decided_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    results_published_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    appeals_close_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class CallRanking(SQLModel, table=True):
    """One submitted application's place in its call's ranking, frozen at closing."""

    __tablename__ = "call_rankings"
    __table_args__ = (
        UniqueConstraint("call_id", "rank", name="uq_call_rankings_call_rank"),
        CheckConstraint("rank >= 1", name="rank_positive"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    call_id: str = Field(sa_column=Column(String(36), ForeignKey("calls.id"), nullable=False))
    application_id: str = Field(
        sa_column=Column(String(36), ForeignKey("applications.id"), nullable=False, unique=True)
    )
    rank: int = Field(sa_column=Column(Integer, nullable=False))
    score: int = Field(sa_column=Column(Integer, nullable=False))
    max_score: int = Field(sa_column=Column(Integer, nullable=False))
    # The grid's lines as evaluated from the call's catalogue version at freeze.
    score_breakdown: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    programme_id: str = Field(sa_column=Column(String(60), nullable=False))


class JuryMember(SQLModel, table=True):
    """A member of a call's jury; a declared conflict of interest recuses them from it.
    Members act in a public capacity: their names and organisations are published."""

    __tablename__ = "jury_members"
    __table_args__ = (UniqueConstraint("call_id", "position", name="uq_jury_members_position"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    )
    call_id: str = Field(sa_column=Column(String(36), ForeignKey("calls.id"), nullable=False))
    position: int = Field(sa_column=Column(Integer, nullable=False))
    name: str = Field(sa_column=Column(String(120), nullable=False))
    organisation: str = Field(sa_column=Column(String(200), nullable=False))
    role: str = Field(sa_column=Column(String(120), nullable=False))
    conflict_of_interest: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    declaration: str | None = Field(default=None, sa_column=Column(Text))


class JurySession(SQLModel, table=True):
    """The jury's session of a call (one per call): its date, minutes and decision."""

    __tablename__ = "jury_sessions"

    call_id: str = Field(sa_column=Column(String(36), ForeignKey("calls.id"), primary_key=True))
    session_date: date = Field(sa_column=Column(Date, nullable=False))
    minutes: str = Field(sa_column=Column(Text, nullable=False))
    decision: str = Field(sa_column=Column(Text, nullable=False))
    recorded_by: str = Field(sa_column=Column(String(120), nullable=False))
    recorded_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))


class Appeal(SQLModel, table=True):
    """An applicant's appeal against a call's published results (one per application), and
    the officer's answer."""

    __tablename__ = "appeals"
    __table_args__ = (
        Index("ix_appeals_call", "call_id", "filed_at"),
        Index("ix_appeals_artisan", "artisan_id", "filed_at"),
        Index("ix_appeals_landlord", "landlord_id", "filed_at"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    application_id: str = Field(
        sa_column=Column(String(36), ForeignKey("applications.id"), nullable=False, unique=True)
    )
    call_id: str = Field(sa_column=Column(String(36), ForeignKey("calls.id"), nullable=False))
    artisan_id: str = Field(sa_column=Column(String(36), nullable=False))
    landlord_id: str = Field(sa_column=Column(String(36), nullable=False))
    status: str = Field(sa_column=Column(String(20), nullable=False))
    grounds: str = Field(sa_column=Column(Text, nullable=False))
    filed_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    outcome: str | None = Field(default=None, sa_column=Column(String(20)))
    answer: str | None = Field(default=None, sa_column=Column(Text))
    answered_by: str | None = Field(default=None, sa_column=Column(String(120)))
    answered_at: datetime | None = Field(default=None, sa_column=Column(_tz()))
    version: int = Field(default=1, sa_column=Column(Integer, nullable=False))


class ProgrammePublication(SQLModel, table=True):
    """The catalogue version in force (one row, the head of `programme_versions`): every
    change of the catalogue locks it, so two changes never take the same version number."""

    __tablename__ = "programme_publications"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, sa_column=Column(Integer, primary_key=True, autoincrement=False))
    config_hash: str = Field(sa_column=Column(String(64), nullable=False))
    catalogue_version: int = Field(sa_column=Column(Integer, nullable=False))
    programme_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    published_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))


class ProgrammeVersion(SQLModel, table=True):
    """One programme catalogue as it was published: every version is kept, so a call ranks
    under the version it opened with and auditors can read any past rule."""

    __tablename__ = "programme_versions"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    version: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    config_hash: str = Field(sa_column=Column(String(64), nullable=False))
    # The whole catalogue, eligibility.Catalogue's JSON: {"programmes": [...]}.
    body: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The token subject (officer, admin) of the change, or "seed" for the programme file.
    created_by: str = Field(sa_column=Column(String(100), nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(_tz(), nullable=False))
    note: str | None = Field(default=None, sa_column=Column(String(500)))


__all__ = [
    "Appeal",
    "Application",
    "ApplicationDecision",
    "ArtisanProfile",
    "Call",
    "CallRanking",
    "IdempotencyRecord",
    "JuryMember",
    "JurySession",
    "Lease",
    "OutboxMessage",
    "PrivacyRequest",
    "ProcessedEvent",
    "ProgrammePublication",
    "ProgrammeVersion",
    "UnitListing",
]
