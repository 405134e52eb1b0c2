"""Inventory API input and output models, with physically sensible bounds."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from fabkit.schemas import IsoDate, StrictInput, text_pattern
from inventory.domain import (
    INITIAL_STATUSES,
    LandlordKind,
    SiteKind,
    SpaceKind,
    UnitStatus,
    UseClass,
    postcode_matches_arrondissement,
)

if TYPE_CHECKING:
    from inventory.models import Site, Unit

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


def _text(min_length: int = 0, max_length: int = 2000) -> Any:
    """Text as the API takes it: no NUL, at least `min_length` characters once stripped."""
    return Field(min_length=min_length, max_length=max_length, pattern=text_pattern(min_length))


Name = Annotated[str, _text(2, 200)]
Address = Annotated[str, _text(3, 300)]
Description = Annotated[str, _text(0, 2000)]
# A development project's id, as units and compensations name it.
ProjectRef = Annotated[str, _text(1, 60)]

# true or false only: pydantic would also take 0, 1, "yes" or "off", which the schema refuses.
Flag = Annotated[bool, Field(strict=True)]
Trades = Annotated[list[Trade], Field(max_length=30, json_schema_extra={"uniqueItems": True})]
Postcode = Annotated[str, Field(pattern=r"^75(0(0[1-9]|1[0-9]|20)|116)$", examples=["75013"])]
# What POST /v1/sites/{id}/units accepts, and so what its schema says (not every UnitStatus).
InitialStatus = Annotated[
    UnitStatus,
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(s.value for s in INITIAL_STATUSES),
            "title": "InitialUnitStatus",
            "description": "A new unit starts as available (a vacancy opens) or unavailable.",
        }
    ),
]


class _In(StrictInput):
    pass


def _documented(
    example: dict[str, Any],
    *,
    not_null: tuple[str, ...] = (),
    all_of: tuple[dict[str, Any], ...] = (),
) -> Callable[[dict[str, Any]], None]:
    """A request body schema with a whole example; `not_null` fields lose their `null` default,
    and `all_of` adds rules across fields.

    Patch fields that may be left out but not cleared are typed `X | SkipJsonSchema[None]`, so
    the schema says what the API accepts; their Python default (None) is no JSON value to send.
    """

    def extra(schema: dict[str, Any]) -> None:
        for name in not_null:
            schema["properties"][name].pop("default", None)
        if all_of:
            schema["allOf"] = list(all_of)
        schema["examples"] = [example]

    return extra


# The cross-field rules of a site, said in the schema too, so that clients (and fuzzers)
# generated from it know them: each arrondissement has its postcode(s), coordinates go in pairs.
_POSTCODE_PAIRS: list[dict[str, Any]] = [
    {"properties": {"arrondissement": {"const": n}, "postcode": {"const": f"750{n:02d}"}}}
    for n in range(1, 21)
] + [{"properties": {"arrondissement": {"const": 16}, "postcode": {"const": "75116"}}}]
_COORDINATE_PAIRS: list[dict[str, Any]] = [
    {
        "required": ["latitude", "longitude"],
        "properties": {"latitude": {"type": "number"}, "longitude": {"type": "number"}},
    },
    {"properties": {"latitude": {"type": "null"}, "longitude": {"type": "null"}}},
]


def _absent(name: str) -> dict[str, Any]:
    return {"properties": {name: False}}


POSTCODE_OF_ARRONDISSEMENT = {
    "description": "The postcode must be the arrondissement's (75001 to 75020; 75116 is the 16th).",
    "anyOf": _POSTCODE_PAIRS,
}
COORDINATES_IN_PAIRS = {
    "description": "Give both latitude and longitude, or neither.",
    "anyOf": _COORDINATE_PAIRS,
}
# A patch naming only one of a pair is checked against the stored other (a 422 if they differ).
PATCHED_POSTCODE_OF_ARRONDISSEMENT = {
    "description": "A patch giving both postcode and arrondissement gives a matching pair.",
    "anyOf": [_absent("postcode"), _absent("arrondissement"), *_POSTCODE_PAIRS],
}


def _refuse_null(value: Any, info: ValidationInfo) -> Any:
    if value is None:
        hint = ", or send [] to allow no trade" if info.field_name == "allowed_trades" else ""
        raise ValueError(
            f"{info.field_name} cannot be null; leave it out to keep the current value{hint}"
        )
    return value


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


def _check_day(value: date | None) -> date | None:
    if value is not None and not (date(2000, 1, 1) <= value <= date(2100, 1, 1)):
        raise ValueError("the date must be between 2000-01-01 and 2100-01-01")
    return value


# Landlords ------------------------------------------------------------------------------


class LandlordCreate(_In):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"name": "RIVP", "kind": "social_landlord", "contact_email": "ateliers@rivp.fr"}
        )
    )

    name: Annotated[Name, Field(examples=["RIVP"])]
    kind: LandlordKind = LandlordKind.SOCIAL_LANDLORD
    contact_email: EmailStr | None = None


class LandlordOut(BaseModel):
    id: str
    name: str
    kind: LandlordKind
    contact_email: str | None
    created_at: datetime


# Logistics of a site ---------------------------------------------------------------------

# Bounds of what last-mile logistics in Paris looks like: quays within walking distance, the
# 19-tonne and 3.5-tonne limits of the city's delivery rules with margins, no lorry above 6 m.
QuayDistance = Annotated[
    int, Field(ge=0, le=5_000, description="Metres to the nearest river quay (0 to 5,000).")
]
StationName = Annotated[
    str,
    Field(
        min_length=2,
        max_length=100,
        pattern=text_pattern(2),
        description="The petite-ceinture station on or next to the site (2 to 100 characters).",
        examples=["Gare de Charonne"],
    ),
]
FreightWeight = Annotated[
    float,
    Field(
        ge=0.5,
        le=60,
        allow_inf_nan=False,
        description="Heaviest freight vehicle the access takes, in tonnes (0.5 to 60).",
    ),
]
FreightHeight = Annotated[
    float,
    Field(
        ge=1,
        le=6,
        allow_inf_nan=False,
        description="Tallest freight vehicle the access takes, in metres (1 to 6).",
    ),
]
CargoBikeSpaces = Annotated[
    int, Field(ge=0, le=500, description="Cargo-bike parking spaces on the site (0 to 500).")
]
_LOGISTICS_EXAMPLE: dict[str, Any] = {
    "rail_siding": True,
    "river_quay_distance_m": 800,
    "petite_ceinture_station": "Gare de Charonne",
    "freight_max_weight_t": 19,
    "freight_max_height_m": 4,
    "cargo_bike_spaces": 12,
}


class LogisticsIn(_In):
    """A site's logistics attributes; each left out is absent (false, null or 0)."""

    model_config = ConfigDict(json_schema_extra=_documented(_LOGISTICS_EXAMPLE))

    rail_siding: Flag = Field(default=False, description="The site has its own rail siding.")
    river_quay_distance_m: QuayDistance | None = None
    petite_ceinture_station: StationName | None = None
    freight_max_weight_t: FreightWeight | None = None
    freight_max_height_m: FreightHeight | None = None
    cargo_bike_spaces: CargoBikeSpaces = 0


