"""Sites: registered and corrected by their landlord (or an admin); read by anyone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from fabkit.auth import Principal
from fabkit.errors import ProblemError
from fabkit.http import check_if_match, etag_of
from fabkit.idempotency import Idempotency, Written, run_idempotent
from fabkit.pagination import Page, PageParams
from inventory import repository as repo
from inventory.domain import (
    SiteKind,
    SpaceKind,
    UnitStatus,
    UseClass,
    postcode_matches_arrondissement,
    production_surface,
)
from inventory.events.published import (
    SiteRegistered,
    SiteSnapshot,
    SiteUpdated,
    UnitSnapshot,
    UnitUpdated,
    emit,
)
from inventory.geocoding import Geocoded, Geocoder, Outcome
from inventory.models import LOGISTICS_COLUMNS, Site
from inventory.schemas import SiteCreate, SiteOut, SitePatch
from inventory.service.common import Sessions, check_owner, new_id, stored
from inventory.service.surface import publish_ledger, record_surface


def _out(site: Site) -> SiteOut:
    return SiteOut.of(site)


@dataclass(frozen=True)
class SiteWritten:
    """A site's write and what geocoding its address gave (the `Fabrique-Geocoding` header)."""

    written: Written
    geocoding: Outcome


async def _locate(geocoder: Geocoder | None, site_id: str, address: str, postcode: str) -> Geocoded:
    # Asked before the transaction opens: no row is locked while the API answers.
    if geocoder is None:
        return Geocoded(Outcome.OFF)
    return await geocoder.locate(site_id, address, postcode)


async def create_site(
    sessions: Sessions,
    principal: Principal,
    data: SiteCreate,
    idem: Idempotency | None,
    geocoder: Geocoder | None = None,
) -> SiteWritten:
    """Register a site for the calling landlord (an admin names the landlord); a site given
    without coordinates gets its address's from the geocoder when one is set."""
    site_id = new_id()
    geocoded = Geocoded(Outcome.GIVEN)
    if data.latitude is None:
        geocoded = await _locate(geocoder, site_id, data.address, data.postcode)
        if geocoded.point is not None:
            data = data.model_copy(
                update={
                    "latitude": geocoded.point.latitude,
                    "longitude": geocoded.point.longitude,
                }
            )
    return SiteWritten(
        await _create_site(sessions, principal, data, idem, site_id), geocoded.outcome
    )


async def _create_site(
    sessions: Sessions,
    principal: Principal,
    data: SiteCreate,
    idem: Idempotency | None,
    site_id: str,
) -> Written:
    if principal.is_admin:
        if not data.landlord_id:
            raise ProblemError(422, "An admin creating a site must give landlord_id.")
        landlord_id = data.landlord_id
    else:
        if data.landlord_id and data.landlord_id != principal.subject:
            raise ProblemError(403, "A landlord can only create sites of its own.")
        landlord_id = principal.subject

    async def create(session: AsyncSession) -> Written:
        if await repo.get_landlord(session, landlord_id) is None:
            raise ProblemError(422, f"No landlord with id {landlord_id}.")
        fields = data.model_dump(exclude={"landlord_id", "kind", "logistics"})
        site = Site(
            id=site_id,
            landlord_id=landlord_id,
            kind=data.kind.value,
            **fields,
            **data.logistics.model_dump(),
        )
        session.add(site)
        await session.flush()
        emit(session, site.id, SiteRegistered(site=SiteSnapshot.of(site)))
        return Written(
            201,
            _out(site).model_dump(mode="json"),
            etag=etag_of(site.version),
            location=f"/v1/sites/{site.id}",
        )

    return await run_idempotent(sessions, idem, create)


async def get_site(sessions: Sessions, site_id: str) -> SiteOut:
    """One site, or 404."""
    async with sessions() as session:
        site = await repo.get_site(session, site_id)
    if site is None:
        raise ProblemError(404, f"No site with id {site_id}.")
    return _out(site)


async def list_sites(
    sessions: Sessions,
    *,
    landlord_id: str | None,
    arrondissement: int | None,
    kind: str | None,
    page: PageParams,
) -> Page[SiteOut]:
    """One page of sites by name, filtered."""
    async with sessions() as session:
        sites, total = await repo.list_sites(
            session, landlord_id=landlord_id, arrondissement=arrondissement, kind=kind, page=page
        )
    return Page[SiteOut].of(sites, total, page, _out)


