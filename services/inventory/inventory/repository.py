"""Every inventory query. Repositories flush; the use cases in service.py commit."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, bindparam, delete, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from inventory.domain import Feature, UnitStatus, UseClass
from inventory.models import Landlord, Site, SurfaceLedgerEntry, Unit, UnitTrade

# Landlords -------------------------------------------------------------------------------


async def get_landlord(session: AsyncSession, landlord_id: str) -> Landlord | None:
    return await session.get(Landlord, landlord_id)


async def get_landlord_by_name(session: AsyncSession, name: str) -> Landlord | None:
    result = await session.execute(select(Landlord).where(Landlord.name == name))
    return result.scalars().first()


async def list_landlords(session: AsyncSession) -> Sequence[Landlord]:
    return (await session.execute(select(Landlord).order_by(Landlord.name))).scalars().all()


# Sites -----------------------------------------------------------------------------------


async def get_site(session: AsyncSession, site_id: str, *, for_update: bool = False) -> Site | None:
    stmt = select(Site).where(Site.id == site_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def list_sites(
    session: AsyncSession,
    *,
    landlord_id: str | None,
    arrondissement: int | None,
    kind: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[Site], int]:
    stmt = select(Site)
    if landlord_id:
        stmt = stmt.where(Site.landlord_id == landlord_id)
    if arrondissement:
        stmt = stmt.where(Site.arrondissement == arrondissement)
    if kind:
        stmt = stmt.where(Site.kind == kind)
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (
        await session.execute(stmt.order_by(Site.name, Site.id).limit(limit).offset(offset))
    ).scalars()
    return rows.all(), total


async def sites_by_id(session: AsyncSession, ids: set[str]) -> dict[str, Site]:
    if not ids:
        return {}
    rows = (await session.execute(select(Site).where(Site.id.in_(ids)))).scalars()  # type: ignore[attr-defined]
    return {s.id: s for s in rows}


async def units_of_site(
    session: AsyncSession, site_id: str, *, for_update: bool = False
) -> Sequence[Unit]:
    stmt = select(Unit).where(Unit.site_id == site_id).order_by(Unit.id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().all()


# Units -----------------------------------------------------------------------------------


async def get_unit(session: AsyncSession, unit_id: str, *, for_update: bool = False) -> Unit | None:
    stmt = select(Unit).where(Unit.id == unit_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalars().first()


async def unit_reference_taken(session: AsyncSession, site_id: str, reference: str) -> bool:
    stmt = select(Unit.id).where(Unit.site_id == site_id, Unit.reference == reference)
    return (await session.execute(stmt)).first() is not None


async def replace_trades(session: AsyncSession, unit_id: str, trades: list[str]) -> None:
    await session.execute(delete(UnitTrade).where(UnitTrade.unit_id == unit_id))  # type: ignore[arg-type]
    session.add_all([UnitTrade(unit_id=unit_id, trade=t) for t in trades])
    await session.flush()


@dataclass(frozen=True)
class UnitSearch:
    arrondissements: Sequence[int] = ()
    min_surface: float | None = None
    max_surface: float | None = None
    max_rent: float | None = None
    trade: str | None = None
    features: Sequence[Feature] = ()
    statuses: Sequence[UnitStatus] = ()
    site_kinds: Sequence[str] = ()
    use_class: UseClass | None = None
    site_id: str | None = None
    landlord_id: str | None = None
    sort: str = "rent"
    limit: int = 20
    offset: int = 0


SORTS = {
    "rent": (Unit.rent_eur_m2_year.asc(),),  # type: ignore[attr-defined]
    "-rent": (Unit.rent_eur_m2_year.desc(),),  # type: ignore[attr-defined]
    "surface": (Unit.surface_m2.asc(),),  # type: ignore[attr-defined]
    "-surface": (Unit.surface_m2.desc(),),  # type: ignore[attr-defined]
    "available_from": (Unit.available_from.asc(),),  # type: ignore[union-attr]
    "updated": (Unit.updated_at.desc(),),  # type: ignore[attr-defined]
}


def _search_shape(q: UnitSearch) -> tuple[object, ...]:
    """Which filters a search uses: searches of one shape share one statement."""
    return (
        bool(q.arrondissements),
        q.min_surface is not None,
        q.max_surface is not None,
        q.max_rent is not None,
        bool(q.trade),
        tuple(sorted(f.value for f in q.features)),
        bool(q.statuses),
        bool(q.site_kinds),
        q.use_class is not None,
        bool(q.site_id),
        bool(q.landlord_id),
        q.sort,
    )


@functools.lru_cache(maxsize=512)
def _search_statement(shape: tuple[object, ...]) -> Select:  # type: ignore[type-arg]
    """The page of units with their sites and the total, in one query, with bound parameters.

    Built once per shape: constructing the statement and its cache key costs more than running
    it on SQLite, so the parameters are bound at execution instead of inlined per request.
    """
    (arrs, min_s, max_s, max_rent, trade, features, statuses, kinds, use, site, landlord, sort) = (
        shape
    )
    total = func.count().over().label("total")
    stmt = select(Unit, Site, total).join(Site, Site.id == Unit.site_id)  # type: ignore[arg-type]
    if arrs:
        stmt = stmt.where(Unit.arrondissement.in_(bindparam("arrs", expanding=True)))  # type: ignore[attr-defined]
    if min_s:
        stmt = stmt.where(Unit.surface_m2 >= bindparam("min_surface"))
    if max_s:
        stmt = stmt.where(Unit.surface_m2 <= bindparam("max_surface"))
    if max_rent:
        stmt = stmt.where(Unit.rent_eur_m2_year <= bindparam("max_rent"))
    if trade:
        stmt = stmt.where(
            Unit.id.in_(select(UnitTrade.unit_id).where(UnitTrade.trade == bindparam("trade")))  # type: ignore[attr-defined]
        )
    for feature in features:  # type: ignore[attr-defined]
        stmt = stmt.where(getattr(Unit, str(feature)).is_(True))
    if statuses:
        stmt = stmt.where(Unit.status.in_(bindparam("statuses", expanding=True)))  # type: ignore[attr-defined]
    if kinds:
        stmt = stmt.where(Unit.site_kind.in_(bindparam("kinds", expanding=True)))  # type: ignore[attr-defined]
    if use:
        stmt = stmt.where(Unit.use_class == bindparam("use_class"))
    if site:
        stmt = stmt.where(Unit.site_id == bindparam("site_id"))
    if landlord:
        stmt = stmt.where(Unit.landlord_id == bindparam("landlord_id"))
    # The id tie-breaker makes the order total, so pages never repeat or skip a unit.
    return (
        stmt.order_by(*SORTS[str(sort)], Unit.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


@functools.lru_cache(maxsize=512)
def _count_statement(shape: tuple[object, ...]) -> Select:  # type: ignore[type-arg]
    page = _search_statement(shape)
    return select(func.count()).select_from(
        page.with_only_columns(Unit.id).limit(None).offset(None).order_by(None).subquery()  # type: ignore[arg-type]
    )


async def search_units(session: AsyncSession, q: UnitSearch) -> tuple[list[tuple[Unit, Site]], int]:
    """One page of matching units with their sites, and how many match in all."""
    params: dict[str, object] = {
        "arrs": list(q.arrondissements),
        "min_surface": q.min_surface,
        "max_surface": q.max_surface,
        "max_rent": q.max_rent,
        "trade": q.trade,
        "statuses": [s.value for s in q.statuses],
        "kinds": list(q.site_kinds),
        "use_class": q.use_class.value if q.use_class else None,
        "site_id": q.site_id,
        "landlord_id": q.landlord_id,
        "limit": q.limit,
        "offset": q.offset,
    }
    shape = _search_shape(q)
    rows = (await session.execute(_search_statement(shape), params)).all()
    if rows:
        return [(unit, site) for unit, site, _ in rows], int(rows[0].total)
    # A page past the end carries no total: count separately (rare).
    total = (await session.execute(_count_statement(shape), params)).scalar_one()
    return [], int(total)


async def count_units_by_status(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Unit.status, func.count()).group_by(Unit.status))
    return {status: count for status, count in rows.all()}


async def vacant_production_m2_by_arrondissement(session: AsyncSession) -> dict[int, float]:
    rows = await session.execute(
        select(Unit.arrondissement, func.sum(Unit.surface_m2))
        .where(
            Unit.status == UnitStatus.AVAILABLE.value, Unit.use_class == UseClass.PRODUCTION.value
        )
        .group_by(Unit.arrondissement)
    )
    return {arr: float(total or 0) for arr, total in rows.all()}


# Production-surface ledger ---------------------------------------------------------------


def add_ledger_entry(session: AsyncSession, entry: SurfaceLedgerEntry) -> None:
    session.add(entry)


async def production_totals_now(session: AsyncSession, by: str) -> list[tuple[str, float, int]]:
    """(key, production m², unit count) for current production units, by arrondissement or site."""
    column = Unit.arrondissement if by == "arrondissement" else Unit.site_id
    rows = await session.execute(
        select(column, func.sum(Unit.surface_m2), func.count())
        .where(
            Unit.use_class == UseClass.PRODUCTION.value,
            Unit.status != UnitStatus.WITHDRAWN.value,
        )
        .group_by(column)
        .order_by(column)
    )
    return [(str(key), float(total or 0), int(count)) for key, total, count in rows.all()]


async def ledger_until(session: AsyncSession, at: datetime | None) -> Sequence[SurfaceLedgerEntry]:
    stmt = select(SurfaceLedgerEntry)
    if at is not None:
        stmt = stmt.where(SurfaceLedgerEntry.recorded_at <= at)
    stmt = stmt.order_by(SurfaceLedgerEntry.id)  # type: ignore[arg-type]
    return (await session.execute(stmt)).scalars().all()


async def ledger_of_unit(session: AsyncSession, unit_id: str) -> Sequence[SurfaceLedgerEntry]:
    stmt = (
        select(SurfaceLedgerEntry)
        .where(SurfaceLedgerEntry.unit_id == unit_id)
        .order_by(SurfaceLedgerEntry.id)  # type: ignore[arg-type]
    )
    return (await session.execute(stmt)).scalars().all()
