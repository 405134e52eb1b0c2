"""Events leasing publishes: frozen, past-tense, versioned payloads (the producer's contract).

Personal data is kept to what consumers need: no SIRET; the contact e-mail is there because
notifications writes to applicants.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from fabkit.events import EventPayload
from fabkit.outbox import Emitter
from leasing.eligibility import Programme
from leasing.models import Appeal, Application, ArtisanProfile, Call, Lease

ARTISAN_TOPIC = "leasing.artisan.events"
APPLICATION_TOPIC = "leasing.application.events"
LEASE_TOPIC = "leasing.lease.events"
PROGRAMME_TOPIC = "leasing.programme.events"
CALL_TOPIC = "leasing.call.events"
# Ids only (not compacted): the artisan topic's latest record of a key must stay the profile.
PRIVACY_TOPIC = "leasing.privacy.events"
DLQ_TOPIC = "leasing.dlq"


# Artisans (key: artisan id) -------------------------------------------------------------------


class ArtisanSnapshot(EventPayload):
    """What other services may know of an artisan: enough to judge eligibility and to write."""

    artisan_id: str
    display_name: str
    business_name: str
    trades: list[str]
    business_created_on: date
    legal_form: str
    labels: list[str]
    contact_email: str
    registered_at: datetime
    version: int
    # Added in v1 (additive): the identity provider verified the contact address.
    contact_email_verified: bool = False

    @classmethod
    def from_model(cls, a: ArtisanProfile) -> ArtisanSnapshot:
        return cls(
            artisan_id=a.id,
            display_name=a.display_name,
            business_name=a.business_name,
            trades=list(a.trades),
            business_created_on=a.business_created_on,
            legal_form=a.legal_form,
            labels=list(a.labels),
            contact_email=a.contact_email,
            contact_email_verified=a.contact_email_verified,
            registered_at=a.registered_at,
            version=a.version,
        )


class ArtisanRegistered(EventPayload):
    event_type = "leasing.artisan.registered.v1"
    artisan: ArtisanSnapshot


class ArtisanUpdated(EventPayload):
    event_type = "leasing.artisan.updated.v1"
    artisan: ArtisanSnapshot
    changed: list[str]


# Applications (key: application id) ------------------------------------------------------------


class ApplicationSnapshot(EventPayload):
    application_id: str
    artisan_id: str
    unit_id: str
    vacancy_id: str
    landlord_id: str
    programme_id: str
    status: str
    score: int
    max_score: int
    submitted_at: datetime

    @classmethod
    def from_model(cls, app: Application) -> ApplicationSnapshot:
        return cls(
            application_id=app.id,
            artisan_id=app.artisan_id,
            unit_id=app.unit_id,
            vacancy_id=app.vacancy_id,
            landlord_id=app.landlord_id,
            programme_id=app.programme_id,
            status=app.status,
            score=app.score,
            max_score=app.max_score,
            submitted_at=app.submitted_at,
        )


class ApplicationSubmitted(EventPayload):
    event_type = "leasing.application.submitted.v1"
    application: ApplicationSnapshot


class ApplicationWithdrawn(EventPayload):
    event_type = "leasing.application.withdrawn.v1"
    application: ApplicationSnapshot
    reason: str | None
    withdrawn_at: datetime


class ApplicationDecided(EventPayload):
    """A decision on an application: the applicant (artisan_id) is told what and why."""

    event_type = "leasing.application.decided.v1"
    application: ApplicationSnapshot
    artisan_id: str
    decision: str
    reason: str | None
    decided_by_role: str
    decided_at: datetime
    lease_id: str | None
    # Added in v1 (additive): the published out-of-rank ground of an offer to someone other
    # than the first in rank, or of a rejection (the free text is `reason`).
    ground: str | None = None


# Leases (key: UNIT id, so the lease events of one unit stay in order) --------------------------


class LeaseSnapshot(EventPayload):
    lease_id: str
    unit_id: str
    vacancy_id: str
    application_id: str
    artisan_id: str
    landlord_id: str
    programme_id: str
    status: str
    monthly_rent_eur: float
    start_date: date
    end_date: date
    offer_expires_at: datetime
    signed_at: datetime | None
    ended_on: date | None
    renewals: int
    version: int

    @classmethod
    def from_model(cls, lease: Lease) -> LeaseSnapshot:
        return cls(
            lease_id=lease.id,
            unit_id=lease.unit_id,
            vacancy_id=lease.vacancy_id,
            application_id=lease.application_id,
            artisan_id=lease.artisan_id,
            landlord_id=lease.landlord_id,
            programme_id=lease.programme_id,
            status=lease.status,
            monthly_rent_eur=lease.monthly_rent_cents / 100,
            start_date=lease.start_date,
            end_date=lease.end_date,
            offer_expires_at=lease.offer_expires_at,
            signed_at=lease.signed_at,
            ended_on=lease.ended_on,
            renewals=lease.renewals,
            version=lease.version,
        )


class LeaseOffered(EventPayload):
    event_type = "leasing.lease.offered.v1"
    lease: LeaseSnapshot
    artisan_id: str
    offered_at: datetime


class LeaseSigned(EventPayload):
    event_type = "leasing.lease.signed.v1"
    lease: LeaseSnapshot
    signed_at: datetime


class LeaseEnded(EventPayload):
    """The lease is over: `ending` is `ended` (term reached or notice) or `terminated`."""

    event_type = "leasing.lease.ended.v1"
    lease: LeaseSnapshot
    ending: str
    ended_on: date
    reason: str | None


class LeaseRenewed(EventPayload):
    event_type = "leasing.lease.renewed.v1"
    lease: LeaseSnapshot
    previous_end_date: date


# Programmes (key: programme id) -------------------------------------------------------------


class CriterionSnapshot(EventPayload):
    """One line of a scoring grid; only the parameter of its `kind` is set."""

    id: str
    kind: str
    label: str
    points: int
    under_years: int | None
    labels: list[str] | None
    legal_forms: list[str] | None
    points_per_month: int | None


class RulesSnapshot(EventPayload):
    max_business_age_years: int | None
    allowed_legal_forms: list[str] | None
    requires_trade_match: bool
    rent_cap_eur_m2_year: float
    max_residency_months: int
    renewable_times: int


class GroundSnapshot(EventPayload):
    """A published reason for offering out of rank (or rejecting)."""

    id: str
    label: str
    description: str


class ProgrammeSnapshot(EventPayload):
    programme_id: str
    name: str
    description: str
    site_kinds: list[str]
    rules: RulesSnapshot
    scoring: list[CriterionSnapshot]
    max_points: int
    # Calls for applications (added in v1; absent from events published before them).
    call_days: int | None = None
    appeal_days: int | None = None
    out_of_rank_grounds: list[GroundSnapshot] | None = None

    @classmethod
    def from_programme(cls, p: Programme) -> ProgrammeSnapshot:
        rules = p.rules
        return cls(
            programme_id=p.id,
            name=p.name,
            description=p.description,
            site_kinds=list(p.site_kinds),
            rules=RulesSnapshot(
                max_business_age_years=rules.max_business_age_years,
                allowed_legal_forms=(
                    [f.value for f in rules.allowed_legal_forms]
                    if rules.allowed_legal_forms is not None
                    else None
                ),
                requires_trade_match=rules.requires_trade_match,
                rent_cap_eur_m2_year=rules.rent_cap_eur_m2_year,
                max_residency_months=rules.max_residency_months,
                renewable_times=rules.renewable_times,
            ),
            scoring=[
                CriterionSnapshot(
                    id=c.id,
                    kind=c.kind.value,
                    label=c.label,
                    points=c.points,
                    under_years=c.under_years,
                    labels=[x.value for x in c.labels] if c.labels is not None else None,
                    legal_forms=(
                        [x.value for x in c.legal_forms] if c.legal_forms is not None else None
                    ),
                    points_per_month=c.points_per_month,
                )
                for c in p.scoring
            ],
            max_points=p.max_points,
            call_days=p.call_days,
            appeal_days=p.appeal_days,
            out_of_rank_grounds=[
                GroundSnapshot(id=g.id, label=g.label, description=g.description)
                for g in p.out_of_rank_grounds
            ],
        )


class CatalogueInfo(EventPayload):
    """The catalogue this programme was published with: a programme absent from the latest
    catalogue's `programme_ids` is retired."""

    version: int
    config_hash: str
    programme_ids: list[str]


