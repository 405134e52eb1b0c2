"""Inventory API input and output models, with physically sensible bounds."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, EmailStr, Field, field_validator, model_validator

from fabkit.schemas import StrictInput
from inventory.domain import (
    INITIAL_STATUSES,
    LandlordKind,
    SiteKind,
    UnitStatus,
    UseClass,
    postcode_matches_arrondissement,
)

TRADE_RE = re.compile(r"^[a-z][a-z0-9_]{1,59}$")

Trade = Annotated[
    str,
    Field(
        pattern=TRADE_RE.pattern,
        description="A trade slug such as woodwork, ceramics, textile, leather, metalwork.",
        examples=["woodwork"],
    ),
]
Reference = Annotated[
    str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._/-]*$")
]
# Bounds from the Paris sites on record (3–6.3 m ceilings, 600–1,100 kg/m², lots of
# 20–2,700 m²) with generous margins; anything outside is a typo, not a workshop.
Surface = Annotated[float, Field(gt=0, le=10_000, description="m²")]
Ceiling = Annotated[float, Field(ge=2.0, le=12.0, description="metres")]
FloorLoad = Annotated[float, Field(ge=150, le=5_000, description="kg/m²")]
Power = Annotated[float, Field(ge=0, le=2_000, description="kVA")]
Rent = Annotated[float, Field(ge=0, le=1_500, description="€ per m² per year, excluding charges")]
Charges = Annotated[float, Field(ge=0, le=300, description="€ per m² per year")]
Floor = Annotated[int, Field(ge=-3, le=40)]


class _In(StrictInput):
    pass


def _unique_trades(trades: list[str] | None) -> list[str] | None:
    if trades is None:
        return None
    if len(set(trades)) != len(trades):
        raise ValueError("allowed_trades must not repeat a trade")
    return sorted(trades)


def _check_available_from(value: date | None) -> date | None:
    if value is not None and not (date(2000, 1, 1) <= value <= date(2100, 1, 1)):
        raise ValueError("available_from must be a date between 2000-01-01 and 2100-01-01")
    return value


# Landlords ------------------------------------------------------------------------------


class LandlordCreate(_In):
    name: str = Field(min_length=2, max_length=200, examples=["RIVP"])
    kind: LandlordKind = LandlordKind.SOCIAL_LANDLORD
    contact_email: EmailStr | None = None


class LandlordOut(BaseModel):
    id: str
    name: str
    kind: LandlordKind
    contact_email: str | None
    created_at: datetime


class TokenRequest(_In):
    ttl_days: int = Field(default=90, ge=1, le=730)


class TokenOut(BaseModel):
    token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    role: str
    subject: str
    expires_in_seconds: int


# Sites ---------------------------------------------------------------------------------


class _SiteFields(_In):
    name: str = Field(min_length=2, max_length=200)
    kind: SiteKind
    address: str = Field(min_length=3, max_length=300)
    postcode: str = Field(pattern=r"^75(0(0[1-9]|1[0-9]|20)|116)$", examples=["75013"])
    arrondissement: int = Field(ge=1, le=20)
    latitude: float | None = Field(default=None, ge=48.80, le=48.91)
    longitude: float | None = Field(default=None, ge=2.22, le=2.47)
    opens_for_visits: bool = False
    description: str | None = Field(default=None, max_length=2000)


class SiteCreate(_SiteFields):
    landlord_id: str | None = Field(
        default=None, description="Required when an admin creates a site for a landlord."
    )

    @model_validator(mode="after")
    def _postcode_fits(self) -> SiteCreate:
        if not postcode_matches_arrondissement(self.postcode, self.arrondissement):
            raise ValueError(
                f"postcode {self.postcode} is not in arrondissement {self.arrondissement}"
            )
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class SitePatch(_In):
    name: str | None = Field(default=None, min_length=2, max_length=200)
    kind: SiteKind | None = None
    address: str | None = Field(default=None, min_length=3, max_length=300)
    postcode: str | None = Field(default=None, pattern=r"^75(0(0[1-9]|1[0-9]|20)|116)$")
    arrondissement: int | None = Field(default=None, ge=1, le=20)
    latitude: float | None = Field(default=None, ge=48.80, le=48.91)
    longitude: float | None = Field(default=None, ge=2.22, le=2.47)
    opens_for_visits: bool | None = None
    description: str | None = Field(default=None, max_length=2000)


class SiteOut(BaseModel):
    id: str
    landlord_id: str
    name: str
    kind: SiteKind
    address: str
    postcode: str
    arrondissement: int
    latitude: float | None
    longitude: float | None
    opens_for_visits: bool
    description: str | None
    version: int
    created_at: datetime
    updated_at: datetime


# Units ---------------------------------------------------------------------------------


class UnitCreate(_In):
    reference: Reference
    floor: Floor = 0
    surface_m2: Surface
    ceiling_height_m: Ceiling | None = None
    floor_load_kg_m2: FloorLoad | None = None
    power_kva: Power | None = None
    goods_lift: bool = False
    loading_dock: bool = False
    extraction: bool = False
    step_free_access: bool = False
    allowed_trades: list[Trade] = Field(default_factory=list, max_length=30)
    use_class: UseClass = UseClass.PRODUCTION
    rent_eur_m2_year: Rent
    charges_eur_m2_year: Charges = 0
    status: UnitStatus = Field(
        default=UnitStatus.UNAVAILABLE, description="available or unavailable at creation"
    )
    available_from: date | None = None

    _trades = field_validator("allowed_trades")(_unique_trades)
    _from = field_validator("available_from")(_check_available_from)

    @field_validator("status")
    @classmethod
    def _initial_status(cls, value: UnitStatus) -> UnitStatus:
        if value not in INITIAL_STATUSES:
            raise ValueError("a new unit starts as 'available' or 'unavailable'")
        return value


class UnitPatch(_In):
    reference: Reference | None = None
    floor: Floor | None = None
    surface_m2: Surface | None = None
    ceiling_height_m: Ceiling | None = None
    floor_load_kg_m2: FloorLoad | None = None
    power_kva: Power | None = None
    goods_lift: bool | None = None
    loading_dock: bool | None = None
    extraction: bool | None = None
    step_free_access: bool | None = None
    allowed_trades: list[Trade] | None = Field(default=None, max_length=30)
    use_class: UseClass | None = None
    rent_eur_m2_year: Rent | None = None
    charges_eur_m2_year: Charges | None = None
    status: UnitStatus | None = None
    available_from: date | None = None
    reason: str | None = Field(
        default=None,
        max_length=2000,
        description="Required (by an admin) for changes that reduce production surface.",
    )

    _trades = field_validator("allowed_trades")(_unique_trades)
    _from = field_validator("available_from")(_check_available_from)


class SiteSummary(BaseModel):
    id: str
    name: str
    kind: SiteKind
    address: str
    postcode: str
    arrondissement: int
    opens_for_visits: bool


class UnitOut(BaseModel):
    id: str
    site_id: str
    landlord_id: str
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
    allowed_trades: list[str]
    use_class: UseClass
    rent_eur_m2_year: float
    charges_eur_m2_year: float
    status: UnitStatus
    available_from: date | None
    vacancy_id: str | None
    version: int
    created_at: datetime
    updated_at: datetime
    site: SiteSummary


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# Production surface ------------------------------------------------------------------


class SurfaceTotal(BaseModel):
    key: str
    label: str
    production_m2: float
    units: int


class SurfaceReport(BaseModel):
    by: str
    at: datetime | None
    total_production_m2: float
    rows: list[SurfaceTotal]


class LedgerEntryOut(BaseModel):
    id: int
    unit_id: str
    site_id: str
    arrondissement: int
    change: str
    delta_m2: float
    production_m2_after: float
    reason: str | None
    actor: str
    recorded_at: datetime


class SurfacePoint(BaseModel):
    day: date
    production_m2: float


class SurfaceHistory(BaseModel):
    arrondissement: int | None
    site_id: str | None
    points: list[SurfacePoint]
