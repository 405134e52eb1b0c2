"""What notifications reads from other services, parsed tolerantly (unknown fields ignored).

The producers own these contracts (inventory's `events/published.py`, leasing's events); only
the fields used here are declared, with defaults wherever a field is not essential.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from pydantic import Field, field_validator

from fabkit.events import ConsumedPayload

# Topics (their defaults: each can be renamed in settings) and the event types read on them.
UNIT_TOPIC = "inventory.unit.events"
ARTISAN_TOPIC = "leasing.artisan.events"
PROGRAMME_TOPIC = "leasing.programme.events"
APPLICATION_TOPIC = "leasing.application.events"
LEASE_TOPIC = "leasing.lease.events"
CALL_TOPIC = "leasing.call.events"
PRIVACY_TOPIC = "leasing.privacy.events"
# Inventory's workshop visit slots (its topic pattern `inventory.<aggregate>.events`).
VISIT_SLOT_TOPIC = "inventory.visit_slot.events"

VACANCY_OPENED = "inventory.unit.vacancy_opened.v1"
UNIT_TYPES_IGNORED = frozenset(
    {
        "inventory.unit.registered.v1",
        "inventory.unit.updated.v1",
        "inventory.unit.vacancy_closed.v1",
        "inventory.unit.withdrawn.v1",
    }
)
ARTISAN_REGISTERED = "leasing.artisan.registered.v1"
ARTISAN_UPDATED = "leasing.artisan.updated.v1"
ARTISAN_ERASED = "leasing.artisan.erased.v1"
PROGRAMME_PUBLISHED = "leasing.programme.published.v1"
APPLICATION_DECIDED = "leasing.application.decided.v1"
LEASE_OFFERED = "leasing.lease.offered.v1"
CALL_RESULTS_PUBLISHED = "leasing.call.results_published.v1"
APPEAL_ANSWERED = "leasing.appeal.answered.v1"
CALL_CLOSED = "leasing.call.closed.v1"
CALL_DECIDED = "leasing.call.decided.v1"
INACTIVITY_WARNED = "leasing.artisan.inactivity_warned.v1"
VISIT_SLOT_PUBLISHED = "inventory.visit_slot.published.v1"
VISIT_SLOT_UPDATED = "inventory.visit_slot.updated.v1"
VISIT_SLOT_CANCELLED = "inventory.visit_slot.cancelled.v1"


class LogisticsIn(ConsumedPayload):
    """The logistics of a unit's site (inventory's `logistics`); absent means none."""

    rail_siding: bool = False
    river_quay_distance_m: int | None = None
    petite_ceinture_station: str | None = None
    freight_max_weight_t: float | None = None
    freight_max_height_m: float | None = None
    cargo_bike_spaces: int = 0


class UnitSnapshotIn(ConsumedPayload):
    unit_id: str
    site_id: str = ""
    landlord_id: str = ""
    landlord_name: str = ""
    reference: str = ""
    floor: int = 0
    surface_m2: float
    ceiling_height_m: float | None = None
    floor_load_kg_m2: float | None = None
    power_kva: float | None = None
    goods_lift: bool = False
    loading_dock: bool = False
    extraction: bool = False
    step_free_access: bool = False
    allowed_trades: list[str] = Field(default_factory=list)
    use_class: str = "production"
    rent_eur_m2_year: float
    charges_eur_m2_year: float = 0.0
    status: str = "available"
    available_from: date | None = None
    site_name: str = ""
    site_kind: str
    address: str = ""
    postcode: str = ""
    arrondissement: int
    latitude: float | None = None
    longitude: float | None = None
    opens_for_visits: bool = False
    version: int = 0
    # Issue 18: a seasonal stall and the period it is let for; the site's logistics. Events
    # from before them are workshops with no logistics given.
    space_kind: str = "workshop"
    period_start: date | None = None
    period_end: date | None = None
    logistics: LogisticsIn = Field(default_factory=LogisticsIn)


class VacancyOpenedIn(ConsumedPayload):
    vacancy_id: str
    opened_at: datetime
    unit: UnitSnapshotIn

    @field_validator("opened_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        # Inventory sends RFC 3339 with an offset; a bare time is read as UTC, not rejected.
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ArtisanIn(ConsumedPayload):
    artisan_id: str
    display_name: str = ""
    business_name: str | None = None
    trades: list[str] = Field(default_factory=list)
    business_created_on: date | None = None
    legal_form: str | None = None
    labels: list[str] = Field(default_factory=list)
    contact_email: str | None = None
    contact_email_verified: bool = False
    registered_at: datetime | None = None
    version: int = 0


class ArtisanEventIn(ConsumedPayload):
    artisan: ArtisanIn


class ArtisanErasedIn(ConsumedPayload):
    """Leasing erased an artisan: ids only, no personal data (docs/privacy.md)."""

    artisan_id: str
    erasure_id: str
    erased_at: datetime
    requested_by: str = "self"


class InactivityWarnedIn(ConsumedPayload):
    """Leasing warned an inactive artisan that their account will be erased (ids and dates
    only): notifications e-mails them, to the address of its copy of the profile."""

    artisan_id: str
    warned_at: datetime
    erasure_due_at: datetime
    last_active_at: datetime

    @field_validator("warned_at", "erasure_due_at", "last_active_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class ProgrammeRulesIn(ConsumedPayload):
    max_business_age_years: int | None = None
    allowed_legal_forms: list[str] | None = None
    requires_trade_match: bool = False
    rent_cap_eur_m2_year: float | None = None


class ProgrammeIn(ConsumedPayload):
    programme_id: str
    name: str = ""
    site_kinds: list[str] = Field(default_factory=list)
    rules: ProgrammeRulesIn = Field(default_factory=ProgrammeRulesIn)


class CatalogueIn(ConsumedPayload):
    """The catalogue a programme was published with; programmes it leaves out are retired."""

    version: int = 0
    programme_ids: list[str] | None = None


class ProgrammePublishedIn(ConsumedPayload):
    programme: ProgrammeIn
    catalogue: CatalogueIn = Field(default_factory=CatalogueIn)

    @classmethod
    def of(cls, data: dict[str, Any]) -> ProgrammePublishedIn:
        """Leasing nests the programme under `programme`; a bare programme is accepted too."""
        if isinstance(data.get("programme"), dict):
            return cls.model_validate(data)
        return cls(programme=ProgrammeIn.model_validate(data))


class ApplicationIn(ConsumedPayload):
    application_id: str
    unit_id: str
    score: int | None = None
    max_score: int | None = None


class ApplicationDecidedIn(ConsumedPayload):
    """A decision on an application: the applicant is told by e-mail and in the feed."""

    application: ApplicationIn
    artisan_id: str
    decision: str
    reason: str | None = None
    decided_at: datetime | None = None


class LeaseIn(ConsumedPayload):
    lease_id: str
    unit_id: str
    monthly_rent_eur: float | None = None
    start_date: date | None = None
    end_date: date | None = None
    offer_expires_at: datetime | None = None


class LeaseOfferedIn(ConsumedPayload):
    """A lease offered to an applicant, who is told by e-mail and in the feed."""

    lease: LeaseIn
    artisan_id: str


# Calls for applications: results and appeals --------------------------------------------------


class CallIn(ConsumedPayload):
    call_id: str
    unit_id: str


class ResultLineIn(ConsumedPayload):
    application_id: str
    artisan_id: str
    rank: int
    score: int | None = None
    max_score: int | None = None
    outcome: str


class CallResultsPublishedIn(ConsumedPayload):
    """A call's results were published: each ranked applicant is told their rank and outcome."""

    call: CallIn
    published_at: datetime | None = None
    appeals_close_at: datetime | None = None
    results: list[ResultLineIn] = Field(default_factory=list)