class ProgrammePublished(EventPayload):
    event_type = "leasing.programme.published.v1"
    programme: ProgrammeSnapshot
    catalogue: CatalogueInfo
    published_at: datetime


# Calls for applications (key: call id) ---------------------------------------------------------


class CallSnapshot(EventPayload):
    """A call as everyone may know it: dates and status, never an applicant's name."""

    call_id: str
    vacancy_id: str
    unit_id: str
    landlord_id: str
    status: str
    opens_at: datetime
    closes_at: datetime
    catalogue_version: int
    version: int

    @classmethod
    def from_model(cls, call: Call) -> CallSnapshot:
        return cls(
            call_id=call.id,
            vacancy_id=call.vacancy_id,
            unit_id=call.unit_id,
            landlord_id=call.landlord_id,
            status=call.status,
            opens_at=call.opens_at,
            closes_at=call.closes_at,
            catalogue_version=call.catalogue_version,
            version=call.version,
        )


class RankedApplication(EventPayload):
    """One line of a frozen ranking: the applicant (artisan_id) learns their place."""

    application_id: str
    artisan_id: str
    rank: int
    score: int
    max_score: int


class CallOpened(EventPayload):
    event_type = "leasing.call.opened.v1"
    call: CallSnapshot
    opened_at: datetime


