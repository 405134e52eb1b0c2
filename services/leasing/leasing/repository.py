"""Every leasing query. Repositories flush; the use cases in service.py commit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from leasing.domain import OPEN_APPLICATION_STATUSES, LeaseStatus
from leasing.models import (
    Application,
    ApplicationDecision,
    ArtisanProfile,
    Lease,
    ProgrammePublication,
    UnitListing,
)

# Artisans ------------------------------------------------------------------------------------


async def get_artisan(
    session: AsyncSession, artisan_id: str, *, for_update: bool = False
) -> ArtisanProfile | None:
    stmt = select(ArtisanProfile).where(ArtisanProfile.id == artisan_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def get_artisan_by_siret(session: AsyncSession, siret: str) -> ArtisanProfile | None:
    stmt = select(ArtisanProfile).where(ArtisanProfile.siret == siret)
    return (await session.execute(stmt)).scalars().first()


async def siret_taken(session: AsyncSession, siret: str, *, other_than: str | None = None) -> bool:
    stmt = select(ArtisanProfile.id).where(ArtisanProfile.siret == siret)
    if other_than:
        stmt = stmt.where(ArtisanProfile.id != other_than)
    return (await session.execute(stmt)).first() is not None


async def artisans_by_id(session: AsyncSession, ids: set[str]) -> dict[str, ArtisanProfile]:
    if not ids:
        return {}
    rows = await session.execute(select(ArtisanProfile).where(ArtisanProfile.id.in_(ids)))
    return {a.id: a for a in rows.scalars()}


# Unit listings -------------------------------------------------------------------------------


async def get_listing(
    session: AsyncSession, unit_id: str, *, for_update: bool = False
) -> UnitListing | None:
    stmt = select(UnitListing).where(UnitListing.unit_id == unit_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


@dataclass(frozen=True)
class ListingSearch:
    statuses: Sequence[str] = ()
    site_kinds: Sequence[str] = ()
    arrondissements: Sequence[int] = ()
    landlord_id: str | None = None
    limit: int = 20
    offset: int = 0


async def search_listings(
    session: AsyncSession, q: ListingSearch
) -> tuple[Sequence[UnitListing], int]:
    stmt = select(UnitListing)
    if q.statuses:
        stmt = stmt.where(UnitListing.status.in_(q.statuses))
    if q.site_kinds:
        stmt = stmt.where(UnitListing.site_kind.in_(q.site_kinds))
    if q.arrondissements:
        stmt = stmt.where(UnitListing.arrondissement.in_(q.arrondissements))
    if q.landlord_id:
        stmt = stmt.where(UnitListing.landlord_id == q.landlord_id)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    ordered = stmt.order_by(UnitListing.rent_eur_m2_year, UnitListing.unit_id)
    rows = await session.execute(ordered.limit(q.limit).offset(q.offset))
    return rows.scalars().all(), total


# Applications --------------------------------------------------------------------------------


async def get_application(
    session: AsyncSession, application_id: str, *, for_update: bool = False
) -> Application | None:
    stmt = select(Application).where(Application.id == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def list_applications(
    session: AsyncSession,
    *,
    artisan_id: str | None,
    landlord_id: str | None,
    unit_id: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[Sequence[Application], int]:
    stmt = select(Application)
    if artisan_id:
        stmt = stmt.where(Application.artisan_id == artisan_id)
    if landlord_id:
        stmt = stmt.where(Application.landlord_id == landlord_id)
    if unit_id:
        stmt = stmt.where(Application.unit_id == unit_id)
    if statuses:
        stmt = stmt.where(Application.status.in_(statuses))
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    ordered = stmt.order_by(Application.submitted_at.desc(), Application.id)
    rows = await session.execute(ordered.limit(limit).offset(offset))
    return rows.scalars().all(), total


async def open_applications_of_vacancy(
    session: AsyncSession, vacancy_id: str
) -> Sequence[Application]:
    stmt = (
        select(Application)
        .where(
            Application.vacancy_id == vacancy_id,
            Application.status.in_([s.value for s in OPEN_APPLICATION_STATUSES]),
        )
        .order_by(Application.id)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def ranked_applications(
    session: AsyncSession, vacancy_id: str, statuses: Sequence[str]
) -> Sequence[Application]:
    """Applications of one vacancy in ranking order: score, then first come, then id."""
    stmt = select(Application).where(Application.vacancy_id == vacancy_id)
    if statuses:
        stmt = stmt.where(Application.status.in_(statuses))
    stmt = stmt.order_by(Application.score.desc(), Application.submitted_at, Application.id)
    return (await session.execute(stmt)).scalars().all()


def add_decision(session: AsyncSession, decision: ApplicationDecision) -> None:
    session.add(decision)


async def decisions_of(
    session: AsyncSession, application_ids: Sequence[str]
) -> dict[str, list[ApplicationDecision]]:
    if not application_ids:
        return {}
    rows = await session.execute(
        select(ApplicationDecision)
        .where(ApplicationDecision.application_id.in_(application_ids))
        .order_by(ApplicationDecision.id)
    )
    out: dict[str, list[ApplicationDecision]] = defaultdict(list)
    for d in rows.scalars():
        out[d.application_id].append(d)
    return out


async def count_applications_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(Application.status, func.count()).group_by(Application.status)
    )
    return {status: count for status, count in rows.all()}


# Leases ------------------------------------------------------------------------------------


async def get_lease(
    session: AsyncSession, lease_id: str, *, for_update: bool = False
) -> Lease | None:
    stmt = select(Lease).where(Lease.id == lease_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def open_lease_of_unit(session: AsyncSession, unit_id: str) -> Lease | None:
    stmt = select(Lease).where(
        Lease.unit_id == unit_id,
        Lease.status.in_([LeaseStatus.OFFERED.value, LeaseStatus.ACTIVE.value]),
    )
    return (await session.execute(stmt)).scalars().first()


async def lease_of_application(
    session: AsyncSession, application_id: str, *, for_update: bool = False
) -> Lease | None:
    stmt = select(Lease).where(Lease.application_id == application_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def lease_ids_of_applications(
    session: AsyncSession, application_ids: Sequence[str]
) -> dict[str, str]:
    if not application_ids:
        return {}
    rows = await session.execute(
        select(Lease.application_id, Lease.id).where(Lease.application_id.in_(application_ids))
    )
    return {app_id: lease_id for app_id, lease_id in rows.all()}


async def list_leases(
    session: AsyncSession,
    *,
    artisan_id: str | None,
    landlord_id: str | None,
    unit_id: str | None,
    statuses: Sequence[str],
    limit: int,
    offset: int,
) -> tuple[Sequence[Lease], int]:
    stmt = select(Lease)
    if artisan_id:
        stmt = stmt.where(Lease.artisan_id == artisan_id)
    if landlord_id:
        stmt = stmt.where(Lease.landlord_id == landlord_id)
    if unit_id:
        stmt = stmt.where(Lease.unit_id == unit_id)
    if statuses:
        stmt = stmt.where(Lease.status.in_(statuses))
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    ordered = stmt.order_by(Lease.offered_at.desc(), Lease.id)
    rows = await session.execute(ordered.limit(limit).offset(offset))
    return rows.scalars().all(), total


async def expired_offer_ids(session: AsyncSession, now: datetime, limit: int) -> list[str]:
    stmt = (
        select(Lease.id)
        .where(Lease.status == LeaseStatus.OFFERED.value, Lease.offer_expires_at <= now)
        .order_by(Lease.offer_expires_at)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def due_lease_ids(session: AsyncSession, today: date, limit: int) -> list[str]:
    """Active leases whose end date has passed."""
    stmt = (
        select(Lease.id)
        .where(Lease.status == LeaseStatus.ACTIVE.value, Lease.end_date < today)
        .order_by(Lease.end_date)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def count_pending_offers(session: AsyncSession) -> int:
    stmt = select(func.count()).where(Lease.status == LeaseStatus.OFFERED.value)
    return int((await session.execute(stmt)).scalar_one())


# Programme publication ---------------------------------------------------------------------


async def get_publication(
    session: AsyncSession, *, for_update: bool = False
) -> ProgrammePublication | None:
    stmt = select(ProgrammePublication).where(ProgrammePublication.id == 1)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()
