"""Leasing API input and output models."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, EmailStr, Field, field_validator

from fabkit.schemas import StrictInput
from leasing.domain import (
    ApplicationStatus,
    Label,
    LeaseStatus,
    LegalForm,
    siret_problem,
)
from leasing.eligibility import SLUG, Criterion, Rules

TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")

Trade = Annotated[
    str,
    Field(
        pattern=TRADE_RE.pattern,
        description="A trade slug such as woodwork, ceramics, textile, leather, metalwork.",
        examples=["ceramics"],
    ),
]
ProgrammeId = Annotated[str, Field(pattern=SLUG, examples=["hotels-industriels-jeunes-artisans"])]
EntityId = Annotated[str, Field(min_length=1, max_length=36)]


class _In(StrictInput):
    pass


def _normalise_siret(value: str | None) -> str | None:
    if value is None:
        return None
    # People copy SIRETs as printed: "356 000 000 00048".
    siret = value.replace(" ", "").replace("\u00a0", "")
    problem = siret_problem(siret)
    if problem:
        raise ValueError(problem)
    return siret


def _unique_sorted(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    if len(set(values)) != len(values):
        raise ValueError("must not repeat a value")
    return sorted(values)


def _created_on(value: date | None) -> date | None:
    if value is None:
        return None
    if value < date(1900, 1, 1):
        raise ValueError("business_created_on must be after 1900-01-01")
    if value > datetime.now(UTC).date():
        raise ValueError("business_created_on cannot be in the future")
    return value


# Artisans ----------------------------------------------------------------------------------


class ArtisanCreate(_In):
    display_name: str = Field(min_length=2, max_length=120, examples=["Atelier Camille Roux"])
    business_name: str = Field(min_length=2, max_length=200, examples=["Roux Céramique"])
    siret: str = Field(
        min_length=14,
        max_length=20,
        description="14 digits (spaces allowed), Luhn-checked; La Poste's own rule for 356000000…",
        examples=["73282932000074"],
    )
    trades: list[Trade] = Field(min_length=1, max_length=10)
    business_created_on: date
    legal_form: LegalForm
    labels: list[Label] = Field(default_factory=list, max_length=len(Label))
    contact_email: EmailStr

    _siret = field_validator("siret")(_normalise_siret)
    _trades = field_validator("trades")(_unique_sorted)
    _labels = field_validator("labels")(_unique_sorted)
    _created = field_validator("business_created_on")(_created_on)


class ArtisanPatch(_In):
    display_name: str | None = Field(default=None, min_length=2, max_length=120)
    business_name: str | None = Field(default=None, min_length=2, max_length=200)
    siret: str | None = Field(default=None, min_length=14, max_length=20)
    trades: list[Trade] | None = Field(default=None, min_length=1, max_length=10)
    business_created_on: date | None = None
    legal_form: LegalForm | None = None
    labels: list[Label] | None = Field(default=None, max_length=len(Label))
    contact_email: EmailStr | None = None

    _siret = field_validator("siret")(_normalise_siret)
    _trades = field_validator("trades")(_unique_sorted)
    _labels = field_validator("labels")(_unique_sorted)
    _created = field_validator("business_created_on")(_created_on)


class ArtisanOut(BaseModel):
    id: str
    display_name: str
    business_name: str
    siret: str
    trades: list[str]
    business_created_on: date
    legal_form: LegalForm
    labels: list[Label]
    contact_email: str
    version: int
    registered_at: datetime
    updated_at: datetime


class TokenOut(BaseModel):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    role: str
    subject: str
    expires_in_seconds: int


class RegistrationOut(BaseModel):
    artisan: ArtisanOut
    token: TokenOut


# Programmes --------------------------------------------------------------------------------


class ProgrammeOut(BaseModel):
    id: str
    name: str
    description: str
    site_kinds: list[str]
    rules: Rules
    scoring: list[Criterion]
    max_points: int


class CatalogueOut(BaseModel):
    config_hash: str = Field(description="SHA-256 of the catalogue; changes when any rule does")
    programmes: list[ProgrammeOut]


# Units (read model) --------------------------------------------------------------------------


class ListingOut(BaseModel):
    unit_id: str
    site_id: str
    landlord_id: str
    landlord_name: str
    site_name: str
    site_kind: str
    address: str
    postcode: str
    arrondissement: int
    reference: str
    floor: int
    surface_m2: float
    allowed_trades: list[str]
    use_class: str
    rent_eur_m2_year: float
    charges_eur_m2_year: float
    status: str
    available_from: date | None
    opens_for_visits: bool
    vacancy_id: str | None
    vacancy_opened_at: datetime | None
    programme_ids: list[str] = Field(description="Programmes covering this unit's site kind")
    version: int
    updated_at: datetime


class RuleFailureOut(BaseModel):
    programme_id: str
    rule: str
    message: str
    required: object
    actual: object


class CriterionPoints(BaseModel):
    criterion_id: str
    kind: str
    label: str
    points: int
    max_points: int
    detail: str


class ProgrammeVerdict(BaseModel):
    programme_id: str
    name: str
    eligible: bool
    failures: list[RuleFailureOut]
    score: int
    max_score: int
    criteria: list[CriterionPoints]
    monthly_rent_cap_eur: float


class EligibilityOut(BaseModel):
    unit_id: str
    vacancy_id: str | None
    open_for_applications: bool
    evaluated_on: date
    programmes: list[ProgrammeVerdict]


# Applications -----------------------------------------------------------------------------


class ApplicationCreate(_In):
    unit_id: EntityId
    programme_id: ProgrammeId | None = Field(
        default=None,
        description="Apply under this programme; by default the first one you are eligible for.",
    )
    project: str = Field(
        min_length=20,
        max_length=4000,
        description="What you will make in this workshop, and with whom.",
        examples=["Stoneware tableware for Paris restaurants; two kilns, one apprentice."],
    )


class DecisionOut(BaseModel):
    decision: str
    status_after: ApplicationStatus
    actor_role: str
    actor_id: str
    reason: str | None
    lease_id: str | None
    decided_at: datetime


class ApplicationOut(BaseModel):
    id: str
    artisan_id: str
    unit_id: str
    vacancy_id: str
    landlord_id: str
    programme_id: str
    project: str
    status: ApplicationStatus
    score: int
    max_score: int
    score_breakdown: list[CriterionPoints]
    submitted_at: datetime
    updated_at: datetime
    lease_id: str | None = None
    decisions: list[DecisionOut] = Field(default_factory=list)


class ReasonIn(_In):
    reason: str | None = Field(default=None, max_length=2000)


class RejectIn(_In):
    reason: str = Field(
        min_length=10, max_length=2000, description="Told to the applicant: say why."
    )


class ApplicantSummary(BaseModel):
    artisan_id: str
    display_name: str
    business_name: str
    trades: list[str]
    business_created_on: date
    legal_form: str
    labels: list[str]
    contact_email: str


class RankingEntry(BaseModel):
    rank: int
    application_id: str
    status: ApplicationStatus
    programme_id: str
    score: int
    max_score: int
    criteria: list[CriterionPoints]
    project: str
    submitted_at: datetime
    applicant: ApplicantSummary


class RankingOut(BaseModel):
    unit_id: str
    vacancy_id: str | None
    order: str = "score (highest first), then earliest submission, then application id"
    entries: list[RankingEntry]


# Offers and leases -------------------------------------------------------------------------


class OfferCreate(_In):
    monthly_rent_eur: Decimal = Field(
        gt=0, le=100_000, decimal_places=2, description="Excluding charges; within the cap"
    )
    start_date: date
    end_date: date
    message: str | None = Field(default=None, max_length=2000)


class LeaseOut(BaseModel):
    id: str
    unit_id: str
    vacancy_id: str
    application_id: str
    artisan_id: str
    landlord_id: str
    programme_id: str
    status: LeaseStatus
    monthly_rent_eur: float
    start_date: date
    end_date: date
    message: str | None
    offered_by: str
    offered_at: datetime
    offer_expires_at: datetime
    signed_at: datetime | None
    ended_on: date | None
    end_reason: str | None
    renewals: int
    version: int
    updated_at: datetime


class LeaseEndIn(_In):
    reason: str = Field(min_length=3, max_length=2000)
    ended_on: date | None = Field(default=None, description="Defaults to today")
    terminate: bool = Field(
        default=False, description="An early termination rather than the lease running out"
    )


class LeaseRenewIn(_In):
    end_date: date


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