_LOGISTICS_NOT_NULL = ("rail_siding", "cargo_bike_spaces")


class LogisticsPatch(_In):
    """The logistics attributes to change; one left out keeps its value, null clears it."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"cargo_bike_spaces": 20, "freight_max_height_m": 3.5}, not_null=_LOGISTICS_NOT_NULL
        )
    )

    rail_siding: Flag | SkipJsonSchema[None] = None
    river_quay_distance_m: QuayDistance | None = None
    petite_ceinture_station: StationName | None = None
    freight_max_weight_t: FreightWeight | None = None
    freight_max_height_m: FreightHeight | None = None
    cargo_bike_spaces: CargoBikeSpaces | SkipJsonSchema[None] = None

    _not_null = field_validator(*_LOGISTICS_NOT_NULL, mode="before")(_refuse_null)


class LogisticsOut(BaseModel):
    rail_siding: bool
    river_quay_distance_m: int | None
    petite_ceinture_station: str | None
    freight_max_weight_t: float | None
    freight_max_height_m: float | None
    cargo_bike_spaces: int

    @classmethod
    def of(cls, row: Site | Unit) -> LogisticsOut:
        """The logistics columns of a site, or the copy its unit carries."""
        return cls.model_validate(row, from_attributes=True)


# Sites ---------------------------------------------------------------------------------


class _SiteFields(_In):
    name: Name
    kind: SiteKind
    address: Address
    postcode: Postcode
    arrondissement: int = Field(ge=1, le=20)
    latitude: float | None = Field(default=None, ge=48.80, le=48.91)
    longitude: float | None = Field(default=None, ge=2.22, le=2.47)
    opens_for_visits: Flag = False
    description: Description | None = None
    logistics: LogisticsIn = Field(
        default_factory=LogisticsIn,
        description="Logistics attributes (rail siding, river quay, petite-ceinture station, "
        "freight access, cargo-bike parking); all optional.",
    )


class SiteCreate(_SiteFields):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {
                "name": "Hôtel industriel Berlier — aile B",
                "kind": "hotel_industriel",
                "address": "26 rue Bruneseau",
                "postcode": "75013",
                "arrondissement": 13,
                "latitude": 48.8262,
                "longitude": 2.3867,
                "opens_for_visits": True,
                "description": "Workshops of 120 to 320 m² with goods lifts, near the ring road.",
                "logistics": {"freight_max_weight_t": 19, "freight_max_height_m": 4},
            },
            all_of=(POSTCODE_OF_ARRONDISSEMENT, COORDINATES_IN_PAIRS),
        )
    )

    landlord_id: Annotated[str, _text(1, 60)] | None = Field(
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


_SITE_NOT_NULL = ("name", "kind", "address", "postcode", "arrondissement", "opens_for_visits")


class SitePatch(_In):
    """The fields to change; a field left out keeps its value."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"name": "Hôtel industriel Berlier", "opens_for_visits": True},
            not_null=_SITE_NOT_NULL,
            # Not the coordinates' rule too: with both, the schema is past what generators
            # (schemathesis' canonicaliser) can expand. A lone coordinate is a 422 that says so.
            all_of=(PATCHED_POSTCODE_OF_ARRONDISSEMENT,),
        )
    )

    name: Name | SkipJsonSchema[None] = None
    kind: SiteKind | SkipJsonSchema[None] = None
    address: Address | SkipJsonSchema[None] = None
    postcode: Postcode | SkipJsonSchema[None] = None
    arrondissement: Annotated[int, Field(ge=1, le=20)] | SkipJsonSchema[None] = None
    latitude: float | None = Field(default=None, ge=48.80, le=48.91)
    longitude: float | None = Field(default=None, ge=2.22, le=2.47)
    opens_for_visits: Flag | SkipJsonSchema[None] = None
    description: Description | None = None
    logistics: LogisticsPatch | SkipJsonSchema[None] = Field(
        default=None,
        description="The logistics attributes to change (the site's units follow).",
    )

    _not_null = field_validator(*_SITE_NOT_NULL, "logistics", mode="before")(_refuse_null)


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
    logistics: LogisticsOut
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        return cls(
            **{k: getattr(site, k) for k in cls.model_fields if k != "logistics"},
            logistics=LogisticsOut.of(site),
        )


