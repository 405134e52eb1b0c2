"""What leaves notifications for integrators and artisans: webhook bodies and e-mail data.

Each webhook body is a Standard Webhooks message (`type`, `timestamp`, `data`), signed and
posted as JSON; the same document is the delivery's stored payload and the feed item's body.
Each e-mail model holds the values its template renders. JSON Schema snapshots of both live in
`contracts/webhooks/` and `contracts/email/` (`contracts/generate.py`); inside a type only
additive changes are allowed, as for the Kafka events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from notifications.domain import Eligibility


class _Contract(BaseModel):
    # Frozen: one vacancy's shared parts are built once and reused by every match.
    model_config = ConfigDict(frozen=True)


class SubscriptionRef(_Contract):
    """The saved search a message is for."""

    id: str
    name: str


class AlertLogistics(_Contract):
    """The logistics of the unit's site; false, null or 0 when inventory was not given them."""

    rail_siding: bool = False
    river_quay_distance_m: int | None = Field(default=None, description="Metres to a river quay")
    petite_ceinture_station: str | None = None
    freight_max_weight_t: float | None = Field(
        default=None, description="Heaviest freight vehicle the access takes, in tonnes"
    )
    freight_max_height_m: float | None = Field(
        default=None, description="Tallest freight vehicle the access takes, in metres"
    )
    cargo_bike_spaces: int = 0


class AlertUnit(_Contract):
    """The workshop or stall that fell vacant, as inventory described it when the vacancy
    opened."""

    unit_id: str
    site_id: str
    landlord_id: str
    landlord_name: str
    reference: str
    floor: int
    surface_m2: float
    ceiling_height_m: float | None
    floor_load_kg_m2: float | None
    power_kva: float | None
    goods_lift: bool
    loading_dock: bool
    extraction: bool
    step_free_access: bool
    allowed_trades: list[str] = Field(description="Empty: every trade is welcome")
    use_class: str
    rent_eur_m2_year: float = Field(description="€ per m² per year, excluding charges")
    charges_eur_m2_year: float
    status: str
    available_from: date | None
    site_name: str
    site_kind: str
    address: str
    postcode: str
    arrondissement: int = Field(ge=1, le=20)
    latitude: float | None
    longitude: float | None
    opens_for_visits: bool
    version: int
    space_kind: str = Field(
        default="workshop",
        description="`workshop`, or `stall`: a seasonal sales stall let for a period",
        examples=["workshop", "stall"],
    )
    period_start: date | None = Field(default=None, description="A stall's first day let")
    period_end: date | None = Field(default=None, description="A stall's last day let")
    logistics: AlertLogistics = Field(default_factory=AlertLogistics)


class ProgrammeReasons(_Contract):
    """One programme the artisan qualifies for, and why."""

    programme_id: str
    name: str
    reasons: list[str]


class EligibilityWhy(_Contract):
    """The eligibility pre-filter's verdict on the artisan for this unit."""

    summary: str
    filtered: bool = Field(description="False when no programme was known to filter on")
    programmes: list[ProgrammeReasons]

    @classmethod
    def of(cls, verdict: Eligibility) -> EligibilityWhy:
        return cls(
            summary=verdict.summary,
            filtered=verdict.filtered,
            programmes=[
                ProgrammeReasons(programme_id=p.programme_id, name=p.name, reasons=list(p.reasons))
                for p in verdict.programmes
            ],
        )


class Why(_Contract):
    """Why this alert was sent: the criteria the unit met and the eligibility verdict."""

    criteria: list[str]
    eligibility: EligibilityWhy


class VacancyAlert(_Contract):
    """One vacancy that matched one saved search."""

    vacancy_id: str
    opened_at: datetime
    unit: AlertUnit
    subscription: SubscriptionRef
    why: Why


class _Message(_Contract):
    """A stored message: a webhook body (Standard Webhooks: the `webhook-id` header is the
    delivery id), a feed item's body, and what its e-mail is made from."""

    message_type: ClassVar[str]
    timestamp: datetime

    def body(self) -> dict[str, Any]:
        """The JSON document posted (and stored as the delivery's payload)."""
        return self.model_dump(mode="json")


class VacancyOpenedWebhook(_Message):
    """An instant alert: a workshop matching the saved search fell vacant."""

    message_type: ClassVar[str] = "vacancy.opened"
    type: Literal["vacancy.opened"] = "vacancy.opened"
    data: VacancyAlert


def stall_period(unit: AlertUnit) -> str:
    """`du 2026-12-01 au 2026-12-31`: the period a stall is let for, in French."""
    start, end = unit.period_start, unit.period_end
    if start and end:
        return f"du {start.isoformat()} au {end.isoformat()}"
    if start:
        return f"à partir du {start.isoformat()}"
    return f"jusqu'au {end.isoformat()}" if end else "période à préciser"


