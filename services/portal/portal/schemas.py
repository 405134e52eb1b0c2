"""Tolerant views of the public APIs' answers: the fields the pages show, anything else ignored,
so a service adding a field never breaks a page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SiteSummary(_View):
    id: str
    name: str
    kind: str
    address: str
    postcode: str
    arrondissement: int
    opens_for_visits: bool = False


class Unit(_View):
    id: str
    site_id: str
    landlord_id: str
    reference: str
    floor: int
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
    charges_eur_m2_year: float
    status: str
    available_from: date | None = None
    site: SiteSummary

    @property
    def rent_month(self) -> float:
        """The unit's rent for one month (€/m²/year × m² / 12)."""
        return self.rent_eur_m2_year * self.surface_m2 / 12

    @property
    def charges_month(self) -> float:
        return self.charges_eur_m2_year * self.surface_m2 / 12

    @property
    def total_month(self) -> float:
        return self.rent_month + self.charges_month


class UnitPage(_View):
    items: list[Unit]
    total: int
    limit: int
    offset: int


class Site(_View):
    id: str
    name: str
    kind: str
    address: str
    postcode: str
    arrondissement: int
    latitude: float | None = None
    longitude: float | None = None
    opens_for_visits: bool = False
    description: str | None = None


class SitePage(_View):
    items: list[Site]
    total: int


class Listing(_View):
    """Leasing's view of a unit: who lets it and which programmes cover it."""

    unit_id: str
    landlord_name: str
    programme_ids: list[str] = Field(default_factory=list)
    site_name: str = ""
    reference: str = ""
    arrondissement: int | None = None
    surface_m2: float | None = None
    charges_eur_m2_year: float | None = None

    @property
    def charges_month(self) -> float | None:
        """The unit's charges for one month, when leasing knows its surface and charges."""
        if self.surface_m2 is None or self.charges_eur_m2_year is None:
            return None
        return self.charges_eur_m2_year * self.surface_m2 / 12


class Criterion(_View):
    id: str
    kind: str
    label: str
    points: int
    under_years: int | None = None
    labels: list[str] | None = None
    legal_forms: list[str] | None = None
    points_per_month: int | None = None


class Rules(_View):
    max_business_age_years: int | None = None
    allowed_legal_forms: list[str] | None = None
    requires_trade_match: bool = False
    rent_cap_eur_m2_year: float
    max_residency_months: int
    renewable_times: int = 0


class OutOfRankGround(_View):
    """A published reason for not following the ranking's order."""

    id: str
    label: str
    description: str = ""


class Programme(_View):
    id: str
    name: str
    description: str = ""
    site_kinds: list[str]
    rules: Rules
    scoring: list[Criterion]
    max_points: int
    out_of_rank_grounds: list[OutOfRankGround] = Field(default_factory=list)


class Catalogue(_View):
    programmes: list[Programme]

    def covering(self, site_kind: str, ids: list[str] | None = None) -> list[Programme]:
        """The programmes that cover a unit: leasing's list when known, else by site kind."""
        if ids:
            return [p for p in self.programmes if p.id in ids]
        return [p for p in self.programmes if site_kind in p.site_kinds]


# My space: leasing's answers about the signed-in artisan -------------------------------------


class Profile(_View):
    """The artisan's profile (leasing `ArtisanOut`)."""

    id: str
    display_name: str
    business_name: str
    siret: str
    trades: list[str] = Field(default_factory=list)
    business_created_on: date
    legal_form: str
    labels: list[str] = Field(default_factory=list)
    contact_email: str
    version: int = 0


class CriterionPoints(_View):
    criterion_id: str
    kind: str
    label: str
    points: int
    max_points: int
    detail: str = ""


class RuleFailure(_View):
    programme_id: str
    rule: str
    message: str
    required: object = None
    actual: object = None


class Verdict(_View):
    """How the artisan fares under one programme of a unit."""

    programme_id: str
    name: str
    eligible: bool
    failures: list[RuleFailure] = Field(default_factory=list)
    score: int
    max_score: int
    criteria: list[CriterionPoints] = Field(default_factory=list)
    monthly_rent_cap_eur: float | None = None

    def failure(self, rule: str) -> RuleFailure | None:
        return next((f for f in self.failures if f.rule == rule), None)


class Eligibility(_View):
    unit_id: str
    vacancy_id: str | None = None
    open_for_applications: bool
    evaluated_on: date
    programmes: list[Verdict] = Field(default_factory=list)

    @property
    def eligible(self) -> list[Verdict]:
        return [v for v in self.programmes if v.eligible]


