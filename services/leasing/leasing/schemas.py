"""Leasing API input and output models."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonDict, JsonSchemaValue
from pydantic_core import CoreSchema

from fabkit.schemas import IsoDate, StrictInput
from leasing.domain import (
    ApplicationStatus,
    CallStatus,
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
    Programme,
    Rules,
    programmes_for,
)
from leasing.models import (
    Application,
    ApplicationDecision,
    ArtisanProfile,
    Call,
    CallRanking,
    Lease,
    ProgrammeVersion,
    UnitListing,
)
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
    version: int | None = Field(
        default=None,
        description="The catalogue version in force (also the ETag to send in If-Match when "
        "changing a programme); null only before the first version is stored",
    )
    config_hash: str = Field(description="SHA-256 of the catalogue; changes when any rule does")
    programmes: list[ProgrammeOut]

    @classmethod
    def of(cls, catalogue: Catalogue, version: int | None = None) -> CatalogueOut:
        return cls(
            version=version,
            config_hash=content_hash(catalogue),
            programmes=[
                ProgrammeOut.model_validate(p, from_attributes=True) for p in catalogue.programmes
            ],
        )


_PROGRAMME_EXAMPLE: dict[str, Any] = {
    "id": "ateliers-bois-paris-est",
    "name": "Ateliers bois Paris Est",
    "description": "Woodworking workshops in the east of Paris for young businesses.",
    "site_kinds": ["hotel_activites"],
    "call_days": 21,
    "appeal_days": 60,
    "rules": {
        "max_business_age_years": 5,
        "requires_trade_match": True,
        "rent_cap_eur_m2_year": 160.0,
        "max_residency_months": 36,
        "renewable_times": 0,
    },
    "scoring": [
        {
            "id": "young_business",
            "kind": "business_age",
            "label": "Business created less than two years ago",
            "under_years": 2,
            "points": 40,
        },
        {
            "id": "trade_fit",
            "kind": "trade_match",
            "label": "One of the applicant's trades is allowed in the unit",
            "points": 30,
        },
        {
            "id": "waiting_time",
            "kind": "waiting_time",
            "label": "Time waiting since registration (1 point a month)",
            "points_per_month": 1,
            "points": 30,
        },
    ],
    "out_of_rank_grounds": [
        {
            "id": "guarantees_missing",
            "label": "Guarantees or insurance missing",
            "description": "The applicant could not provide the guarantees the lease requires.",
        },
        {"id": "jury_decision", "label": "Reasoned decision of the jury"},
    ],
    "note": "New programme voted by the Conseil de Paris on 12 November.",
}


class ProgrammeIn(Programme):
    """A whole programme in the rule language (as `GET /v1/programmes/{id}` shows it), and
    why it changes."""

    model_config = ConfigDict(json_schema_extra={"examples": [_PROGRAMME_EXAMPLE]})

    note: str | None = Field(
        default=None,
        min_length=3,
        max_length=500,
        description="Why the catalogue changes; kept with the new catalogue version",
    )

    # What GET answers can be sent back as is: max_points is computed, so it is taken when
    # it matches the grid and refused when it does not.
    sent_max_points: int | None = Field(
        default=None,
        alias="max_points",
        exclude=True,
        description="Computed (the sum of the grid's points): leave it out, or send back the "
        "value you read",
    )

    @model_validator(mode="after")
    def _max_points_is_the_grid(self) -> ProgrammeIn:
        if self.sent_max_points is not None and self.sent_max_points != self.max_points:
            raise ValueError(
                f"max_points is the sum of the grid's points ({self.max_points}), not "
                f"{self.sent_max_points}; leave it out."
            )
        return self

    def programme(self) -> Programme:
        """The programme alone, as the catalogue stores it."""
        return Programme.model_validate(self.model_dump(exclude={"note", "sent_max_points"}))


class ProgrammeVersionSummary(BaseModel):
    version: int
    config_hash: str
    programme_ids: list[str]
    created_by: str = Field(
        description="The officer's or admin's account id, or `seed` for the programme file"
    )
    created_at: datetime
    note: str | None

    @classmethod
    def of(cls, row: ProgrammeVersion) -> ProgrammeVersionSummary:
        return cls(
            version=row.version,
            config_hash=row.config_hash,
            programme_ids=[p["id"] for p in row.body["programmes"]],
            created_by=row.created_by,
            created_at=row.created_at,
            note=row.note,
        )


class ProgrammeVersionOut(ProgrammeVersionSummary):
    programmes: list[ProgrammeOut]

    @classmethod
    def of(cls, row: ProgrammeVersion) -> ProgrammeVersionOut:
        catalogue = Catalogue.model_validate(row.body)
        return cls(
            **ProgrammeVersionSummary.of(row).model_dump(),
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
    draft: bool = Field(
        default=False,
        description="Save a draft (also while the call is scheduled): not ranked, submitted "
        "later with POST /v1/applications/{id}/submit while the call is open.",
    )


class ApplicationSubmitIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"project": "Stoneware tableware for Paris restaurants; two kilns, one apprentice."}
            ]
        }
    )

    project: str | None = Field(
        default=None,
        min_length=20,
        max_length=4000,
        description="The project to submit, if it changed since the draft was saved.",
    )


class DecisionOut(BaseModel):
    decision: str
    status_after: ApplicationStatus
    actor_role: str
    actor_id: str
    reason: str | None
    lease_id: str | None
    decided_at: datetime
    ground: str | None = Field(
        default=None,
        description="The published out-of-rank ground of an offer to someone other than the "
        "first in rank, or of a rejection (GET /v1/programmes lists them); `reason` is the text.",
    )


class ApplicationCallOut(BaseModel):
    """Where an application stands in its call: the call's status and, once the ranking is
    frozen, its rank and points."""

    call_id: str
    status: CallStatus
    opens_at: datetime
    closes_at: datetime
    rank: int | None = Field(default=None, description="Frozen rank (1 is first), once closed")
    ranked_among: int | None = Field(default=None, description="How many the call ranked")
    score: int | None = Field(default=None, description="Points in the frozen ranking")
    max_score: int | None = None
    criteria: list[CriterionPoints] = Field(
        default_factory=list, description="Points per criterion, as the frozen ranking counted"
    )

    @classmethod
    def of(cls, call: Call, line: tuple[CallRanking, int] | None) -> ApplicationCallOut:
        out = cls(
            call_id=call.id,
            status=CallStatus(call.status),
            opens_at=call.opens_at,
            closes_at=call.closes_at,
        )
        if line is not None:
            ranked, among = line
            out.rank, out.ranked_among = ranked.rank, among
            out.score, out.max_score = ranked.score, ranked.max_score
            out.criteria = [CriterionPoints(**c) for c in ranked.score_breakdown]
        return out


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
    call_id: str | None = Field(default=None, description="The call for applications")
    call: ApplicationCallOut | None = Field(
        default=None,
        description="The call's status and dates, and this application's frozen rank and "
        "points once the call closed",
    )

    @classmethod
    def from_model(
        cls,
        app: Application,
        decisions: Sequence[ApplicationDecision] = (),
        lease_id: str | None = None,
        rank: tuple[int, int] | None = None,
        call: ApplicationCallOut | None = None,
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
                "call": call,
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
    ground: str | None = Field(
        default=None,
        pattern=SLUG,
        max_length=60,
        description="One of the programme's published grounds (GET /v1/programmes, "
        "out_of_rank_grounds); required for an application of a call.",
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


class OutOfRankIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ground": "technical_unfit",
                    "explanation": "The first applicant's kilns need 60 kVA; the unit has 36.",
                }
            ]
        }
    )

    ground: str = Field(
        pattern=SLUG,
        max_length=60,
        description="One of the programme's published out_of_rank_grounds (GET /v1/programmes)",
    )
    explanation: str = Field(
        min_length=10, max_length=2000, description="Why, in words: recorded and published"
    )


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
    out_of_rank: OutOfRankIn | None = Field(
        default=None,
        description="Required to offer to anyone but the first in the call's frozen ranking "
        "still in the running: a published ground and your explanation, shown in the results.",
    )

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


# Calls for applications ----------------------------------------------------------------------


class CallCounts(BaseModel):
    applications: int = Field(
        description="Applications other than open drafts, whatever became of them (a draft the "
        "closing found unsubmitted is counted here, closed)"
    )
    drafts: int = Field(description="Drafts saved, not yet submitted")
    ranked: int = Field(description="Lines of the frozen ranking (0 until the call closes)")


class CallOut(BaseModel):
    """A call for applications, as anyone may see it: dates, status, counts, never a name."""

    id: str
    vacancy_id: str
    unit_id: str
    landlord_id: str
    status: CallStatus
    opens_at: datetime
    closes_at: datetime
    catalogue_version: int = Field(description="The programme catalogue version it opened under")
    ranking_frozen_at: datetime | None
    decided_at: datetime | None
    results_published_at: datetime | None
    appeals_close_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    counts: CallCounts

    @classmethod
    def of(cls, call: Call, by_status: dict[str, int], ranked: int) -> CallOut:
        drafts = by_status.get(ApplicationStatus.DRAFT.value, 0)
        counts = CallCounts(
            applications=sum(by_status.values()) - drafts, drafts=drafts, ranked=ranked
        )
        return cls.model_validate({**call.model_dump(), "counts": counts})


class CallPatch(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"opens_at": "2027-01-04T09:00:00Z", "closes_at": "2027-01-25T18:00:00Z"}]
        }
    )

    opens_at: AwareDatetime | None = Field(
        default=None,
        description="While the call is scheduled, or open with nobody applied yet (it is then "
        "scheduled again until that date)",
    )
    closes_at: AwareDatetime | None = Field(
        default=None, description="While scheduled or open; never in the past"
    )


class CallDecideIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "unawarded",
                    "reason": "No applicant's project fits the unit's floor load.",
                }
            ]
        }
    )

    outcome: Literal["unawarded"] = Field(
        description="Nobody is chosen (a signed lease decides the call by itself)"
    )
    reason: str = Field(min_length=10, max_length=2000, description="Why: told to applicants")


class CallRankingEntry(BaseModel):
    rank: int
    application_id: str
    status: ApplicationStatus
    in_the_running: bool = Field(description="Still submitted: can be offered the unit")
    programme_id: str
    score: int
    max_score: int
    criteria: list[CriterionPoints]
    submitted_at: datetime
    applicant: ApplicantSummary
    decisions: list[DecisionOut]


class CallRankingOut(BaseModel):
    call_id: str
    status: CallStatus
    ranking_frozen_at: datetime | None
    order: str = (
        "score (highest first) from the call's catalogue version, then earliest submission, "
        "then application id"
    )
    entries: list[CallRankingEntry]


# Juries, published results and appeals ---------------------------------------------------------


class JuryMemberIn(_In):
    name: str = Field(min_length=2, max_length=120, description="Published with the results")
    organisation: str = Field(min_length=2, max_length=200, description="Published")
    role: str = Field(min_length=2, max_length=120, description="e.g. chair, elected member")
    conflict_of_interest: bool = Field(
        default=False, description="A declared conflict recuses the member from this call"
    )
    declaration: str | None = Field(
        default=None,
        max_length=2000,
        description="What the conflict is (required with conflict_of_interest); never published",
    )


class JuryIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "members": [
                        {
                            "name": "Claire Martin",
                            "organisation": "Ville de Paris, DAE",
                            "role": "chair",
                        },
                        {
                            "name": "Paul Durand",
                            "organisation": "Ateliers de Paris",
                            "role": "member",
                            "conflict_of_interest": True,
                            "declaration": "Mentored one applicant in 2025.",
                        },
                    ],
                    "session_date": "2027-02-03",
                    "minutes": "The jury read the ranking and the four projects.",
                    "decision": "The jury follows the ranking: the first ranked is chosen.",
                }
            ]
        }
    )

    members: list[JuryMemberIn] = Field(min_length=1, max_length=30)
    session_date: IsoDate
    minutes: str = Field(
        min_length=10, max_length=20000, description="Kept for the landlord, officers, admins"
    )
    decision: str = Field(
        min_length=10,
        max_length=5000,
        description="Published with the results: write it without applicants' names",
    )


class JuryMemberOut(BaseModel):
    name: str
    organisation: str
    role: str
    conflict_of_interest: bool
    recused: bool = Field(description="A declared conflict recuses the member from this call")
    declaration: str | None


class JuryOut(BaseModel):
    """A call's jury as its landlord, officers and admins see it."""

    call_id: str
    members: list[JuryMemberOut]
    session_date: date
    minutes: str
    decision: str
    recorded_by: str
    recorded_at: datetime
    version: int


