"""Units as leasing knows them: the read model fed by inventory's unit events, the unit search
and the eligibility check (how an artisan fares under each programme, without applying)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.errors import ProblemError
from fabkit.pagination import Page, PageParams
from leasing import repository as repo
from leasing.domain import Decision
from leasing.eligibility import (
    Applicant,
    Catalogue,
    Programme,
    failed_rules,
    monthly_rent_cap_eur,
    programmes_for,
    score,
)
from leasing.models import UnitListing
from leasing.schemas import (
    CriterionPoints,
    EligibilityOut,
    ListingOut,
    ProgrammeVerdict,
    RuleFailureOut,
)
from leasing.service import calls
from leasing.service.common import (
    AVAILABLE,
    SYSTEM,
    Sessions,
    applicant_of,
    facts_of,
    no_unit,
    utcnow,
)
from leasing.service.decisions import decide, withdraw_offer

_LISTING_FIELDS = (
    "site_id",
    "landlord_id",
    "landlord_name",
    "site_name",
    "site_kind",
    "address",
    "postcode",
    "arrondissement",
    "reference",
    "floor",
    "surface_m2",
    "allowed_trades",
    "use_class",
    "rent_eur_m2_year",
    "charges_eur_m2_year",
    "status",
    "available_from",
    "opens_for_visits",
)


# Read model (fed by inventory.unit.events; the caller's transaction) ---------------------------


async def apply_unit_snapshot(
    session: AsyncSession,
    unit: Mapping[str, Any],
    *,
    vacancy: tuple[str, datetime] | None = None,
) -> bool:
    """Upsert a listing from a unit snapshot (and the vacancy it opens); False when stale.

    Several events of one inventory change carry the same version, so only an older version
    than the listing's is stale.
    """
    listing = await repo.get_listing(session, unit["unit_id"], for_update=True)
    if listing is not None and unit["version"] < listing.version:
        return False
    fields = {k: unit[k] for k in _LISTING_FIELDS if k in unit}
    if listing is None:
        listing = UnitListing(unit_id=unit["unit_id"], version=unit["version"], **fields)
        session.add(listing)
        await session.flush()
    else:
        for key, value in fields.items():
            setattr(listing, key, value)
        listing.version = unit["version"]
    listing.updated_at = utcnow()
    if vacancy is not None:
        vacancy_id, opened_at = vacancy
        if listing.vacancy_id and listing.vacancy_id != vacancy_id:
            await _close_vacancy(
                session, listing.vacancy_id, "A new vacancy of this unit replaced it."
            )
        listing.vacancy_id, listing.vacancy_opened_at = vacancy_id, opened_at
    elif listing.status != AVAILABLE and listing.vacancy_id:
        closed, listing.vacancy_id, listing.vacancy_opened_at = listing.vacancy_id, None, None
        await _close_vacancy(session, closed, _closed_reason(listing.status))
    await session.flush()
    return True


async def apply_vacancy_closed(
    session: AsyncSession, *, unit_id: str, vacancy_id: str, status: str, version: int
) -> bool:
    """Close a vacancy and every application still open on it; False for an unknown unit."""
    listing = await repo.get_listing(session, unit_id, for_update=True)
    if listing is None:
        return False
    if version >= listing.version:
        listing.status, listing.version = status, version
        listing.updated_at = utcnow()
    if listing.vacancy_id == vacancy_id:
        listing.vacancy_id, listing.vacancy_opened_at = None, None
    # A vacancy id is never reused, so closing its applications is right even when late.
    await _close_vacancy(session, vacancy_id, _closed_reason(status))
    await session.flush()
    return True


async def apply_unit_withdrawn(session: AsyncSession, *, unit_id: str, version: int) -> bool:
    """Mark a listing withdrawn and close its vacancy; False when stale or unknown."""
    listing = await repo.get_listing(session, unit_id, for_update=True)
    if listing is None or version < listing.version:
        return False
    listing.status, listing.version = "withdrawn", version
    listing.updated_at = utcnow()
    if listing.vacancy_id:
        closed, listing.vacancy_id, listing.vacancy_opened_at = listing.vacancy_id, None, None
        await _close_vacancy(session, closed, _closed_reason("withdrawn"))
    await session.flush()
    return True


def _closed_reason(status: str) -> str:
    return f"The vacancy closed: the unit is now {status}."


async def _close_vacancy(session: AsyncSession, vacancy_id: str, reason: str) -> None:
    now = utcnow()
    await calls.cancel_for_vacancy(session, vacancy_id, reason)
    for app in await repo.open_applications_of_vacancy(session, vacancy_id):
        lease_id = await withdraw_offer(session, app, reason, now)
        decide(session, app, Decision.CLOSED, SYSTEM, reason, lease_id, now)


# Search and eligibility ----------------------------------------------------------------------


async def search_units(
    sessions: Sessions, catalogue: Catalogue, query: repo.ListingSearch, page: PageParams
) -> Page[ListingOut]:
    """One page of the units matching the query, cheapest rent first."""
    async with sessions() as session:
        rows, total = await repo.search_listings(session, query, page)
    return Page.of(rows, total, page, lambda r: ListingOut.from_model(r, catalogue))


async def get_unit(sessions: Sessions, catalogue: Catalogue, unit_id: str) -> ListingOut:
    """One unit of the read model."""
    async with sessions() as session:
        listing = await repo.get_listing(session, unit_id)
    if listing is None:
        raise ProblemError(404, no_unit(unit_id))
    return ListingOut.from_model(listing, catalogue)


def _verdict(
    programme: Programme, applicant: Applicant, listing: UnitListing, on: date
) -> ProgrammeVerdict:
    facts = facts_of(listing)
    failures = failed_rules(programme, applicant, facts, on)
    points = score(programme, applicant, facts, on)
    return ProgrammeVerdict(
        programme_id=programme.id,
        name=programme.name,
        eligible=not failures,
        failures=[RuleFailureOut(**f.as_dict()) for f in failures],
        score=points.total,
        max_score=points.max_total,
        criteria=[CriterionPoints(**c.as_dict()) for c in points.criteria],
        monthly_rent_cap_eur=float(monthly_rent_cap_eur(programme.rules, listing.surface_m2)),
    )


async def check_eligibility(
    sessions: Sessions, catalogue: Catalogue, artisan_id: str, unit_id: str
) -> EligibilityOut:
    """How the artisan fares under each programme of the unit, without applying."""
    async with sessions() as session:
        artisan = await repo.get_artisan(session, artisan_id)
        listing = await repo.get_listing(session, unit_id)
    if artisan is None:
        raise ProblemError(404, "No artisan profile for this token; register first.")
    if listing is None:
        raise ProblemError(404, no_unit(unit_id))
    on = utcnow().date()
    applicant = applicant_of(artisan)
    return EligibilityOut(
        unit_id=listing.unit_id,
        vacancy_id=listing.vacancy_id,
        open_for_applications=listing.status == AVAILABLE and listing.vacancy_id is not None,
        evaluated_on=on,
        programmes=[
            _verdict(p, applicant, listing, on)
            for p in programmes_for(catalogue.programmes, listing.site_kind)
        ],
    )