class DecisionView(_View):
    decision: str
    status_after: str
    actor_role: str
    reason: str | None = None
    lease_id: str | None = None
    decided_at: datetime


class ApplicationCall(_View):
    """Where an application stands in its call (leasing `ApplicationCallOut`)."""

    call_id: str
    status: str
    opens_at: datetime
    closes_at: datetime
    rank: int | None = None
    ranked_among: int | None = None
    score: int | None = None
    max_score: int | None = None
    criteria: list[CriterionPoints] = Field(default_factory=list)


class Application(_View):
    id: str
    unit_id: str
    vacancy_id: str
    programme_id: str
    project: str
    status: str
    score: int
    max_score: int
    score_breakdown: list[CriterionPoints] = Field(default_factory=list)
    submitted_at: datetime
    updated_at: datetime
    lease_id: str | None = None
    decisions: list[DecisionView] = Field(default_factory=list)
    rank: int | None = None
    ranked_among: int | None = None
    call: ApplicationCall | None = None

    @property
    def withdrawable(self) -> bool:
        """Leasing lets an applicant withdraw while the application is open."""
        return self.status in ("submitted", "offered")


class ApplicationPage(_View):
    items: list[Application]
    total: int
    limit: int
    offset: int


class Lease(_View):
    """An offer (status offered) or a lease (leasing `LeaseOut`)."""

    id: str
    unit_id: str
    application_id: str
    programme_id: str
    status: str
    monthly_rent_eur: float
    start_date: date
    end_date: date
    message: str | None = None
    offered_at: datetime
    offer_expires_at: datetime
    signed_at: datetime | None = None
    ended_on: date | None = None
    end_reason: str | None = None


class LeasePage(_View):
    items: list[Lease]
    total: int
    limit: int
    offset: int


# My space: notifications' answers about the signed-in artisan's searches, feed and deliveries


class Channel(_View):
    type: str
    enabled: bool = True
    url: str | None = None
    address: str | None = None


class Subscription(_View):
    """A saved search (notifications `SubscriptionOut`)."""

    id: str
    name: str
    status: str
    frequency: str = "instant"
    criteria: dict[str, Any] = Field(default_factory=dict)
    channels: list[Channel] = Field(default_factory=list)
    disabled_reason: str | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime

    def channel(self, kind: str) -> Channel | None:
        return next((c for c in self.channels if c.type == kind), None)


class SubscriptionCreated(Subscription):
    """A saved search as its creation (or a webhook change) returns it: with the signing secret
    made by that change, shown once."""

    webhook_secret: str | None = None


class SubscriptionPage(_View):
    items: list[Subscription]
    total: int
    limit: int
    offset: int


class Delivery(_View):
    """One message to one channel (notifications `DeliveryOut`); `id` is the `webhook-id`."""

    id: str
    event_id: str = ""
    kind: str
    channel: str
    status: str
    subscription_id: str | None = None
    vacancy_id: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    created_at: datetime
    delivered_at: datetime | None = None


class DeliveryPage(_View):
    items: list[Delivery]
    total: int
    limit: int
    offset: int


class AlertedUnit(_View):
    """The unit a vacancy alert is about, as the alert's body carries it."""

    unit_id: str
    reference: str = ""
    site_name: str = ""
    arrondissement: int | None = None
    surface_m2: float | None = None
    rent_eur_m2_year: float | None = None


class FeedItem(_View):
    """An alert in the artisan's feed (notifications `FeedItemOut`)."""

    id: int
    kind: str
    title: str
    body: dict[str, Any] = Field(default_factory=dict)
    subscription_id: str | None = None
    created_at: datetime
    read: bool = False

    @property
    def unit(self) -> AlertedUnit | None:
        """The vacant unit of a vacancy alert (None for other kinds, or an unreadable body)."""
        data = self.body.get("data")
        unit = data.get("unit") if isinstance(data, dict) else None
        if not isinstance(unit, dict):
            return None
        try:
            return AlertedUnit.model_validate(unit)
        except ValueError:
            return None


class FeedPage(_View):
    items: list[FeedItem]
    unread: int = 0
    next_before: int | None = None


# Alerts without an account (notifications' guest subscriptions) ------------------------------


class GuestPending(_View):
    """A request for guest alerts waiting for its confirmation click."""

    name: str
    criteria: dict[str, Any] = Field(default_factory=dict)
    language: str = "fr"
    expires_at: datetime


class GuestConfirmed(_View):
    """The guest's alerts are on."""

    subscription_id: str
    name: str
    criteria: dict[str, Any] = Field(default_factory=dict)
    unsubscribe_url: str


