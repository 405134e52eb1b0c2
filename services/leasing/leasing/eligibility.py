"""The published rule language of allocation programmes: eligibility, scoring, rent caps and
residency limits.

Pure: no I/O and no clock, the caller passes the evaluation date. Other services re-implement
these rules from the `leasing.programme.published.v1` events, so the semantics are specified in
services/leasing/README.md ("The rule language"); change the two together.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leasing.domain import SITE_KINDS, Label, LegalForm

SLUG = r"^[a-z][a-z0-9_-]{1,59}$"
MAX_GRID_POINTS = 100


class CriterionKind(StrEnum):
    BUSINESS_AGE = "business_age"
    LABEL = "label"
    LEGAL_FORM = "legal_form"
    TRADE_MATCH = "trade_match"
    WAITING_TIME = "waiting_time"


# The parameter each kind needs; every other parameter must be left out.
_PARAMS: dict[CriterionKind, str | None] = {
    CriterionKind.BUSINESS_AGE: "under_years",
    CriterionKind.LABEL: "labels",
    CriterionKind.LEGAL_FORM: "legal_forms",
    CriterionKind.TRADE_MATCH: None,
    CriterionKind.WAITING_TIME: "points_per_month",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Criterion(_Frozen):
    """One line of a scoring grid: what earns points, and how many at most."""

    id: str = Field(pattern=SLUG)
    kind: CriterionKind
    label: str = Field(min_length=3, max_length=200)
    points: int = Field(
        strict=True, ge=1, le=MAX_GRID_POINTS, description="the most this line can award"
    )
    under_years: int | None = Field(strict=True, default=None, ge=1, le=50)
    labels: list[Label] | None = Field(default=None, min_length=1)
    legal_forms: list[LegalForm] | None = Field(default=None, min_length=1)
    points_per_month: int | None = Field(strict=True, default=None, ge=1, le=MAX_GRID_POINTS)

    @model_validator(mode="after")
    def _params_fit_the_kind(self) -> Criterion:
        needed = _PARAMS[self.kind]
        for name in {p for p in _PARAMS.values() if p}:
            given = getattr(self, name) is not None
            if name == needed and not given:
                raise ValueError(f"criterion {self.id!r} ({self.kind}) needs {name}")
            if name != needed and given:
                raise ValueError(f"criterion {self.id!r} ({self.kind}) does not take {name}")
        return self


class Rules(_Frozen):
    """Eligibility rules and the limits every lease of the programme respects."""

    max_business_age_years: int | None = Field(strict=True, default=None, ge=1, le=50)
    allowed_legal_forms: list[LegalForm] | None = Field(default=None, min_length=1)
    requires_trade_match: bool = Field(default=False, strict=True)
    rent_cap_eur_m2_year: float = Field(strict=True, gt=0, le=1_500)
    max_residency_months: int = Field(strict=True, ge=1, le=240)
    renewable_times: int = Field(strict=True, default=0, ge=0, le=10)


class OutOfRankGround(_Frozen):
    """A published reason for offering to someone other than the top-ranked applicant, or for
    rejecting an application; the landlord adds free text to it."""

    id: str = Field(pattern=SLUG)
    label: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=1000)


# The grounds a programme publishes when its file names none: the reasons French social
# landlords' allocation committees commonly record for passing over the first in rank.
DEFAULT_OUT_OF_RANK_GROUNDS: tuple[OutOfRankGround, ...] = (
    OutOfRankGround(
        id="unreachable",
        label="The applicant could not be reached",
        description="The applicant did not answer the offer's contact attempts within the "
        "period the landlord set.",
    ),
    OutOfRankGround(
        id="guarantees_missing",
        label="Guarantees or insurance missing",
        description="The applicant could not provide the security deposit, a guarantor or the "
        "professional insurance the lease requires.",
    ),
    OutOfRankGround(
        id="technical_unfit",
        label="The project does not fit the unit's technical limits",
        description="The activity needs more than the unit offers (floor load, power, "
        "ventilation, noise, hazardous materials).",
    ),
    OutOfRankGround(
        id="jury_decision",
        label="Reasoned decision of the jury",
        description="The call's jury chose another applicant and recorded its reasons in the "
        "minutes of its session.",
    ),
    OutOfRankGround(
        id="applicant_withdrew",
        label="The applicant is no longer available",
        description="The applicant told the landlord they no longer want or can take the unit.",
    ),
)


class Programme(_Frozen):
    id: str = Field(pattern=SLUG)
    name: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=2000)
    site_kinds: list[str] = Field(min_length=1)
    rules: Rules
    scoring: list[Criterion] = Field(min_length=1)
    call_days: int = Field(
        strict=True, default=21, ge=1, le=180, description="days a call for applications stays open"
    )
    appeal_days: int = Field(
        strict=True,
        default=60,
        ge=1,
        le=365,
        description="days to appeal once a call's results are out",
    )
    out_of_rank_grounds: list[OutOfRankGround] = Field(
        default_factory=lambda: list(DEFAULT_OUT_OF_RANK_GROUNDS), min_length=1, max_length=30
    )

    def ground(self, ground_id: str) -> OutOfRankGround | None:
        """The published out-of-rank ground with this id, if the programme has it."""
        return next((g for g in self.out_of_rank_grounds if g.id == ground_id), None)

    @field_validator("site_kinds")
    @classmethod
    def _known_site_kinds(cls, kinds: list[str]) -> list[str]:
        unknown = sorted(set(kinds) - SITE_KINDS)
        if unknown:
            raise ValueError(f"unknown site kinds {unknown}; known: {sorted(SITE_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError("site_kinds must not repeat a kind")
        return kinds

    @model_validator(mode="after")
    def _grid_is_sound(self) -> Programme:
        ids = [c.id for c in self.scoring]
        if len(set(ids)) != len(ids):
            raise ValueError(f"programme {self.id!r}: two scoring criteria share an id")
        grounds = [g.id for g in self.out_of_rank_grounds]
        if len(set(grounds)) != len(grounds):
            raise ValueError(f"programme {self.id!r}: two out-of-rank grounds share an id")
        total = sum(c.points for c in self.scoring)
        if total > MAX_GRID_POINTS:
            # One scale for every grid, so applications to one unit under different
            # programmes can be ranked together.
            raise ValueError(
                f"programme {self.id!r}: the grid awards up to {total} points; the most is "
                f"{MAX_GRID_POINTS}"
            )
        return self

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.scoring)


class Catalogue(_Frozen):
    programmes: list[Programme] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalogue:
        ids = [p.id for p in self.programmes]
        if len(set(ids)) != len(ids):
            raise ValueError("two programmes share an id")
        return self

    def get(self, programme_id: str) -> Programme | None:
        return next((p for p in self.programmes if p.id == programme_id), None)


# Facts the rules are evaluated on ----------------------------------------------------------


@dataclass(frozen=True)
class Applicant:
    legal_form: str
    trades: frozenset[str]
    labels: frozenset[str]
    business_created_on: date
    registered_on: date


@dataclass(frozen=True)
class UnitFacts:
    site_kind: str
    allowed_trades: frozenset[str]


@dataclass(frozen=True)
class RuleFailure:
    """One rule an applicant does not meet, with what it requires and what was found."""

    programme_id: str
    rule: str
    message: str
    required: Any
    actual: Any

    def as_dict(self) -> dict[str, Any]:
        return {
            "programme_id": self.programme_id,
            "rule": self.rule,
            "message": self.message,
            "required": self.required,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class CriterionScore:
    criterion_id: str
    kind: str
    label: str
    points: int
    max_points: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "criterion_id": self.criterion_id,
            "kind": self.kind,
            "label": self.label,
            "points": self.points,
            "max_points": self.max_points,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Score:
    programme_id: str
    total: int
    max_total: int
    criteria: tuple[CriterionScore, ...]


# Calendar arithmetic ----------------------------------------------------------------------


def full_years(start: date, on: date) -> int:
    """Whole years from `start` to `on`; a 29 February start completes a year on 1 March."""
    years = on.year - start.year - ((on.month, on.day) < (start.month, start.day))
    return max(years, 0)


def full_months(start: date, on: date) -> int:
    """Whole months from `start` to `on`: a month is complete on the same day number."""
    months = (on.year - start.year) * 12 + on.month - start.month - (on.day < start.day)
    return max(months, 0)


def add_months(start: date, months: int) -> date:
    """`start` plus `months` calendar months, clamped to the last day of a shorter month."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