# Units ---------------------------------------------------------------------------------


class UnitCreate(_In):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {
                "reference": "B101",
                "floor": 1,
                "surface_m2": 210,
                "ceiling_height_m": 4.2,
                "floor_load_kg_m2": 800,
                "power_kva": 36,
                "goods_lift": True,
                "loading_dock": False,
                "extraction": True,
                "step_free_access": True,
                "allowed_trades": ["metalwork", "woodwork"],
                "use_class": "production",
                "rent_eur_m2_year": 120,
                "charges_eur_m2_year": 25,
                "status": "unavailable",
                "available_from": "2027-01-15",
                "space_kind": "workshop",
            }
        )
    )

    reference: Reference
    floor: Floor = 0
    surface_m2: Surface
    ceiling_height_m: Ceiling | None = None
    floor_load_kg_m2: FloorLoad | None = None
    power_kva: Power | None = None
    goods_lift: Flag = False
    loading_dock: Flag = False
    extraction: Flag = False
    step_free_access: Flag = False
    allowed_trades: Trades = Field(default_factory=list)
    use_class: UseClass = UseClass.PRODUCTION
    rent_eur_m2_year: Rent
    charges_eur_m2_year: Charges = 0
    status: InitialStatus = UnitStatus.UNAVAILABLE
    available_from: IsoDate | None = None
    project_id: ProjectRef | None = Field(
        default=None,
        description="The development project (GET /v1/projects) whose production-m² "
        "commitment this unit counts towards; it must be in the site's arrondissement.",
    )
    space_kind: SpaceKind = Field(
        default=SpaceKind.WORKSHOP,
        description="workshop (production space) or stall (a seasonal sales stall, only on a "
        "marche_saisonnier site, let from period_start to period_end; not production surface).",
    )
    period_start: IsoDate | None = Field(
        default=None, description="A stall's first day let (stalls only, required for them)."
    )
    period_end: IsoDate | None = Field(
        default=None,
        description="A stall's last day let: after period_start, at most 183 days later.",
    )

    _trades = field_validator("allowed_trades")(_unique_trades)
    _from = field_validator("available_from")(_check_available_from)
    _period = field_validator("period_start", "period_end")(_check_day)

    @field_validator("status")
    @classmethod
    def _initial_status(cls, value: UnitStatus) -> UnitStatus:
        if value not in INITIAL_STATUSES:
            raise ValueError("a new unit starts as 'available' or 'unavailable'")
        return value