class PublicJuryMember(BaseModel):
    """Jury members act in a public capacity: name, organisation and role are published."""

    name: str
    organisation: str
    role: str
    recused: bool


class PublicJury(BaseModel):
    members: list[PublicJuryMember]
    session_date: date
    decision: str


class ResultCriterionOut(BaseModel):
    criterion_id: str
    label: str
    points: int
    max_points: int


class DepartureOut(BaseModel):
    """A decision that did not follow the ranking's order."""

    decision: str = Field(description="offered (out of rank) or rejected")
    ground: str = Field(description="The published ground's id (GET /v1/programmes)")
    ground_label: str
    explanation: str | None = Field(description="The landlord's text given with the ground")


class ResultRowOut(BaseModel):
    candidate: str = Field(description="The applicant by rank only: never a name")
    rank: int
    score: int
    max_score: int
    criteria: list[ResultCriterionOut]
    outcome: str = Field(
        description="leased, offered, offer_declined, offer_expired, rejected, withdrawn, "
        "not_chosen (decided without them) or not_reached"
    )
    order_followed: bool
    departures: list[DepartureOut]


class CallResultsOut(BaseModel):
    """A call's published results: anonymised, public."""

    call_id: str
    unit_id: str
    status: CallStatus
    catalogue_version: int
    closes_at: datetime
    ranking_frozen_at: datetime | None
    decided_at: datetime | None
    results_published_at: datetime
    appeals_close_at: datetime
    outcome: str = Field(description="leased (a lease was signed) or unawarded")
    ranked: int = Field(description="How many applications the frozen ranking holds")
    order: str = (
        "score (highest first) from the call's catalogue version, then earliest submission, "
        "then application id"
    )
    rows: list[ResultRowOut]
    jury: PublicJury | None