# Rules -------------------------------------------------------------------------------------


def covers(programme: Programme, site_kind: str) -> bool:
    return site_kind in programme.site_kinds


def programmes_for(programmes: Iterable[Programme], site_kind: str) -> list[Programme]:
    """The programmes a unit of this site kind belongs to, in configuration order."""
    return [p for p in programmes if covers(p, site_kind)]


def trades_match(applicant_trades: Iterable[str], allowed_trades: Iterable[str]) -> bool:
    """A unit listing no trade welcomes every trade; otherwise one trade must be shared."""
    allowed = set(allowed_trades)
    return not allowed or bool(allowed & set(applicant_trades))


def failed_rules(
    programme: Programme, applicant: Applicant, unit: UnitFacts, on: date
) -> list[RuleFailure]:
    """Every rule of `programme` the applicant fails for this unit on `on` (empty: eligible)."""
    rules = programme.rules
    failures: list[RuleFailure] = []

    def fail(rule: str, message: str, required: Any, actual: Any) -> None:
        failures.append(RuleFailure(programme.id, rule, message, required, actual))

    if not covers(programme, unit.site_kind):
        fail(
            "site_kinds",
            f"The programme {programme.name!r} does not cover units in a {unit.site_kind} site.",
            sorted(programme.site_kinds),
            unit.site_kind,
        )
    if rules.max_business_age_years is not None:
        age = full_years(applicant.business_created_on, on)
        if age >= rules.max_business_age_years:
            fail(
                "max_business_age_years",
                f"The business must be less than {rules.max_business_age_years} years old; "
                f"it was created on {applicant.business_created_on.isoformat()} "
                f"({age} full years ago).",
                rules.max_business_age_years,
                age,
            )
    if rules.allowed_legal_forms is not None:
        allowed = sorted(f.value for f in rules.allowed_legal_forms)
        if applicant.legal_form not in allowed:
            fail(
                "allowed_legal_forms",
                f"The legal form must be one of {', '.join(allowed)}; "
                f"it is {applicant.legal_form}.",
                allowed,
                applicant.legal_form,
            )
    if rules.requires_trade_match and not trades_match(applicant.trades, unit.allowed_trades):
        fail(
            "requires_trade_match",
            "None of your trades is allowed in this unit "
            f"(it allows {', '.join(sorted(unit.allowed_trades))}).",
            sorted(unit.allowed_trades),
            sorted(applicant.trades),
        )
    return failures