async def update_site(
    sessions: Sessions,
    principal: Principal,
    site_id: str,
    patch: SitePatch,
    if_match: str | None,
    geocoder: Geocoder | None = None,
) -> SiteWritten:
    """Correct a site; its units follow a new arrondissement or kind (and their surface moves).
    A new address without coordinates gets the geocoder's, or none (the old ones were of the
    old address). Logistics attributes are copied onto the units in the same transaction."""
    changes = patch.model_dump(exclude_unset=True)
    changes.update(changes.pop("logistics", None) or {})
    geocoded = Geocoded(Outcome.GIVEN)
    moved = {"address", "postcode"} & changes.keys()
    if geocoder is not None and moved and not {"latitude", "longitude"} & changes.keys():
        current = await get_site(sessions, site_id)
        check_owner(principal, current.landlord_id, "site")
        address = changes.get("address", current.address)
        postcode = changes.get("postcode", current.postcode)
        if (address, postcode) != (current.address, current.postcode):
            geocoded = await _locate(geocoder, site_id, address, postcode)
            point = geocoded.point
            changes["latitude"] = point.latitude if point else None
            changes["longitude"] = point.longitude if point else None
    return SiteWritten(
        await _update_site(sessions, principal, site_id, changes, if_match), geocoded.outcome
    )


async def _update_site(
    sessions: Sessions,
    principal: Principal,
    site_id: str,
    changes: dict[str, object],
    if_match: str | None,
) -> Written:
    async with sessions() as session, session.begin():
        site = await repo.get_site(session, site_id, for_update=True)
        if site is None:
            raise ProblemError(404, f"No site with id {site_id}.")
        check_owner(principal, site.landlord_id, "site")
        check_if_match(if_match, site.version)
        changed = [k for k, v in changes.items() if getattr(site, k) != stored(v)]
        if not changed:
            return Written(200, _out(site).model_dump(mode="json"), etag=etag_of(site.version))
        for key in changed:
            setattr(site, key, stored(changes[key]))
        if not postcode_matches_arrondissement(site.postcode, site.arrondissement):
            raise ProblemError(
                422, f"postcode {site.postcode} is not in arrondissement {site.arrondissement}."
            )
        if (site.latitude is None) != (site.longitude is None):
            raise ProblemError(422, "Give both latitude and longitude, or neither.")
        site.version += 1
        site.updated_at = datetime.now(UTC)
        if "kind" in changed and site.kind != SiteKind.MARCHE_SAISONNIER:
            await _refuse_orphan_stalls(session, site)
        if {"arrondissement", "kind", *LOGISTICS_COLUMNS} & set(changed):
            await _propagate_to_units(session, principal, site)
            await publish_ledger(session)
        emit(session, site.id, SiteUpdated(site=SiteSnapshot.of(site), changed=changed))
        return Written(200, _out(site).model_dump(mode="json"), etag=etag_of(site.version))


async def _refuse_orphan_stalls(session: AsyncSession, site: Site) -> None:
    """409 when a seasonal market with stalls would become a kind of site stalls cannot be on."""
    units = await repo.units_of_site(session, site.id)
    if any(u.space_kind == SpaceKind.STALL for u in units):
        raise ProblemError(
            409,
            "This site has stalls (space_kind 'stall'), which only a 'marche_saisonnier' site "
            "can have; keep its kind, or withdraw its stalls first.",
        )


async def _propagate_to_units(session: AsyncSession, principal: Principal, site: Site) -> None:
    """Units carry their site's arrondissement, kind and logistics attributes; a correction of
    the arrondissement moves their surface too."""
    landlord = await repo.get_landlord(session, site.landlord_id)
    assert landlord is not None
    for unit in await repo.units_of_site(session, site.id, for_update=True):
        old_arrondissement = unit.arrondissement
        moved = old_arrondissement != site.arrondissement
        unit.arrondissement = site.arrondissement
        unit.site_kind = site.kind
        for column in LOGISTICS_COLUMNS:
            setattr(unit, column, getattr(site, column))
        unit.version += 1
        unit.updated_at = datetime.now(UTC)
        snapshot = UnitSnapshot.of(unit, site, landlord)
        emit(session, unit.id, UnitUpdated(unit=snapshot, changed=["site"]))
        prod = production_surface(
            UseClass(unit.use_class),
            unit.surface_m2,
            UnitStatus(unit.status),
            SpaceKind(unit.space_kind),
        )
        if moved and prod > 0:
            # Two entries keep per-arrondissement sums of delta_m2 right; the last one of a
            # unit still says where it stands now.
            unit.arrondissement = old_arrondissement
            record_surface(session, principal, unit, "relocated_out", -prod, 0.0, None)
            unit.arrondissement = site.arrondissement
            record_surface(session, principal, unit, "relocated_in", prod, prod, None)