def vacancy_title(unit: AlertUnit) -> str:
    """The feed title and e-mail subject of one vacancy."""
    if unit.space_kind == "stall":
        return (
            f"Stand disponible : {unit.site_name}, {stall_period(unit)}, "
            f"Paris {unit.arrondissement}e"
        )
    return (
        f"Atelier disponible : {unit.site_name}, {unit.surface_m2:g} m², "
        f"Paris {unit.arrondissement}e"
    )


_INSTANT = TypeAdapter(datetime)


@dataclass(frozen=True)
class VacancyOpenedBodies:
    """The `vacancy.opened` body of each match of one vacancy, as `VacancyOpenedWebhook`
    dumps it (a test holds the two equal and checks the body against the snapshot).

    The parts every match shares (the unit, the instants) go through their models once per
    vacancy, and each artisan's eligibility once per artisan; each body only assembles them.
    For 10,000 matches, dumping the whole model per match took 600 ms, 40 times the plain dicts
    written before the contract existed; the assembly costs what those dicts did. It runs in
    the consumer's transaction of a fan-out, which the first webhook waits for (benchmarks,
    fan-out).
    """

    vacancy_id: str
    opened_at: str
    unit: dict[str, Any]

    @classmethod
    def of(cls, vacancy_id: str, opened_at: datetime, unit: AlertUnit) -> VacancyOpenedBodies:
        return cls(
            vacancy_id, _INSTANT.dump_python(opened_at, mode="json"), unit.model_dump(mode="json")
        )

    def body(
        self, subscription_id: str, name: str, criteria: list[str], eligibility: dict[str, Any]
    ) -> dict[str, Any]:
        """One match's body; `eligibility` is an `EligibilityWhy` dumped in JSON mode."""
        return {
            "type": VacancyOpenedWebhook.message_type,
            "timestamp": self.opened_at,
            "data": {
                "vacancy_id": self.vacancy_id,
                "opened_at": self.opened_at,
                "unit": self.unit,
                "subscription": {"id": subscription_id, "name": name},
                "why": {"criteria": criteria, "eligibility": eligibility},
            },
        }


class VacancyDigest(_Contract):
    """The alerts of one day for one saved search, oldest first."""

    subscription: SubscriptionRef
    alerts: list[VacancyAlert] = Field(min_length=1)


class VacancyDigestWebhook(_Message):
    """The daily digest of a saved search whose frequency is `daily`."""

    message_type: ClassVar[str] = "vacancy.digest"
    type: Literal["vacancy.digest"] = "vacancy.digest"
    data: VacancyDigest


