"""Pure leasing rules: legal forms, labels, SIRET checks and the life cycles of calls for
applications, applications and leases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# The site kinds of inventory's unit events (`unit.site_kind`): leasing keeps its own copy so
# a typo in the programme configuration is refused at start-up.
SITE_KINDS = frozenset(
    {
        "hotel_industriel",
        "hotel_activites",
        "cite_artisanale",
        "ateliers_de_paris",
        "pepiniere",
        "other",
    }
)


class LegalForm(StrEnum):
    EI = "ei"  # entreprise individuelle
    MICRO_ENTREPRISE = "micro_entreprise"
    EURL = "eurl"
    SARL = "sarl"
    SAS = "sas"
    SASU = "sasu"
    SA = "sa"
    SCOP = "scop"  # société coopérative et participative
    SCIC = "scic"  # société coopérative d'intérêt collectif
    CAE = "cae"  # coopérative d'activité et d'emploi
    COOPERATIVE_ARTISANALE = "cooperative_artisanale"
    ASSOCIATION = "association"
    OTHER = "other"


# Forms of the social and solidarity economy (loi ESS du 31 juillet 2014, article 1).
ESS_LEGAL_FORMS = frozenset(
    {
        LegalForm.SCOP,
        LegalForm.SCIC,
        LegalForm.CAE,
        LegalForm.COOPERATIVE_ARTISANALE,
        LegalForm.ASSOCIATION,
    }
)


class Label(StrEnum):
    FABRIQUE_A_PARIS = "fabrique_a_paris"
    ESUS = "esus"  # entreprise solidaire d'utilité sociale
    EPV = "epv"  # entreprise du patrimoine vivant
    METIERS_D_ART = "metiers_d_art"


class ApplicationStatus(StrEnum):
    DRAFT = "draft"  # saved, not yet submitted: never ranked
    SUBMITTED = "submitted"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


# Applications still in the running for their vacancy.
OPEN_APPLICATION_STATUSES = frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.OFFERED})


class LeaseStatus(StrEnum):
    OFFERED = "offered"
    ACTIVE = "active"  # signed
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the offer was taken back before an answer
    ENDED = "ended"
    TERMINATED = "terminated"


# At most one lease of a unit may be in these statuses; a partial unique index enforces it.
OPEN_LEASE_STATUSES = frozenset({LeaseStatus.OFFERED, LeaseStatus.ACTIVE})


class Decision(StrEnum):
    """Every change of an application's status, recorded with who made it, when and why."""

    OFFERED = "offered"
    REJECTED = "rejected"
    OFFER_ACCEPTED = "offer_accepted"
    OFFER_DECLINED = "offer_declined"
    OFFER_EXPIRED = "offer_expired"
    WITHDRAWN = "withdrawn"
    CLOSED = "closed"


DECISION_STATUS: dict[Decision, ApplicationStatus] = {
    Decision.OFFERED: ApplicationStatus.OFFERED,
    Decision.REJECTED: ApplicationStatus.REJECTED,
    Decision.OFFER_ACCEPTED: ApplicationStatus.ACCEPTED,
    Decision.OFFER_DECLINED: ApplicationStatus.DECLINED,
    Decision.OFFER_EXPIRED: ApplicationStatus.EXPIRED,
    Decision.WITHDRAWN: ApplicationStatus.WITHDRAWN,
    Decision.CLOSED: ApplicationStatus.CLOSED,
}

# Which application statuses each decision may be taken from.
DECISION_FROM: dict[Decision, frozenset[ApplicationStatus]] = {
    Decision.OFFERED: frozenset({ApplicationStatus.SUBMITTED}),
    Decision.REJECTED: OPEN_APPLICATION_STATUSES,
    Decision.OFFER_ACCEPTED: frozenset({ApplicationStatus.OFFERED}),
    Decision.OFFER_DECLINED: frozenset({ApplicationStatus.OFFERED}),
    Decision.OFFER_EXPIRED: frozenset({ApplicationStatus.OFFERED}),
    # A draft may be withdrawn, and closes with its vacancy.
    Decision.WITHDRAWN: OPEN_APPLICATION_STATUSES | {ApplicationStatus.DRAFT},
    Decision.CLOSED: OPEN_APPLICATION_STATUSES | {ApplicationStatus.DRAFT},
}


class TransitionError(ValueError):
    """A change the life cycle of a call, an application or a lease does not allow."""


def check_decision(current: ApplicationStatus, decision: Decision) -> ApplicationStatus:
    """The application's status after `decision`, or TransitionError."""
    if current not in DECISION_FROM[decision]:
        allowed = ", ".join(sorted(s.value for s in DECISION_FROM[decision]))
        raise TransitionError(
            f"An application that is '{current}' cannot be {decision.value.replace('_', ' ')}; "
            f"that needs an application that is: {allowed}."
        )
    return DECISION_STATUS[decision]


# Calls for applications -----------------------------------------------------------------------