class CallClosed(EventPayload):
    """The closing date passed: applications stopped and the ranking was frozen."""

    event_type = "leasing.call.closed.v1"
    call: CallSnapshot
    closed_at: datetime
    ranking: list[RankedApplication]


class CallDecided(EventPayload):
    """A lease was signed (outcome `leased`), or the landlord recorded that nobody is chosen
    (`unawarded`, with the reason); every ranked applicant is listed to be told."""

    event_type = "leasing.call.decided.v1"
    call: CallSnapshot
    outcome: str
    decided_at: datetime
    application_id: str | None
    lease_id: str | None
    reason: str | None
    ranking: list[RankedApplication]


class CallCancelled(EventPayload):
    """The vacancy closed before the call was decided."""

    event_type = "leasing.call.cancelled.v1"
    call: CallSnapshot
    cancelled_at: datetime
    reason: str


# Published results and appeals (key: call id, so a call's results and appeals stay in order) ----


class ResultLine(EventPayload):
    """One ranked applicant (artisan_id) of published results: their rank and outcome."""

    application_id: str
    artisan_id: str
    rank: int
    score: int
    max_score: int
    outcome: str


class CallResultsPublished(EventPayload):
    """A decided call's anonymised results were published; every ranked applicant is listed to
    be told their rank and outcome, and may appeal until `appeals_close_at`."""

    event_type = "leasing.call.results_published.v1"
    call: CallSnapshot
    published_at: datetime
    appeals_close_at: datetime
    outcome: str
    results: list[ResultLine]


class AppealSnapshot(EventPayload):
    """An appeal without its text (the appellant's own words stay in leasing)."""

    appeal_id: str
    application_id: str
    call_id: str
    artisan_id: str
    landlord_id: str
    status: str
    filed_at: datetime
    outcome: str | None
    answered_at: datetime | None

    @classmethod
    def from_model(cls, a: Appeal) -> AppealSnapshot:
        return cls(
            appeal_id=a.id,
            application_id=a.application_id,
            call_id=a.call_id,
            artisan_id=a.artisan_id,
            landlord_id=a.landlord_id,
            status=a.status,
            filed_at=a.filed_at,
            outcome=a.outcome,
            answered_at=a.answered_at,
        )


