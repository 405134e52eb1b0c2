"""Unit endpoints: public search and reads, landlord-scoped writes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field

from fabkit.auth import Principal, Role, require_roles
from fabkit.http import etag_of
from fabkit.openapi import CREATED_HEADERS, ETAG_HEADER
from fabkit.pagination import Page, PageDep
from inventory.api.deps import (
    IdempotencyKey,
    IfMatch,
    SessionsDep,
    SettingsDep,
    Writer,
    idempotency,
    respond,
)
from inventory.domain import Feature, SiteKind, SpaceKind, UnitStatus, UseClass
from inventory.repository import UnitSearch
from inventory.schemas import TRADE_RE, LedgerEntryOut, UnitCreate, UnitOut, UnitPatch
from inventory.service import surface, units

router = APIRouter(tags=["units"])

# A city officer may patch a unit too, only to record a loss of production surface
# (service.protection.check_officer_change).
UnitChanger = require_roles(Role.LANDLORD, Role.ADMIN, Role.OFFICER)

Arrondissement = Annotated[int, Field(ge=1, le=20)]
# The bounds of the unit's own fields (schemas.Ceiling, FloorLoad, Power): a minimum outside
# them is a typo that would match every unit or none.
MinCeiling = Annotated[
    float | None,
    Query(
        ge=2.0,
        le=12.0,
        allow_inf_nan=False,
        description="Only units whose ceiling is at least this high, in metres (2 to 12); "
        "units with no recorded height do not match.",
    ),
]
MinFloorLoad = Annotated[
    float | None,
    Query(
        ge=150,
        le=5_000,
        allow_inf_nan=False,
        description="Only units whose floor bears at least this load, in kg/m² (150 to 5,000); "
        "units with no recorded floor load do not match.",
    ),
]
MinPower = Annotated[
    float | None,
    Query(
        ge=0,
        le=2_000,
        allow_inf_nan=False,
        description="Only units with at least this electrical power, in kVA (0 to 2,000); "
        "units with no recorded power do not match.",
    ),
]
# The bounds of the site's logistics fields (schemas.LogisticsIn).
RiverQuayWithin = Annotated[
    int | None,
    Query(
        ge=0,
        le=5_000,
        description="Only units whose site is at most this many metres from a river quay "
        "(0 to 5,000); sites with no recorded distance do not match.",
    ),
]
MinFreightWeight = Annotated[
    float | None,
    Query(
        ge=0.5,
        le=60,
        allow_inf_nan=False,
        description="Only units whose site's freight access takes vehicles of at least this "
        "weight, in tonnes (0.5 to 60); sites with no recorded limit do not match.",
    ),
]
MinFreightHeight = Annotated[
    float | None,
    Query(
        ge=1,
        le=6,
        allow_inf_nan=False,
        description="Only units whose site's freight access takes vehicles of at least this "
        "height, in metres (1 to 6); sites with no recorded limit do not match.",
    ),
]
Sort = Literal["rent", "-rent", "surface", "-surface", "available_from", "updated"]


@router.post(
    "/v1/sites/{site_id}/units",
    status_code=201,
    response_model=UnitOut,
    summary="Add a unit",
    responses={201: {"headers": CREATED_HEADERS}},
)
async def create_unit(
    site_id: str,
    payload: UnitCreate,
    request: Request,
    sessions: SessionsDep,
    idempotency_key: IdempotencyKey = None,
    principal: Principal = Writer,
) -> JSONResponse:
    idem = idempotency(principal, idempotency_key, request, payload.model_dump(mode="json"))
    return respond(await units.create_unit(sessions, principal, site_id, payload, idem))


@router.get("/v1/units", response_model=Page[UnitOut], summary="Search units")
async def search_units(
    sessions: SessionsDep,
    page: PageDep,
    arrondissement: Annotated[list[Arrondissement] | None, Query()] = None,
    min_surface: Annotated[float | None, Query(ge=0, le=100_000)] = None,
    max_surface: Annotated[float | None, Query(ge=0, le=100_000)] = None,
    max_rent: Annotated[float | None, Query(ge=0, le=100_000)] = None,
    min_ceiling_height_m: MinCeiling = None,
    min_floor_load_kg_m2: MinFloorLoad = None,
    min_power_kva: MinPower = None,
    trade: Annotated[str | None, Query(pattern=TRADE_RE.pattern)] = None,
    feature: Annotated[list[Feature] | None, Query()] = None,
    status: Annotated[list[UnitStatus] | None, Query()] = None,
    site_kind: Annotated[list[SiteKind] | None, Query()] = None,
    use_class: UseClass | None = None,
    site_id: str | None = None,
    landlord_id: str | None = None,
    rail_siding: Annotated[
        bool | None,
        Query(description="true: only sites with a rail siding; false: only sites without."),
    ] = None,
    river_quay_within_m: RiverQuayWithin = None,
    petite_ceinture: Annotated[
        bool | None,
        Query(description="true: only sites at a petite-ceinture station; false: only others."),
    ] = None,
    min_freight_weight_t: MinFreightWeight = None,
    min_freight_height_m: MinFreightHeight = None,
    cargo_bike_parking: Annotated[
        bool | None,
        Query(description="true: only sites with cargo-bike spaces; false: only sites without."),
    ] = None,
    space_kind: Annotated[
        SpaceKind | None,
        Query(description="workshop or stall; left out, both (the whole list, as before)."),
    ] = None,
    sort: Sort = "rent",
) -> Response:
    query = UnitSearch(
        arrondissements=arrondissement or (),
        min_surface=min_surface,
        max_surface=max_surface,
        max_rent=max_rent,
        min_ceiling_height_m=min_ceiling_height_m,
        min_floor_load_kg_m2=min_floor_load_kg_m2,
        min_power_kva=min_power_kva,
        trade=trade,
        features=feature or (),
        statuses=status or (),
        site_kinds=[k.value for k in site_kind or ()],
        use_class=use_class,
        site_id=site_id,
        landlord_id=landlord_id,
        rail_siding=rail_siding,
        river_quay_within_m=river_quay_within_m,
        petite_ceinture=petite_ceinture,
        min_freight_weight_t=min_freight_weight_t,
        min_freight_height_m=min_freight_height_m,
        cargo_bike_parking=cargo_bike_parking,
        space_kind=space_kind,
        sort=sort,
        page=page,
    )
    found = await units.search_units(sessions, query)
    # Built from validated models: serialised once here instead of dumped, validated again
    # against response_model and serialised by FastAPI (a third of a search's CPU).
    return Response(found.model_dump_json(), media_type="application/json")


@router.get(
    "/v1/units/{unit_id}",
    response_model=UnitOut,
    summary="One unit",
    responses={200: {"headers": ETAG_HEADER}},
)
async def get_unit(unit_id: str, sessions: SessionsDep, response: Response) -> UnitOut:
    unit = await units.get_unit(sessions, unit_id)
    response.headers["ETag"] = etag_of(unit.version)
    return unit


@router.patch(
    "/v1/units/{unit_id}",
    response_model=UnitOut,
    summary="Update a unit (status, attributes); opening a vacancy is status=available",
    responses={200: {"headers": ETAG_HEADER}},
)
async def update_unit(
    unit_id: str,
    payload: UnitPatch,
    sessions: SessionsDep,
    settings: SettingsDep,
    if_match: IfMatch = None,
    principal: Principal = UnitChanger,
) -> JSONResponse:
    return respond(
        await units.update_unit(sessions, settings, principal, unit_id, payload, if_match)
    )


@router.get(
    "/v1/units/{unit_id}/surface-ledger",
    response_model=list[LedgerEntryOut],
    summary="Production-surface ledger of one unit",
)
async def get_unit_ledger(unit_id: str, sessions: SessionsDep) -> list[LedgerEntryOut]:
    return await surface.unit_ledger(sessions, unit_id)