_UNIT_NOT_NULL = (
    "reference", "floor", "surface_m2", "goods_lift", "loading_dock", "extraction",
    "step_free_access", "allowed_trades", "use_class", "rent_eur_m2_year", "charges_eur_m2_year",
    "status",
)  # fmt: skip


class UnitPatch(_In):
    """The fields to change; a field left out keeps its value. Only the measurements a unit
    may lack (ceiling, floor load, power, available_from) can be cleared with null."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"status": "available", "available_from": "2027-01-15", "rent_eur_m2_year": 115},
            not_null=_UNIT_NOT_NULL,
        )
    )

    reference: Reference | SkipJsonSchema[None] = None
    floor: Floor | SkipJsonSchema[None] = None
    surface_m2: Surface | SkipJsonSchema[None] = None
    ceiling_height_m: Ceiling | None = None
    floor_load_kg_m2: FloorLoad | None = None
    power_kva: Power | None = None
    goods_lift: Flag | SkipJsonSchema[None] = None
    loading_dock: Flag | SkipJsonSchema[None] = None
    extraction: Flag | SkipJsonSchema[None] = None
    step_free_access: Flag | SkipJsonSchema[None] = None
    allowed_trades: Trades | SkipJsonSchema[None] = None
    use_class: UseClass | SkipJsonSchema[None] = None
    rent_eur_m2_year: Rent | SkipJsonSchema[None] = None
    charges_eur_m2_year: Charges | SkipJsonSchema[None] = None
    status: UnitStatus | SkipJsonSchema[None] = None
    available_from: IsoDate | None = None
    project_id: ProjectRef | None = Field(
        default=None,
        description="The development project this unit counts towards (null unlinks it).",
    )
    period_start: IsoDate | SkipJsonSchema[None] = Field(
        default=None, description="A stall's new first day let (stalls only)."
    )
    period_end: IsoDate | SkipJsonSchema[None] = Field(
        default=None, description="A stall's new last day let (stalls only)."
    )
    reason: Description | None = Field(
        default=None,
        description="Why the unit changes, kept in the production-surface ledger.",
    )
    compensation: CompensationIn | SkipJsonSchema[None] = Field(
        default=None,
        description="Required, unless uncompensated is given, when the change removes "
        "production m² (surface reduced, use changed away from production, withdrawn): the "
        "new production m² in the same arrondissement that make the loss good.",
    )
    uncompensated: UncompensatedIn | SkipJsonSchema[None] = Field(
        default=None,
        description="Records a loss of production m² without compensation (officers and "
        "admins only); the loss is flagged to officers and counted in the metrics.",
    )

    _not_null = field_validator(*_UNIT_NOT_NULL, "period_start", "period_end", mode="before")(
        _refuse_null
    )
    _trades = field_validator("allowed_trades")(_unique_trades)
    _from = field_validator("available_from")(_check_available_from)
    _period = field_validator("period_start", "period_end")(_check_day)

    @model_validator(mode="after")
    def _one_cover(self) -> UnitPatch:
        if self.compensation is not None and self.uncompensated is not None:
            raise ValueError(
                "give either compensation or uncompensated for a loss of production m², not both"
            )
        return self


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
    project_id: str | None = None
    space_kind: SpaceKind = SpaceKind.WORKSHOP
    period_start: date | None = None
    period_end: date | None = None
    logistics: LogisticsOut = Field(description="The site's logistics attributes.")
    version: int
    created_at: datetime
    updated_at: datetime
    site: SiteSummary

    @classmethod
    def of(cls, unit: Unit, site: Site) -> UnitOut:
        """The unit as the API shows it, with a summary of its site."""
        return cls(
            id=unit.id,
            site_id=unit.site_id,
            landlord_id=unit.landlord_id,
            reference=unit.reference,
            floor=unit.floor,
            surface_m2=unit.surface_m2,
            ceiling_height_m=unit.ceiling_height_m,
            floor_load_kg_m2=unit.floor_load_kg_m2,
            power_kva=unit.power_kva,
            goods_lift=unit.goods_lift,
            loading_dock=unit.loading_dock,
            extraction=unit.extraction,
            step_free_access=unit.step_free_access,
            allowed_trades=list(unit.allowed_trades),
            use_class=UseClass(unit.use_class),
            rent_eur_m2_year=unit.rent_eur_m2_year,
            charges_eur_m2_year=unit.charges_eur_m2_year,
            status=UnitStatus(unit.status),
            available_from=unit.available_from,
            vacancy_id=unit.current_vacancy_id,
            project_id=unit.project_id,
            space_kind=SpaceKind(unit.space_kind),
            period_start=unit.period_start,
            period_end=unit.period_end,
            logistics=LogisticsOut.of(unit),
            version=unit.version,
            created_at=unit.created_at,
            updated_at=unit.updated_at,
            site=SiteSummary.model_validate(site, from_attributes=True),
        )


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
    compensation_id: str | None = None
    uncompensated: bool = False
    uncompensated_reason: str | None = None


class SurfacePoint(BaseModel):
    day: date
    production_m2: float


class SurfaceHistory(BaseModel):
    arrondissement: int | None
    site_id: str | None
    points: list[SurfacePoint]


# No net loss: compensations and development projects ------------------------------------


class CompensationStatus(StrEnum):
    PLANNED = "planned"
    DELIVERED = "delivered"


class ProjectStatus(StrEnum):
    PLANNED = "planned"
    UNDER_CONSTRUCTION = "under_construction"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


# A development project may carry tens of thousands of m² (Bercy-Charenton: 180 ha).
ProjectM2 = Annotated[float, Field(ge=0, le=1_000_000, description="m²")]


class CompensationIn(_In):
    """New production m² that make a loss good, in the loss's arrondissement."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            {
                "m2": 250,
                "arrondissement": 12,
                "status": "planned",
                "due_on": "2028-06-30",
                "description": "Ground-floor workshops of lot B4, Bercy-Charenton.",
                "project_id": "6f1c2a4e-0000-4000-8000-000000000012",
            }
        )
    )

    m2: Annotated[float, Field(gt=0, le=100_000, description="m² of new production space")]
    arrondissement: int = Field(ge=1, le=20, description="Must be the loss's arrondissement.")
    status: CompensationStatus
    due_on: IsoDate = Field(
        description="When the m² are (planned) or were (delivered) delivered; a planned "
        "compensation past this day is late."
    )
    description: Annotated[str, _text(3, 2000)]
    project_id: ProjectRef | None = Field(
        default=None, description="The development project that carries these m²."
    )
    unit_id: Annotated[str, _text(1, 60)] | None = Field(
        default=None, description="The unit that delivers these m², once it exists."
    )

    _day = field_validator("due_on")(_check_day)