class ResultsSummaryOut(BaseModel):
    call_id: str
    unit_id: str
    results_published_at: datetime
    appeals_close_at: datetime


class AppealIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "grounds": "My ESUS label was not counted although my profile carries it "
                    "since March."
                }
            ]
        }
    )

    grounds: str = Field(
        min_length=20, max_length=5000, description="What you contest in the results, and why"
    )


class AppealAnswerIn(_In):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "dismissed",
                    "answer": "The label was added after the call closed; the ranking uses "
                    "the profile as it stood at closing.",
                }
            ]
        }
    )

    outcome: Literal["upheld", "dismissed"] = Field(
        description="upheld: the appellant is right; dismissed: the results stand"
    )
    answer: str = Field(min_length=10, max_length=5000, description="Told to the appellant")


class AppealOut(BaseModel):
    id: str
    application_id: str
    call_id: str
    artisan_id: str
    landlord_id: str
    status: str = Field(description="filed, then answered")
    grounds: str
    filed_at: datetime
    outcome: str | None
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None
    version: int


# Privacy (export, erasure, audit log) ------------------------------------------------------


class ErasureRequest(_In):
    """An admin's erasure of an artisan on a written request (the data protection officer's)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_reference": "DPO-2026-0142",
                    "note": "Letter received on 2 December 2026, identity checked.",
                }
            ]
        }
    )

    request_reference: str = Field(
        min_length=1,
        max_length=120,
        description="The reference of the written request (letter, e-mail) the erasure answers",
    )
    note: str | None = Field(
        default=None, max_length=500, description="A note for the audit log: no personal data"
    )


class KeptRecord(BaseModel):
    kind: str = Field(description="What is kept: leases, decisions, rankings, privacy_requests")
    why: str = Field(description="The legal duty or public interest that keeps it")


class ErasureOut(BaseModel):
    erasure_id: str = Field(description="The erasure's id in the audit log")
    status: str = Field(description="completed: the profile is erased")
    artisan_id: str
    erased_at: datetime
    kept: list[KeptRecord]
    account: Literal["deletion pending", "deleted"] = Field(
        default="deletion pending",
        description="The identity provider's account: 'deletion pending' until the account "
        "deleter removed it (retried until it is gone), then 'deleted'",
        examples=["deletion pending"],
    )


class RetentionRuleOut(BaseModel):
    """One retention rule as the job applies it (docs/privacy.md's register says the same)."""

    rule: str = Field(description="The rule's name, as in the job's report")
    table: str = Field(description="The table it applies to")
    kept: str = Field(description="What is kept, and what happens at the end of the period")
    period_days: float = Field(description="How long, in days (its setting's value)")
    period: str = Field(description="How long, in words, counted from when")
    setting: str = Field(description="The environment variable that sets the period")
    legal_basis: str = Field(description="Why it is kept that long")


class RetentionRuleRun(BaseModel):
    rule: str
    counts: dict[str, int] = Field(description="What the rule did, by kind (rows changed)")
    error: str | None = Field(
        default=None, description="The error's type when the rule failed (the others ran)"
    )


class RetentionReport(BaseModel):
    """What one run of the retention job did, rule by rule."""

    ran_at: datetime = Field(description="The instant the run counted its periods from")
    rules: list[RetentionRuleRun]

    def count(self, rule: str, kind: str) -> int:
        """How many rows `rule` changed of `kind` (0 when none)."""
        return next((r.counts.get(kind, 0) for r in self.rules if r.rule == rule), 0)


class PrivacyRequestOut(BaseModel):
    id: str
    kind: str = Field(description="export or erasure")
    subject_artisan_id: str
    requested_by: str = Field(description="self, admin or retention (the inactive-account rule)")
    requested_by_id: str = Field(description="The token subject of who asked")
    request_reference: str | None
    note: str | None
    created_at: datetime
    completed_at: datetime | None
    account: Literal["deletion pending", "deleted"] | None = Field(
        default=None,
        description="Erasures: the identity provider's account, 'deletion pending' or "
        "'deleted'; exports: null",
    )