class AppealFiled(EventPayload):
    event_type = "leasing.appeal.filed.v1"
    appeal: AppealSnapshot


class AppealAnswered(EventPayload):
    """An officer answered an appeal: the appellant (appeal.artisan_id) is told the answer."""

    event_type = "leasing.appeal.answered.v1"
    appeal: AppealSnapshot
    answer: str
    answered_by_role: str
    answered_at: datetime


class ArtisanErased(EventPayload):
    """An artisan's profile was erased (pseudonymised): consumers delete their copies of the
    person's data. No personal data in it: ids and the time only."""

    event_type = "leasing.artisan.erased.v1"
    artisan_id: str
    erasure_id: str
    erased_at: datetime
    requested_by: str = Field(
        description="self (the artisan), admin (on a written request) or retention (the "
        "inactive-account rule)"
    )


class ArtisanErasureSealed(EventPayload):
    """The second record of an erasure on the artisan's key, written once the topic's
    compaction lag has passed: it rolls the segment holding the erasure, so the log cleaner
    drops every earlier record of the person even on a quiet topic. Ids and the time only."""

    event_type = "leasing.artisan.erasure_sealed.v1"
    artisan_id: str
    erasure_id: str
    sealed_at: datetime


class ArtisanInactivityWarned(EventPayload):
    """An artisan with no activity for the retention period was warned that their account
    will be erased at `erasure_due_at` unless they log in: notifications e-mails them. Ids and
    dates only (the address is in notifications' own copy of the profile)."""

    event_type = "leasing.artisan.inactivity_warned.v1"
    artisan_id: str
    warned_at: datetime
    erasure_due_at: datetime
    last_active_at: datetime


ALL_PAYLOADS: tuple[type[EventPayload], ...] = (
    ArtisanRegistered,
    ArtisanUpdated,
    ArtisanErased,
    ArtisanErasureSealed,
    ArtisanInactivityWarned,
    ApplicationSubmitted,
    ApplicationWithdrawn,
    ApplicationDecided,
    LeaseOffered,
    LeaseSigned,
    LeaseEnded,
    LeaseRenewed,
    ProgrammePublished,
    CallOpened,
    CallClosed,
    CallDecided,
    CallCancelled,
    CallResultsPublished,
    AppealFiled,
    AppealAnswered,
)
TOPIC_OF: dict[str, str] = {
    ArtisanRegistered.event_type: ARTISAN_TOPIC,
    ArtisanUpdated.event_type: ARTISAN_TOPIC,
    ArtisanErased.event_type: ARTISAN_TOPIC,
    ArtisanErasureSealed.event_type: ARTISAN_TOPIC,
    ArtisanInactivityWarned.event_type: PRIVACY_TOPIC,
    ApplicationSubmitted.event_type: APPLICATION_TOPIC,
    ApplicationWithdrawn.event_type: APPLICATION_TOPIC,
    ApplicationDecided.event_type: APPLICATION_TOPIC,
    LeaseOffered.event_type: LEASE_TOPIC,
    LeaseSigned.event_type: LEASE_TOPIC,
    LeaseEnded.event_type: LEASE_TOPIC,
    LeaseRenewed.event_type: LEASE_TOPIC,
    ProgrammePublished.event_type: PROGRAMME_TOPIC,
    CallOpened.event_type: CALL_TOPIC,
    CallClosed.event_type: CALL_TOPIC,
    CallDecided.event_type: CALL_TOPIC,
    CallCancelled.event_type: CALL_TOPIC,
    CallResultsPublished.event_type: CALL_TOPIC,
    AppealFiled.event_type: CALL_TOPIC,
    AppealAnswered.event_type: CALL_TOPIC,
}
# The source is bound to the configured one at start-up (main.create_app, cli).
emit = Emitter("/fabrique/leasing", TOPIC_OF)