class UncompensatedIn(_In):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"reason": "Building condemned after the 2026 structural survey; no site nearby."}
        )
    )

    reason: Annotated[str, _text(1, 2000)] = Field(
        description="Why the loss cannot be made good (kept in the ledger, shown to officers)."
    )


class CompensationDelivery(_In):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"unit_id": "0b7e1d52-0000-4000-8000-000000000042", "delivered_on": "2027-03-01"}
        )
    )

    unit_id: Annotated[str, _text(1, 60)] = Field(
        description="The production unit, in the compensation's arrondissement, that delivers it."
    )
    delivered_on: IsoDate | None = Field(default=None, description="Today when left out.")

    _day = field_validator("delivered_on")(_check_day)


class CompensationOut(BaseModel):
    id: str
    arrondissement: int
    m2: float
    status: CompensationStatus
    due_on: date
    description: str
    project_id: str | None
    unit_id: str | None
    delivered_on: date | None
    late: bool = Field(description="Still planned after its due_on.")
    version: int
    created_at: datetime
    updated_at: datetime


class ProjectCreate(_In):
    model_config = ConfigDict(
        json_schema_extra=_documented(
            {
                "name": "Bercy-Charenton",
                "arrondissement": 12,
                "committed_m2": 30000,
                "delivery_on": "2032-12-31",
                "status": "planned",
                "description": "New district between the Bercy rail yards and Charenton.",
            }
        )
    )

    name: Name
    arrondissement: int = Field(ge=1, le=20)
    committed_m2: ProjectM2 = Field(
        description="Production m² the project must keep or create (its commitment)."
    )
    delivery_on: IsoDate
    status: ProjectStatus = ProjectStatus.PLANNED
    description: Description | None = None

    _day = field_validator("delivery_on")(_check_day)