class CallStatus(StrEnum):
    """A vacancy is let through a call: it opens, closes (the ranking frozen), is reviewed,
    decided, and its results published; or it is cancelled when the vacancy goes first."""

    SCHEDULED = "scheduled"  # opens later
    OPEN = "open"  # takes applications
    CLOSED = "closed"  # the ranking is frozen
    UNDER_REVIEW = "under_review"  # the first offer or rejection, or the landlord's start
    DECIDED = "decided"  # a lease signed, or nobody chosen
    RESULTS_PUBLISHED = "results_published"
    CANCELLED = "cancelled"  # the vacancy closed before a decision


class CallEvent(StrEnum):
    """What moves a call on."""

    OPEN = "open"  # the clock passed opens_at
    RESCHEDULE = "reschedule"  # the landlord moves the opening of a call nobody applied to yet
    CLOSE = "close"  # the clock passed closes_at
    REVIEW = "review"  # the landlord starts the review (or the first offer / rejection)
    DECIDE = "decide"  # a lease signed, or the landlord records nobody is chosen
    PUBLISH = "publish"  # the results are published
    CANCEL = "cancel"  # the vacancy closed (or was withdrawn) before a decision


# Calls still to be decided (a vacancy closing cancels them).
CALL_UNDECIDED = frozenset(
    {CallStatus.SCHEDULED, CallStatus.OPEN, CallStatus.CLOSED, CallStatus.UNDER_REVIEW}
)

CALL_TRANSITIONS: dict[CallEvent, tuple[frozenset[CallStatus], CallStatus]] = {
    CallEvent.OPEN: (frozenset({CallStatus.SCHEDULED}), CallStatus.OPEN),
    CallEvent.RESCHEDULE: (frozenset({CallStatus.OPEN}), CallStatus.SCHEDULED),
    CallEvent.CLOSE: (frozenset({CallStatus.OPEN}), CallStatus.CLOSED),
    CallEvent.REVIEW: (frozenset({CallStatus.CLOSED}), CallStatus.UNDER_REVIEW),
    CallEvent.DECIDE: (
        frozenset({CallStatus.CLOSED, CallStatus.UNDER_REVIEW}),
        CallStatus.DECIDED,
    ),
    CallEvent.PUBLISH: (frozenset({CallStatus.DECIDED}), CallStatus.RESULTS_PUBLISHED),
    CallEvent.CANCEL: (CALL_UNDECIDED, CallStatus.CANCELLED),
}

# Calls whose dates may still move (PATCH opens_at / closes_at).
CALL_DATES_EDITABLE = frozenset({CallStatus.SCHEDULED, CallStatus.OPEN})
# Calls where the landlord may offer or reject: the ranking is frozen and nothing decided yet.
CALL_OFFERABLE = frozenset({CallStatus.CLOSED, CallStatus.UNDER_REVIEW})


def call_transition(current: CallStatus, event: CallEvent) -> CallStatus:
    """The call's status after `event`, or TransitionError."""
    allowed, after = CALL_TRANSITIONS[event]
    if current not in allowed:
        names = ", ".join(sorted(s.value for s in allowed))
        raise TransitionError(
            f"A call that is '{current}' cannot {event.value}; that needs a call that is: {names}."
        )
    return after


def status_at(opens_at: datetime, now: datetime) -> CallStatus:
    """Where a new call (or a scheduled one whose opening moved) stands by the clock; closing
    is the worker's, since it freezes the ranking."""
    if now < opens_at:
        return CallStatus.SCHEDULED
    return CallStatus.OPEN


@dataclass(frozen=True)
class Ranked:
    """One submitted application as the frozen ranking orders it."""

    application_id: str
    score: int
    submitted_at: datetime


def frozen_order(entries: list[Ranked]) -> list[Ranked]:
    """The published tie-break: higher score first, then earlier submission, then id (so two
    replicas freezing the same call write the same ranking)."""
    return sorted(entries, key=lambda e: (-e.score, e.submitted_at, e.application_id))


# SIRET ----------------------------------------------------------------------------------------

# La Poste's establishments share the SIREN 356 000 000; their SIRETs cannot all pass the Luhn
# check, so INSEE gives them another one: the sum of the 14 digits is a multiple of 5. Only the
# head office (356 000 000 00048) passes the Luhn check; either rule is accepted.
LA_POSTE_SIREN = "356000000"


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check over a string of digits."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def siret_problem(siret: str) -> str | None:
    """Why `siret` is not a valid SIRET, or None when it is."""
    if len(siret) != 14 or not siret.isascii() or not siret.isdigit():
        return "a SIRET is exactly 14 digits"
    if siret.startswith(LA_POSTE_SIREN):
        if sum(int(c) for c in siret) % 5 != 0 and not luhn_valid(siret):
            return "a La Poste SIRET (SIREN 356000000) has digits summing to a multiple of 5"
        return None
    if not luhn_valid(siret):
        return "this SIRET fails the Luhn check digit: check for a mistyped digit"
    return None