def score(programme: Programme, applicant: Applicant, unit: UnitFacts, on: date) -> Score:
    """Points of each criterion of the programme's grid, and their sum."""
    lines = [_criterion_score(c, applicant, unit, on) for c in programme.scoring]
    return Score(
        programme_id=programme.id,
        total=sum(line.points for line in lines),
        max_total=programme.max_points,
        criteria=tuple(lines),
    )


def _criterion_score(c: Criterion, a: Applicant, unit: UnitFacts, on: date) -> CriterionScore:
    earned = 0
    if c.kind is CriterionKind.BUSINESS_AGE:
        assert c.under_years is not None
        age = full_years(a.business_created_on, on)
        earned = c.points if age < c.under_years else 0
        detail = f"business {age} full years old (points under {c.under_years})"
    elif c.kind is CriterionKind.LABEL:
        assert c.labels is not None
        held = sorted({x.value for x in c.labels} & a.labels)
        earned = c.points if held else 0
        detail = f"holds {', '.join(held)}" if held else "holds none of the labels"
    elif c.kind is CriterionKind.LEGAL_FORM:
        assert c.legal_forms is not None
        earned = c.points if a.legal_form in {x.value for x in c.legal_forms} else 0
        detail = f"legal form {a.legal_form}"
    elif c.kind is CriterionKind.TRADE_MATCH:
        earned = c.points if trades_match(a.trades, unit.allowed_trades) else 0
        shared = sorted(a.trades & unit.allowed_trades)
        if not unit.allowed_trades:
            detail = "the unit allows every trade"
        else:
            detail = f"shared trades: {', '.join(shared)}" if shared else "no shared trade"
    else:
        assert c.points_per_month is not None
        months = full_months(a.registered_on, on)
        earned = min(c.points, months * c.points_per_month)
        detail = f"{months} full months since registration"
    return CriterionScore(c.id, c.kind.value, c.label, earned, c.points, detail)


def best_programme(
    programmes: Sequence[Programme], applicant: Applicant, unit: UnitFacts, on: date
) -> tuple[Programme | None, list[RuleFailure]]:
    """The first programme (in order) the applicant is eligible for, else every failure."""
    failures: list[RuleFailure] = []
    for programme in programmes:
        failed = failed_rules(programme, applicant, unit, on)
        if not failed:
            return programme, []
        failures.extend(failed)
    return None, failures


# Rent cap and residency ----------------------------------------------------------------------


def monthly_rent_cap_eur(rules: Rules, surface_m2: float) -> Decimal:
    """The highest monthly rent allowed: cap × surface ÷ 12, rounded half-up to the cent."""
    raw = Decimal(str(rules.rent_cap_eur_m2_year)) * Decimal(str(surface_m2)) / 12
    return raw.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def latest_end_date(rules: Rules, start: date) -> date:
    """The last end date a lease (or one renewal) starting on `start` may have."""
    return add_months(start, rules.max_residency_months)