# City officers: the production-surface ledger (inventory) and letting statistics (leasing) ---


class SurfaceTotal(_View):
    key: str
    label: str
    production_m2: float
    units: int


class SurfaceReport(_View):
    """Production m² by arrondissement (or site), now or at an instant."""

    by: str
    at: datetime | None = None
    total_production_m2: float
    rows: list[SurfaceTotal] = Field(default_factory=list)


class SurfacePoint(_View):
    day: date
    production_m2: float


class SurfaceHistory(_View):
    """Production m² at the end of each day it changed (a step series)."""

    arrondissement: int | None = None
    site_id: str | None = None
    points: list[SurfacePoint] = Field(default_factory=list)


# No net loss (inventory): the balance, the flags, compensations and development projects ----


class BalanceMonth(_View):
    month: str
    gains_m2: float
    losses_m2: float
    net_m2: float
    compensated_m2: float = 0.0
    uncompensated_m2: float = 0.0
    cumulative_net_m2: float


class ArrondissementBalance(_View):
    arrondissement: int
    gains_m2: float
    losses_m2: float
    net_m2: float
    compensated_m2: float = 0.0
    uncompensated_m2: float = 0.0
    uncompensated_losses: int = 0
    compensations_delivered_m2: float = 0.0
    compensations_planned_m2: float = 0.0
    late_m2: float = 0.0
    late_compensations: int = 0
    series: list[BalanceMonth] = Field(default_factory=list)


class SurfaceBalance(_View):
    period_from: date | None = None
    period_to: date | None = None
    as_of: date
    rows: list[ArrondissementBalance] = Field(default_factory=list)


class SurfaceFlag(_View):
    kind: str
    arrondissement: int
    m2: float
    unit_id: str | None = None
    ledger_id: int | None = None
    compensation_id: str | None = None
    project_id: str | None = None
    recorded_at: datetime | None = None
    due_on: date | None = None
    reason: str | None = None
    what_to_do: str = ""


class SurfaceFlags(_View):
    as_of: date
    uncompensated_losses: int = 0
    late_compensations: int = 0
    flags: list[SurfaceFlag] = Field(default_factory=list)


class Compensation(_View):
    id: str
    arrondissement: int
    m2: float
    status: str
    due_on: date
    description: str
    project_id: str | None = None
    unit_id: str | None = None
    delivered_on: date | None = None
    late: bool = False


class Project(_View):
    id: str
    name: str
    arrondissement: int
    committed_m2: float
    delivery_on: date
    status: str
    description: str | None = None
    kept_m2: float = 0.0
    units: int = 0
    shortfall_m2: float = 0.0
    behind: bool = False


class ProjectPage(_View):
    items: list[Project] = Field(default_factory=list)
    total: int = 0


# Open data (inventory's and notifications' catalogues) ---------------------------------------


class OpenDataFile(_View):
    name: str
    dataset: str
    title: str
    format: str
    media_type: str
    url: str
    schema_url: str
    licence: dict[str, str] = Field(default_factory=dict)
    generated_at: datetime
    sha256: str = ""
    rows: int = 0
    # Not in the catalogues yet; shown when a service gives it.
    size_bytes: int | None = None


class OpenDataCatalogue(_View):
    licence: dict[str, str] = Field(default_factory=dict)
    files: list[OpenDataFile] = Field(default_factory=list)


class LettingFigures(_View):
    key: str
    open_vacancies: int
    open_days_median: float | None = None
    lets: int
    timed_lets: int = 0
    days_to_let_median: float | None = None
    days_to_let_mean: float | None = None


class LettingStats(_View):
    """Vacancies open now and lets in a period, by arrondissement and by site kind."""

    since: date
    until: date
    as_of: datetime
    total: LettingFigures
    by_arrondissement: list[LettingFigures] = Field(default_factory=list)
    by_site_kind: list[LettingFigures] = Field(default_factory=list)


# A landlord's back office --------------------------------------------------------------


class OwnSite(Site):
    """A site as its landlord edits it (with the version its ETag carries)."""

    landlord_id: str
    version: int


class OwnSitePage(_View):
    items: list[OwnSite]
    total: int


class OwnUnit(Unit):
    """A unit as its landlord edits it."""

    version: int
    vacancy_id: str | None = None


class OwnUnitPage(_View):
    items: list[OwnUnit]
    total: int


class ImportProblem(_View):
    column: str | None = None
    code: str
    reason: str
    params: dict[str, Any] = Field(default_factory=dict)


class ImportedRow(_View):
    line: int
    reference: str
    unit_id: str
    status: str


