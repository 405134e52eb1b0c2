"""Units as leasing knows them (from inventory's events), eligibility checks and rankings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from leasing import service
from leasing.api.deps import CatalogueDep, SessionsDep
from leasing.domain import SITE_KINDS
from leasing.repository import ListingSearch
from leasing.schemas import EligibilityOut, ListingOut, Page, RankingOut

router = APIRouter(prefix="/v1/units", tags=["units"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerOrAdmin = require_roles(Role.LANDLORD, Role.ADMIN)
SiteKindParam = Annotated[str, Query(pattern="^(" + "|".join(sorted(SITE_KINDS)) + ")$")]
# inventory's unit statuses
StatusParam = Annotated[str, Query(pattern="^(available|reserved|leased|unavailable|withdrawn)$")]


@router.get("", response_model=Page[ListingOut], summary="Units (default: open vacancies)")
async def search_units(
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    status: Annotated[list[StatusParam] | None, Query(max_length=5)] = None,
    site_kind: Annotated[list[SiteKindParam] | None, Query()] = None,
    arrondissement: Annotated[list[Annotated[int, Query(ge=1, le=20)]] | None, Query()] = None,
    landlord_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Page[ListingOut]:
    query = ListingSearch(
        statuses=status or [service.AVAILABLE],
        site_kinds=site_kind or (),
        arrondissements=arrondissement or (),
        landlord_id=landlord_id,
        limit=limit,
        offset=offset,
    )
    items, total = await service.search_units(sessions, catalogue, query)
    return Page(items=items, total=total, limit=limit, offset=offset)


@router.get("/{unit_id}", response_model=ListingOut, summary="One unit")
async def get_unit(unit_id: str, sessions: SessionsDep, catalogue: CatalogueDep) -> ListingOut:
    return await service.get_unit(sessions, catalogue, unit_id)


@router.get(
    "/{unit_id}/eligibility",
    response_model=EligibilityOut,
    summary="Would you be eligible, and with how many points? (no application made)",
)
async def eligibility(
    unit_id: str,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    principal: Principal = ArtisanOnly,
) -> EligibilityOut:
    return await service.check_eligibility(sessions, catalogue, principal.subject, unit_id)


@router.get(
    "/{unit_id}/ranking",
    response_model=RankingOut,
    summary="Applications to the unit's vacancy ranked by the published grid (its landlord)",
)
async def ranking(
    unit_id: str,
    sessions: SessionsDep,
    vacancy_id: str | None = None,
    include_closed: bool = False,
    principal: Principal = OwnerOrAdmin,
) -> RankingOut:
    return await service.ranking(
        sessions, principal, unit_id, vacancy_id=vacancy_id, include_closed=include_closed
    )
