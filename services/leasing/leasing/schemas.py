"""Leasing API input and output models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonDict, JsonSchemaValue
from pydantic_core import CoreSchema

from fabkit.schemas import IsoDate, StrictInput
from leasing.domain import (
    ApplicationStatus,
    Label,
    LeaseStatus,
    LegalForm,
    siret_problem,
)
from leasing.eligibility import (
    SLUG,
    Catalogue,
    Criterion,
    OutOfRankGround,
    Rules,
    programmes_for,
)
from leasing.models import Application, ApplicationDecision, ArtisanProfile, Lease, UnitListing
from leasing.programmes import content_hash

# 14 digits, spaced as printed if one likes; the Luhn check is done by _normalise_siret.
SIRET_PATTERN = "^[ \u00a0]*(?:[0-9][ \u00a0]*){14}$"
# (0, 100000] with at most two decimals, written plainly.
RENT_PATTERN = r"^(?:[1-9]\d{0,4}(?:\.\d{1,2})?|0\.(?:[1-9]\d?|0[1-9])|100000(?:\.00?)?)$"
_RENT_RE = re.compile(RENT_PATTERN)
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


def _not_nullable(schema: JsonSchemaValue) -> None:
    """`x: T | None = None` marks a field that may be left out, not one that may be null."""
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf", [])
        if {"type": "null"} in options:
            rest = [o for o in options if o != {"type": "null"}]
            del prop["anyOf"]
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest


# Repeated values are refused by _unique_sorted; the schema says so too.
_UNIQUE: JsonDict = {"uniqueItems": True}


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "display_name": "Atelier Camille Roux",
                    "business_name": "Roux Céramique",
                    "siret": "732 829 320 00074",
                    "trades": ["ceramics"],
                    "business_created_on": "2024-03-01",
                    "legal_form": "micro_entreprise",
                    "labels": ["fabrique_a_paris"],
                    "contact_email": "camille.roux@example.org",
                }
            ]
        }
    )

    display_name: str = Field(min_length=2, max_length=120, examples=["Atelier Camille Roux"])
    business_name: str = Field(min_length=2, max_length=200, examples=["Roux Céramique"])
    siret: str = Field(
        min_length=14,
        max_length=20,
        pattern=SIRET_PATTERN,
        description="14 digits (spaces allowed), Luhn-checked; La Poste's own rule for 356000000…",
        examples=["73282932000074"],
    )
    trades: list[Trade] = Field(min_length=1, max_length=10, json_schema_extra=_UNIQUE)
    business_created_on: IsoDate = Field(description="On or after 1900-01-01, not in the future")
    legal_form: LegalForm
    labels: list[Label] = Field(
        default_factory=list, max_length=len(Label), json_schema_extra=_UNIQUE
    )
    contact_email: EmailStr

    _siret = field_validator("siret")(_normalise_siret)
    _trades = field_validator("trades")(_unique_sorted)
    _labels = field_validator("labels")(_unique_sorted)
    _created = field_validator("business_created_on")(_created_on)


class ArtisanPatch(_In):
    """Only the fields sent change; none of them may be null."""

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = super().__get_pydantic_json_schema__(core_schema, handler)
        _not_nullable(schema)
        return schema

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "display_name": "Atelier Camille Roux & Fils",
                    "trades": ["ceramics", "glass"],
                    "labels": ["esus", "fabrique_a_paris"],
                }
            ]
        }
    )

    display_name: str | None = Field(default=None, min_length=2, max_length=120)
    business_name: str | None = Field(default=None, min_length=2, max_length=200)
    siret: str | None = Field(default=None, min_length=14, max_length=20, pattern=SIRET_PATTERN)
    trades: list[Trade] | None = Field(
        default=None, min_length=1, max_length=10, json_schema_extra=_UNIQUE
    )
    business_created_on: IsoDate | None = None
    legal_form: LegalForm | None = None
    labels: list[Label] | None = Field(
        default=None, max_length=len(Label), json_schema_extra=_UNIQUE
    )
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
    contact_email_verified: bool = Field(
        description="The account's verified e-mail is the contact address (the identity "
        "provider checked it); false when the profile names another address."
    )
    version: int
    registered_at: datetime
    updated_at: datetime


# Programmes --------------------------------------------------------------------------------


class ProgrammeOut(BaseModel):
    id: str
    name: str
    description: str
    site_kinds: list[str]
    rules: Rules
    scoring: list[Criterion]
    max_points: int
    call_days: int = Field(description="Days a call for applications stays open by default")
    appeal_days: int = Field(description="Days to appeal once a call's results are published")
    out_of_rank_grounds: list[OutOfRankGround] = Field(
        description="Published reasons for offering to someone other than the first in rank, "
        "or for rejecting an application"
    )


class CatalogueOut(BaseModel):
    config_hash: str = Field(description="SHA-256 of the catalogue; changes when any rule does")
    programmes: list[ProgrammeOut]

    @classmethod
    def of(cls, catalogue: Catalogue) -> CatalogueOut:
        return cls(
            config_hash=content_hash(catalogue),
            programmes=[
                ProgrammeOut.model_validate(p, from_attributes=True) for p in catalogue.programmes
            ],
        )


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

    @classmethod
    def from_model(cls, listing: UnitListing, catalogue: Catalogue) -> ListingOut:
        covering = programmes_for(catalogue.programmes, listing.site_kind)
        return cls.model_validate(
            {**listing.model_dump(), "programme_ids": [p.id for p in covering]}
        )


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "unit_id": "0b9e7f55-3c1e-4a8e-9a57-2f1d1e0c6a11",
                    "programme_id": "hotels-industriels-jeunes-artisans",
                    "project": "Stoneware tableware for Paris restaurants; two kilns, one "
                    "apprentice.",
                }
            ]
        }
    )

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
    rank: int | None = Field(
        default=None,
        ge=1,
        description="While the application is open (submitted or offered): its place among the "
        "vacancy's open applications, ranked as GET /v1/units/{unit_id}/ranking ranks them "
        "(score, then earliest submission, then id); 1 is first. Null once it is closed.",
    )
    ranked_among: int | None = Field(
        default=None,
        ge=1,
        description="How many open applications the vacancy has, this one included (with rank: "
        '"3rd of 7"); null once it is closed.',
    )

    @classmethod
    def from_model(
        cls,
        app: Application,
        decisions: Sequence[ApplicationDecision] = (),
        lease_id: str | None = None,
        rank: tuple[int, int] | None = None,
    ) -> ApplicationOut:
        kept = [DecisionOut.model_validate(d, from_attributes=True) for d in decisions]
        place, among = rank if rank else (None, None)
        return cls.model_validate(
            {
                **app.model_dump(),
                "lease_id": lease_id,
                "decisions": kept,
                "rank": place,
                "ranked_among": among,
            }
        )


class ReasonIn(_In):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "I found a workshop closer to home."}]}
    )

    reason: str | None = Field(default=None, max_length=2000)


class RejectIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "The kilns need a ventilation this unit cannot take."}]
        }
    )

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

    @classmethod
    def from_model(cls, a: ArtisanProfile) -> ApplicantSummary:
        return cls.model_validate({**a.model_dump(), "artisan_id": a.id})


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

    @classmethod
    def of(cls, rank: int, app: Application, artisan: ArtisanProfile) -> RankingEntry:
        return cls.model_validate(
            {
                **app.model_dump(),
                "rank": rank,
                "application_id": app.id,
                "criteria": app.score_breakdown,
                "applicant": ApplicantSummary.from_model(artisan),
            }
        )


class RankingOut(BaseModel):
    unit_id: str
    vacancy_id: str | None
    order: str = "score (highest first), then earliest submission, then application id"
    entries: list[RankingEntry]


# Offers and leases -------------------------------------------------------------------------


class OfferCreate(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "monthly_rent_eur": 1250.0,
                    "start_date": "2027-01-01",
                    "end_date": "2029-12-31",
                    "message": "Keys at the caretaker's lodge; visit on Monday at 10:00.",
                }
            ]
        }
    )

    monthly_rent_eur: Annotated[
        Decimal,
        # A number or a plain decimal string ("1250.50"), cents at most: what is accepted is
        # exactly what the schema says (_plain_rent refuses "1e3", " 5" or ".5").
        WithJsonSchema(
            {
                "anyOf": [
                    {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "maximum": 100_000,
                        "multipleOf": 0.01,
                    },
                    {"type": "string", "pattern": RENT_PATTERN},
                ]
            }
        ),
    ] = Field(
        gt=0,
        le=100_000,
        decimal_places=2,
        description="Euros per month, excluding charges; within the programme's cap; cents at most",
    )
    start_date: IsoDate
    end_date: IsoDate
    message: str | None = Field(default=None, max_length=2000)

    @field_validator("monthly_rent_eur", mode="before")
    @classmethod
    def _plain_rent(cls, value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, str) and not _RENT_RE.match(value)):
            raise ValueError(
                "monthly_rent_eur must be a number of euros above 0 and up to 100000 with at "
                'most two decimals, such as 1250.5 or "1250.50"'
            )
        return value


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

    @classmethod
    def from_model(cls, lease: Lease) -> LeaseOut:
        return cls.model_validate(
            {**lease.model_dump(), "monthly_rent_eur": lease.monthly_rent_cents / 100}
        )


class LeaseEndIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reason": "The cooperative moved to a larger workshop.",
                    "ended_on": "2027-06-30",
                    "terminate": True,
                }
            ]
        }
    )

    reason: str = Field(min_length=3, max_length=2000)
    ended_on: IsoDate | None = Field(default=None, description="Defaults to today")
    terminate: bool = Field(
        default=False, description="An early termination rather than the lease running out"
    )


class LeaseRenewIn(_In):
    model_config = ConfigDict(json_schema_extra={"examples": [{"end_date": "2030-12-31"}]})

    end_date: IsoDate


class LettingFigures(BaseModel):
    """Vacancies and time to let for one arrondissement, one site kind, or the whole city."""

    key: str = Field(description="The arrondissement (1–20), the site kind, or `all`")
    open_vacancies: int = Field(description="Vacancies open now")
    open_days_median: float | None = Field(
        description="Median days the open vacancies have been open so far (null: none open)"
    )
    lets: int = Field(description="Leases signed in the period")
    timed_lets: int = Field(
        description="Lets whose vacancy opening leasing knows (the time to let is over these)"
    )
    days_to_let_median: float | None = Field(
        description="Median days from the vacancy opening to the lease signed (null: no let)"
    )
    days_to_let_mean: float | None = Field(description="Mean of the same, in days")


class LettingStats(BaseModel):
    """Vacancies open now and lets in a period, by arrondissement and by site kind."""

    since: date = Field(description="First day of the period (UTC)")
    until: date = Field(description="Last day of the period (UTC), included")
    as_of: datetime = Field(description="When the open vacancies were counted")
    total: LettingFigures
    by_arrondissement: list[LettingFigures] = Field(description="Arrondissements with figures")
    by_site_kind: list[LettingFigures] = Field(description="Site kinds with figures")