class AppealIn(ConsumedPayload):
    appeal_id: str
    application_id: str
    call_id: str
    artisan_id: str
    outcome: str | None = None


class AppealAnsweredIn(ConsumedPayload):
    """An officer answered an appeal: the appellant is told the answer."""

    appeal: AppealIn
    answer: str
    answered_at: datetime | None = None


class CallRefIn(ConsumedPayload):
    call_id: str
    unit_id: str = ""


class RankedIn(ConsumedPayload):
    application_id: str
    artisan_id: str
    rank: int
    score: int | None = None
    max_score: int | None = None


class CallClosedIn(ConsumedPayload):
    """A call closed: every ranked applicant is told their rank."""

    call: CallRefIn
    closed_at: datetime | None = None
    ranking: list[RankedIn] = Field(default_factory=list)


class CallDecidedIn(ConsumedPayload):
    """A call was decided: every ranked applicant is told."""

    call: CallRefIn
    outcome: str
    application_id: str | None = None
    reason: str | None = None
    decided_at: datetime | None = None
    ranking: list[RankedIn] = Field(default_factory=list)


# Workshop visits -------------------------------------------------------------------------------


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class VisitSlotIn(ConsumedPayload):
    """A visit slot as inventory publishes it (a site or one of its tenants opens for visits)."""

    slot_id: str
    site_id: str = ""
    site_name: str = ""
    site_address: str = ""
    postcode: str = ""
    arrondissement: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    host_kind: str = "site"
    host_landlord_id: str | None = None
    host_artisan_id: str | None = None
    unit_id: str | None = None
    title: str = ""
    description: str = ""
    starts_at: datetime
    ends_at: datetime
    capacity: int = 0
    languages: list[str] = Field(default_factory=list)
    accessibility: list[str] = Field(default_factory=list)
    accessibility_notes: str | None = None
    trades: list[str] = Field(default_factory=list)
    status: str = "scheduled"
    version: int = 0

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _utc(value)


class VisitSlotEventIn(ConsumedPayload):
    """`inventory.visit_slot.{published,updated,cancelled}.v1`: the slot, and on a cancellation
    the host's reason."""

    slot: VisitSlotIn
    reason: str | None = None