_PROJECT_NOT_NULL = ("name", "arrondissement", "committed_m2", "delivery_on", "status")


class ProjectPatch(_In):
    """The fields to change; a field left out keeps its value."""

    model_config = ConfigDict(
        json_schema_extra=_documented(
            {"status": "under_construction", "delivery_on": "2033-06-30"},
            not_null=_PROJECT_NOT_NULL,
        )
    )

    name: Name | SkipJsonSchema[None] = None
    arrondissement: Annotated[int, Field(ge=1, le=20)] | SkipJsonSchema[None] = None
    committed_m2: ProjectM2 | SkipJsonSchema[None] = None
    delivery_on: IsoDate | SkipJsonSchema[None] = None
    status: ProjectStatus | SkipJsonSchema[None] = None
    description: Description | None = None

    _not_null = field_validator(*_PROJECT_NOT_NULL, mode="before")(_refuse_null)
    _day = field_validator("delivery_on")(_check_day)


class ProjectOut(BaseModel):
    id: str
    name: str
    arrondissement: int
    committed_m2: float = Field(description="Production m² the project must keep or create.")
    delivery_on: date
    status: ProjectStatus
    description: str | None
    kept_m2: float = Field(description="Production m² of the units linked to the project.")
    units: int = Field(description="Production units linked to the project.")
    shortfall_m2: float = Field(description="committed_m2 minus kept_m2, never below 0.")
    behind: bool = Field(description="Past its delivery date and still short of its commitment.")
    version: int
    created_at: datetime
    updated_at: datetime


