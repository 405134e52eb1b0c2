"""Units as leasing knows them (from inventory's events), eligibility checks and rankings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fabkit.auth import Principal, Role, require_roles
from fabkit.pagination import Page, PageDep
from leasing.api.deps import CatalogueDep, SessionsDep
from leasing.domain import SITE_KINDS
from leasing.repository import ListingSearch
from leasing.schemas import EligibilityOut, ListingOut, RankingOut
from leasing.service import applications, listings
from leasing.service.common import AVAILABLE

router = APIRouter(prefix="/v1/units", tags=["units"])

ArtisanOnly = require_roles(Role.ARTISAN)
OwnerAdminOrOfficer = require_roles(Role.LANDLORD, Role.ADMIN, Role.OFFICER)
SiteKindParam = Annotated[str, Query(pattern="^(" + "|".join(sorted(SITE_KINDS)) + ")$")]
# inventory's unit statuses
StatusParam = Annotated[str, Query(pattern="^(available|reserved|leased|unavailable|withdrawn)$")]


@router.get("", response_model=Page[ListingOut], summary="Units (default: open vacancies)")
async def search_units(
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    page: PageDep,
    status: Annotated[list[StatusParam] | None, Query(max_length=5)] = None,
    site_kind: Annotated[list[SiteKindParam] | None, Query()] = None,
    arrondissement: Annotated[list[Annotated[int, Query(ge=1, le=20)]] | None, Query()] = None,
    landlord_id: str | None = None,
) -> Page[ListingOut]:
    query = ListingSearch(
        statuses=status or [AVAILABLE],
        site_kinds=site_kind or (),
        arrondissements=arrondissement or (),
        landlord_id=landlord_id,
    )
    return await listings.search_units(sessions, catalogue, query, page)


@router.get("/{unit_id}", response_model=ListingOut, summary="One unit")
async def get_unit(unit_id: str, sessions: SessionsDep, catalogue: CatalogueDep) -> ListingOut:
    return await listings.get_unit(sessions, catalogue, unit_id)


@router.get(
    "/{unit_id}/eligibility",
    response_model=EligibilityOut,
    summary="Would you be eligible, and with how many points? (no application made)",
)
async def check_eligibility(
    unit_id: str,
    sessions: SessionsDep,
    catalogue: CatalogueDep,
    principal: Principal = ArtisanOnly,
) -> EligibilityOut:
    return await listings.check_eligibility(sessions, catalogue, principal.subject, unit_id)


@router.get(
    "/{unit_id}/ranking",
    response_model=RankingOut,
    summary="Applications to the unit's vacancy ranked by the published grid (its landlord)",
)
async def rank_applications(
    unit_id: str,
    sessions: SessionsDep,
    vacancy_id: str | None = None,
    include_closed: bool = False,
    principal: Principal = OwnerAdminOrOfficer,
) -> RankingOut:
    return await applications.ranking(
        sessions, principal, unit_id, vacancy_id=vacancy_id, include_closed=include_closed
    )