class RefusedRow(_View):
    line: int
    reference: str | None = None
    problems: list[ImportProblem]


class ImportReport(_View):
    site_id: str
    atomic: bool
    dry_run: bool
    rows: int
    written: bool
    accepted: list[ImportedRow]
    refused: list[RefusedRow]


# City officers: calls for applications, their results and appeals (leasing) ---------------


class CallCounts(_View):
    applications: int = 0
    drafts: int = 0
    ranked: int = 0


class Call(_View):
    """A call for applications as leasing publishes it (dates, status, counts; no names)."""

    id: str
    vacancy_id: str
    unit_id: str
    landlord_id: str
    status: str
    opens_at: datetime
    closes_at: datetime
    catalogue_version: int = 1
    ranking_frozen_at: datetime | None = None
    decided_at: datetime | None = None
    results_published_at: datetime | None = None
    appeals_close_at: datetime | None = None
    counts: CallCounts = Field(default_factory=CallCounts)


class CallPage(_View):
    items: list[Call]
    total: int
    limit: int
    offset: int


class RankedDecision(_View):
    decision: str
    status_after: str
    actor_role: str
    reason: str | None = None
    ground: str | None = None
    decided_at: datetime


class RankedApplicant(_View):
    display_name: str = ""
    business_name: str = ""


class CallRankingLine(_View):
    rank: int
    application_id: str
    status: str
    score: int
    max_score: int
    applicant: RankedApplicant = Field(default_factory=RankedApplicant)
    decisions: list[RankedDecision] = Field(default_factory=list)


class CallRanking(_View):
    """The ranking frozen at closing, with names and decisions (landlord, officer, admin)."""

    call_id: str
    status: str
    ranking_frozen_at: datetime | None = None
    entries: list[CallRankingLine] = Field(default_factory=list)


class Departure(_View):
    decision: str
    ground: str
    ground_label: str = ""
    explanation: str | None = None


class ResultCriterion(_View):
    criterion_id: str
    label: str
    points: int
    max_points: int


class ResultRow(_View):
    candidate: str
    rank: int
    score: int
    max_score: int
    criteria: list[ResultCriterion] = Field(default_factory=list)
    outcome: str
    order_followed: bool = True
    departures: list[Departure] = Field(default_factory=list)


class CallResults(_View):
    """A call's published results: anonymised, public."""

    call_id: str
    outcome: str
    results_published_at: datetime
    appeals_close_at: datetime
    ranked: int = 0
    rows: list[ResultRow] = Field(default_factory=list)
    unit_id: str = ""
    closes_at: datetime | None = None
    decided_at: datetime | None = None
    jury: PublicJury | None = None


class PublicJuryMember(_View):
    name: str
    organisation: str
    role: str
    recused: bool = False


class PublicJury(_View):
    """A call's jury as published with its results (no minutes, no declarations)."""

    members: list[PublicJuryMember] = Field(default_factory=list)
    session_date: date
    decision: str


class ResultsSummary(_View):
    call_id: str
    unit_id: str
    results_published_at: datetime
    appeals_close_at: datetime


class ResultsPage(_View):
    items: list[ResultsSummary]
    total: int
    limit: int
    offset: int


class Appeal(_View):
    id: str
    application_id: str
    call_id: str
    status: str
    grounds: str
    filed_at: datetime
    outcome: str | None = None
    answer: str | None = None
    answered_at: datetime | None = None


class AppealPage(_View):
    items: list[Appeal]
    total: int


class LandlordRankingLine(_View):
    """A line of a call's frozen ranking as its landlord decides on it: points per criterion."""

    rank: int
    application_id: str
    status: str
    in_the_running: bool = False
    programme_id: str = ""
    score: int
    max_score: int
    criteria: list[CriterionPoints] = Field(default_factory=list)
    submitted_at: datetime | None = None
    applicant: RankedApplicant = Field(default_factory=RankedApplicant)
    decisions: list[RankedDecision] = Field(default_factory=list)


class LandlordRanking(_View):
    call_id: str
    status: str
    ranking_frozen_at: datetime | None = None
    entries: list[LandlordRankingLine] = Field(default_factory=list)


class JuryMemberView(_View):
    name: str
    organisation: str
    role: str
    conflict_of_interest: bool = False
    recused: bool = False
    declaration: str | None = None


class JuryView(_View):
    """A call's jury record as its landlord sees it (members, session, minutes, decision)."""

    call_id: str
    members: list[JuryMemberView] = Field(default_factory=list)
    session_date: date
    minutes: str
    decision: str