def digest_body(at: datetime, instant_bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The `vacancy.digest` body folding the stored `vacancy.opened` bodies of one search."""
    alerts = [VacancyOpenedWebhook.model_validate(b).data for b in instant_bodies]
    digest = VacancyDigest(subscription=alerts[0].subscription, alerts=alerts)
    return VacancyDigestWebhook(timestamp=at, data=digest).body()


class SubscriptionTest(_Contract):
    """A sample message the artisan asked for, to check the channel works."""

    subscription: SubscriptionRef
    message: str


class SubscriptionTestWebhook(_Message):
    """A test message (`POST /v1/subscriptions/{id}/test`), sent even while paused."""

    message_type: ClassVar[str] = "subscription.test"
    type: Literal["subscription.test"] = "subscription.test"
    data: SubscriptionTest


WEBHOOKS: tuple[type[_Message], ...] = (
    VacancyOpenedWebhook,
    VacancyDigestWebhook,
    SubscriptionTestWebhook,
)


# Messages to applicants (e-mail and feed only) ------------------------------------------------


class ApplicationDecided(_Contract):
    """Leasing decided an application."""

    application_id: str
    unit_id: str
    decision: str = Field(examples=["accepted", "rejected"])
    reason: str | None = None
    score: int | None = None
    max_score: int | None = None
    decided_at: datetime | None = None


class ApplicationDecidedMessage(_Message):
    """The stored message of an application decision (feed body, e-mail data)."""

    message_type: ClassVar[str] = "application.decided"
    type: Literal["application.decided"] = "application.decided"
    data: ApplicationDecided


class LeaseOffered(_Contract):
    """Leasing offered a lease to the applicant."""

    lease_id: str
    unit_id: str
    monthly_rent_eur: float | None = None
    start_date: date | None = None
    end_date: date | None = None
    offer_expires_at: datetime | None = None


class LeaseOfferedMessage(_Message):
    """The stored message of a lease offer (feed body, e-mail data)."""

    message_type: ClassVar[str] = "lease.offered"
    type: Literal["lease.offered"] = "lease.offered"
    data: LeaseOffered


class CallResults(_Contract):
    """A call's results were published: the applicant's own rank, points and outcome."""

    call_id: str
    unit_id: str
    application_id: str
    rank: int
    ranked_among: int
    score: int | None = None
    max_score: int | None = None
    outcome: str = Field(examples=["leased", "not_chosen", "rejected"])
    appeals_close_at: datetime | None = None


class CallResultsMessage(_Message):
    """The stored message of a call's published results (feed body, e-mail data)."""

    message_type: ClassVar[str] = "call.results_published"
    type: Literal["call.results_published"] = "call.results_published"
    data: CallResults


class AppealAnswered(_Contract):
    """An officer answered the applicant's appeal against a call's results."""

    appeal_id: str
    call_id: str
    application_id: str
    outcome: str | None = Field(default=None, examples=["upheld", "dismissed"])
    answer: str
    answered_at: datetime | None = None


class AppealAnsweredMessage(_Message):
    """The stored message of an appeal's answer (feed body, e-mail data)."""

    message_type: ClassVar[str] = "appeal.answered"
    type: Literal["appeal.answered"] = "appeal.answered"
    data: AppealAnswered


class CallClosed(_Contract):
    """A call for applications closed: the applicant's rank in the frozen ranking."""

    call_id: str
    unit_id: str
    application_id: str
    rank: int
    ranked_among: int
    score: int | None = None
    max_score: int | None = None
    closed_at: datetime | None = None


class CallClosedMessage(_Message):
    """The stored message of a call's closing (feed body, e-mail data)."""

    message_type: ClassVar[str] = "call.closed"
    type: Literal["call.closed"] = "call.closed"
    data: CallClosed


class CallDecided(_Contract):
    """A call for applications was decided: the unit leased (to this applicant or another),
    or nobody chosen."""

    call_id: str
    unit_id: str
    application_id: str
    outcome: str = Field(examples=["leased", "unawarded"])
    chosen: bool = Field(description="This applicant signed the lease")
    reason: str | None = None
    decided_at: datetime | None = None


class CallDecidedMessage(_Message):
    """The stored message of a call's decision (feed body, e-mail data)."""

    message_type: ClassVar[str] = "call.decided"
    type: Literal["call.decided"] = "call.decided"
    data: CallDecided


StoredMessage = Annotated[
    VacancyOpenedWebhook
    | VacancyDigestWebhook
    | SubscriptionTestWebhook
    | ApplicationDecidedMessage
    | LeaseOfferedMessage
    | CallResultsMessage
    | AppealAnsweredMessage
    | CallClosedMessage
    | CallDecidedMessage,
    Field(discriminator="type"),
]


# E-mails: the values each template renders ---------------------------------------------------


class _Email(_Contract):
    email_type: ClassVar[str]
    subject: str
    unsubscribe_url: str | None = Field(
        default=None, description="The signed one-click link (RFC 8058); none for applicants"
    )


class VacancyOpenedEmail(_Email):
    """An instant vacancy alert by e-mail."""

    email_type: ClassVar[str] = "vacancy.opened"
    alert: VacancyAlert


class VacancyDigestEmail(_Email):
    """The daily digest by e-mail."""

    email_type: ClassVar[str] = "vacancy.digest"
    subscription: SubscriptionRef
    alerts: list[VacancyAlert] = Field(min_length=1)


class SubscriptionTestEmail(_Email):
    """A test message by e-mail."""

    email_type: ClassVar[str] = "subscription.test"
    subscription: SubscriptionRef


class ApplicationDecidedEmail(_Email):
    """An application decision, to the applicant."""

    email_type: ClassVar[str] = "application.decided"
    decision: ApplicationDecided


class LeaseOfferedEmail(_Email):
    """A lease offer, to the applicant."""

    email_type: ClassVar[str] = "lease.offered"
    offer: LeaseOffered


class CallResultsEmail(_Email):
    """A call's published results, to one of its applicants."""

    email_type: ClassVar[str] = "call.results_published"
    results: CallResults


class AppealAnsweredEmail(_Email):
    """The answer to an appeal, to the appellant."""

    email_type: ClassVar[str] = "appeal.answered"
    appeal: AppealAnswered


class CallClosedEmail(_Email):
    """A call's closing, to one of its ranked applicants: their rank."""

    email_type: ClassVar[str] = "call.closed"
    closing: CallClosed


class CallDecidedEmail(_Email):
    """A call's decision, to one of its ranked applicants."""

    email_type: ClassVar[str] = "call.decided"
    decision: CallDecided


Email = (
    VacancyOpenedEmail
    | VacancyDigestEmail
    | SubscriptionTestEmail
    | ApplicationDecidedEmail
    | LeaseOfferedEmail
    | CallResultsEmail
    | AppealAnsweredEmail
    | CallClosedEmail
    | CallDecidedEmail
)


# E-mails to guests (alerts without an account), in the language they chose ------------------


class GuestConfirmationEmail(_Email):
    """The double opt-in: the one e-mail a guest gets before confirming, with the link to the
    portal's confirmation page (the only copy of the token)."""

    email_type: ClassVar[str] = "guest.confirmation"
    language: Literal["fr", "en"]
    search_name: str
    confirm_url: str
    expires_at: datetime


class GuestVacancyAlertEmail(_Email):
    """An instant vacancy alert to a guest: no eligibility check was made, and an invitation
    to create an account; always with the one-click unsubscribe link."""

    email_type: ClassVar[str] = "guest.vacancy.opened"
    language: Literal["fr", "en"]
    alert: VacancyAlert
    register_url: str
    unsubscribe_url: str = Field(description="The signed one-click link (RFC 8058)")


GuestEmail = GuestConfirmationEmail | GuestVacancyAlertEmail


class WebhookDisabledEmail(_Email):
    """To the artisan whose saved search was switched off because its webhook failed every
    attempt for days: which search, since when, the last error, and how to resume it. Stored
    as the delivery's message and rendered in the search's language; no unsubscribe link (it
    is about the artisan's account, not an alert)."""

    email_type: ClassVar[str] = "webhook.disabled"
    language: Literal["fr", "en"]
    subscription: SubscriptionRef
    webhook_host: str = Field(description="The webhook URL's host only (its path may hold a key)")
    failing_since: datetime = Field(description="The first failed attempt with no success since")
    disabled_at: datetime
    last_error: str | None = Field(description="What the last attempt got, e.g. `HTTP 503`")
    resume_url: str = Field(description="POST here with the artisan's token to resume the search")


class InactivityWarningEmail(_Email):
    """To an artisan whose account leasing will erase for inactivity (its retention rule,
    `leasing.artisan.inactivity_warned.v1`): why, the date of the erasure, and that logging in
    keeps the account. French then English in one message (the account keeps no language);
    no unsubscribe link (it is about the account, not an alert)."""

    email_type: ClassVar[str] = "privacy.inactivity_warning"
    last_active_at: datetime = Field(description="The account's last activity leasing knows")
    warned_at: datetime
    erasure_due_at: datetime = Field(description="When the account and its data are erased")
    login_url: str = Field(description="The portal's login: logging in keeps the account")


# E-mails about workshop visits, to the address a booking was made with, in its language -----


class VisitRef(_Contract):
    """The visit an e-mail is about, as its reader needs it."""

    slot_id: str
    title: str
    site_name: str
    site_address: str
    postcode: str
    starts_at: datetime = Field(description="UTC")
    ends_at: datetime = Field(description="UTC")
    languages: list[str] = Field(default_factory=list)
    accessibility: list[str] = Field(default_factory=list)
    accessibility_notes: str | None = None
    url: str = Field(description="The visit's page on the portal")


class VisitBookedEmail(_Email):
    """The confirmation of a booking, with the link that cancels it (its token is signed, only
    its SHA-256 is stored); no unsubscribe link: it is one message about one booking."""

    email_type: ClassVar[str] = "visit.booked"
    language: Literal["fr", "en"]
    visit: VisitRef
    places: int
    cancel_url: str = Field(description="The portal's page `/visites/annuler/<token>`")


class VisitReminderEmail(_Email):
    """The reminder, sent once between 24 and 12 hours before the visit."""

    email_type: ClassVar[str] = "visit.reminder"
    language: Literal["fr", "en"]
    visit: VisitRef
    places: int
    cancel_url: str = Field(description="The same cancellation link as the confirmation's")


class VisitCancelledEmail(_Email):
    """The host cancelled the visit: to each person who had booked it, with the host's reason."""

    email_type: ClassVar[str] = "visit.cancelled"
    language: Literal["fr", "en"]
    visit: VisitRef
    reason: str | None = None
    visits_url: str = Field(description="The portal's list of visits")


EMAILS: tuple[type[_Email], ...] = (
    VacancyOpenedEmail,
    VacancyDigestEmail,
    SubscriptionTestEmail,
    ApplicationDecidedEmail,
    LeaseOfferedEmail,
    CallResultsEmail,
    AppealAnsweredEmail,
    CallClosedEmail,
    CallDecidedEmail,
    WebhookDisabledEmail,
    GuestConfirmationEmail,
    GuestVacancyAlertEmail,
    InactivityWarningEmail,
    VisitBookedEmail,
    VisitReminderEmail,
    VisitCancelledEmail,
)