class BalanceMonth(BaseModel):
    month: str = Field(description="YYYY-MM", examples=["2026-12"])
    gains_m2: float
    losses_m2: float
    net_m2: float
    compensated_m2: float
    uncompensated_m2: float
    cumulative_net_m2: float = Field(description="net_m2 summed from the period's first month.")


class ArrondissementBalance(BaseModel):
    arrondissement: int
    label: str
    gains_m2: float = Field(description="Production m² added (units registered, grown, restored).")
    losses_m2: float = Field(description="Production m² removed (reduced, withdrawn, use changed).")
    net_m2: float = Field(
        description="gains_m2 minus losses_m2, plus sites moved in from or out to another "
        "arrondissement (a correction, not a loss the rule asks to make good)."
    )
    compensated_m2: float = Field(description="m² of the losses that name a compensation.")
    uncompensated_m2: float = Field(description="m² of the losses recorded as uncompensated.")
    uncompensated_losses: int
    compensations_delivered_m2: float
    compensations_planned_m2: float = Field(description="Still planned, late ones included.")
    late_m2: float = Field(description="Planned compensations past their due date.")
    late_compensations: int
    series: list[BalanceMonth]


class SurfaceBalance(BaseModel):
    period_from: date | None
    period_to: date | None
    as_of: date = Field(description="The day lateness is judged on (today).")
    rows: list[ArrondissementBalance]


class SurfaceFlag(BaseModel):
    kind: Literal["uncompensated_loss", "late_compensation"]
    arrondissement: int
    m2: float
    unit_id: str | None
    ledger_id: int | None
    compensation_id: str | None
    project_id: str | None
    recorded_at: datetime | None
    due_on: date | None
    reason: str | None = Field(description="The loss's reason or the compensation's description.")
    what_to_do: str


class SurfaceFlags(BaseModel):
    as_of: date
    uncompensated_losses: int
    late_compensations: int
    flags: list[SurfaceFlag]


# CSV import of units -------------------------------------------------------------------


class ImportProblem(BaseModel):
    column: str | None = Field(description="The column at fault, or null for the whole row.")
    code: str = Field(
        description="What is wrong, for translation: a pydantic error type (missing, "
        "greater_than_equal, less_than_equal, string_pattern_mismatch, enum, …) or one of "
        "not_a_number, not_an_integer, not_a_boolean, too_many_cells, reference_taken, refused.",
        examples=["greater_than"],
    )
    reason: str = Field(description="The problem as a sentence (English).")
    params: dict[str, Any] = Field(
        default_factory=dict, description="The bound or value the reason names, e.g. {gt: 0}."
    )


class ImportedRow(BaseModel):
    line: int = Field(description="The row's line in the file (the header is line 1).")
    reference: str
    unit_id: str = Field(description="The new unit's id (not kept when dry_run is true).")
    status: UnitStatus


class RefusedRow(BaseModel):
    line: int
    reference: str | None
    problems: list[ImportProblem]


class ImportReport(BaseModel):
    site_id: str
    atomic: bool
    dry_run: bool
    rows: int = Field(description="Data rows read (blank lines are skipped).")
    written: bool = Field(description="Whether the accepted rows were written.")
    accepted: list[ImportedRow]
    refused: list[RefusedRow]


# Open data -----------------------------------------------------------------------------


class OpenDataFileOut(BaseModel):
    name: str = Field(examples=["vacancies.csv"])
    dataset: str = Field(examples=["vacancies"])
    title: str
    format: str = Field(description="csv or geojson.")
    media_type: str
    url: str = Field(description="Where to download it (stable).")
    schema_url: str = Field(description="Its Table Schema (the format of schema.data.gouv.fr).")
    licence: dict[str, str]
    generated_at: datetime
    sha256: str = Field(description="SHA-256 of the file, also its ETag.")
    rows: int = Field(description="Data rows (CSV) or features (GeoJSON).")
    size_bytes: int = Field(description="The file's size in bytes, as served.")


class OpenDataCatalogue(BaseModel):
    licence: dict[str, str] = Field(description="The licence of every file: etalab-2.0.")
    files: list[OpenDataFileOut]
